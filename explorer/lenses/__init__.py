"""One folder per thing a person can look at: compute.py (numpy/torch), figures.py (plotly/PIL),
tab.py (Gradio).

``LENS_FAMILIES`` says which model families each lens reads; the tabs take theirs from here,
so a message about a model that one lens cannot read can name the lenses that can."""

from __future__ import annotations

from explorer.core.arguments import ArgumentError, excerpt
from explorer.core.zoo import ModelEntry, all_entries, get_entry

LENS_FAMILIES: dict[str, tuple[str, ...]] = {
    "attention": ("vit",),
    "swin": ("swin",),
    "bias": ("swin", "crossformer"),
    "crossformer": ("crossformer",),
    "twins": ("twins",),
    "navit": ("navit",),
    "dino": ("vit",),
    "mae": ("mae",),
}


def readers_of(family: str) -> list[str]:
    """The lenses (keys, in page order) that can read models of ``family``."""
    return [lens for lens, families in LENS_FAMILIES.items() if family in families]


def model_for_lens(lens: str, key: object) -> ModelEntry:
    """The registry entry for ``key`` if ``lens`` can read it; otherwise one clear message (the
    model is unknown, or which lenses can read it). Nothing is built or loaded."""
    from explorer.ui.i18n import t  # plain Python tables; figures use them the same way

    known = [e.key for e in all_entries() if e.family in LENS_FAMILIES[lens]]
    name_en, name_zh = t(f"tab_{lens}", "en"), t(f"tab_{lens}", "zh")
    try:
        entry = get_entry(key) if isinstance(key, str) else None
    except KeyError:
        entry = None
    if entry is None:
        raise ArgumentError(
            f"Unknown model {excerpt(key)}. The {name_en} lens reads: {', '.join(known)} "
            "(`python -m explorer models` lists every model).",
            f"未知的模型 {excerpt(key)}。{name_zh} 视图可以读取：{'、'.join(known)}"
            "（`python -m explorer models` 会列出所有模型）。")
    if entry.family not in LENS_FAMILIES[lens]:
        others = readers_of(entry.family)
        en = ", ".join(t(f"tab_{o}", "en") for o in others) or "none"
        zh = "、".join(t(f"tab_{o}", "zh") for o in others) or "无"
        raise ArgumentError(
            f"The {name_en} lens cannot read {entry.key} (a {entry.family} model); open it in: {en}.",
            f"{name_zh} 视图无法读取 {entry.key}（{entry.family} 模型）；请在以下视图中打开：{zh}。")
    return entry
