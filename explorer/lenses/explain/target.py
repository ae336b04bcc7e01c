"""Which class a map explains: an index or a class name, checked against the model's classes."""

from __future__ import annotations

from explorer.core.arguments import ArgumentError, excerpt


def target_index(value: object, class_names: tuple[str, ...] | None, num_classes: int,
                 shown_names: tuple[str, ...] = ()) -> int | None:
    """``value`` as a class index (None: the top class). A name is looked up in ``class_names``,
    then in ``shown_names`` (the page's names in its language), case and surrounding spaces
    ignored; an index must be one of the model's classes."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        index = int(value)
        if not 0 <= index < num_classes:
            raise ArgumentError(f"The target class must be 0 … {num_classes - 1} (or a class name), not {index}.",
                                f"目标类别必须是 0 … {num_classes - 1}（或类别名），而不是 {index}。")
        return index
    wanted = str(value).strip().lower()
    for names in (class_names or (), shown_names):
        for index, name in enumerate(names):
            if name.strip().lower() == wanted:
                return index
    raise ArgumentError(f"No class is named {excerpt(value)} (give its name as the model lists it, or its index).",
                        f"没有名为 {excerpt(value)} 的类别（请给出模型中的类别名或它的编号）。")
