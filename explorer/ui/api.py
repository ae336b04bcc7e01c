"""What every lens's public endpoint shares. Each endpoint mirrors its ``export`` subcommand —
the same arguments, checked the same way before any model loads — and answers with JSON: the
model shown and where its weights came from, every array's shape and dtype, and the arrays
themselves as nested lists. Large arrays are sent only when asked for by name (``arrays``), so
one reply stays a few megabytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from explorer.core.arguments import ArgumentError, excerpt
from explorer.core.weights import LoadedModel

SMALL_ARRAY = 100_000  # values: sent unless ``arrays`` names others
MAX_VALUES = 4_000_000  # values in one reply (about 40 MB of JSON)


def chosen_arrays(arrays: dict[str, np.ndarray], names: Any) -> list[str]:
    """The arrays to send: every small one by default, else exactly the comma-separated ``names``."""
    if names is None or names == "":
        return [k for k, v in arrays.items() if v.size <= SMALL_ARRAY]
    if not isinstance(names, str) or len(names) > 20_000:
        raise ArgumentError(f"arrays must be comma-separated array names (got {excerpt(names)}).",
                            f"arrays 必须是用逗号分隔的数组名（收到 {excerpt(names)}）。")
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in arrays]
    if unknown:
        listed = ", ".join(list(arrays)[:60]) + (" …" if len(arrays) > 60 else "")
        raise ArgumentError(f"No array named {excerpt(unknown[0])}; this result has: {listed}.",
                            f"没有名为 {excerpt(unknown[0])} 的数组；本结果包含：{listed}。")
    total = sum(arrays[n].size for n in wanted)
    if total > MAX_VALUES:
        raise ArgumentError(f"Those arrays hold {total:,} values; one reply takes at most {MAX_VALUES:,}. "
                            "Ask for fewer at a time (the shapes are in every reply).",
                            f"这些数组共有 {total:,} 个数值；一次回复最多 {MAX_VALUES:,} 个。请分几次请求"
                            "（每次回复都包含所有数组的形状）。")
    return wanted


def _jsonable(value: np.ndarray) -> Any:
    if value.dtype.kind == "f":
        return np.round(value.astype(np.float64), 6).tolist()
    return value.tolist()


def arrays_reply(loaded: LoadedModel, arrays: dict[str, np.ndarray], names: Any = "", **meta: Any) -> dict:
    """The JSON answer of a lens endpoint: the export's arrays, the model's class names first."""
    arrays = {"class_names": np.array(loaded.class_names or (), dtype=str), **arrays}
    chosen = chosen_arrays(arrays, names)
    return {
        "model": loaded.shown.key,
        "weights": loaded.source,
        "banner": loaded.banner.en if loaded.banner is not None else "",
        **meta,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
        "arrays": {k: _jsonable(arrays[k]) for k in chosen},
    }
