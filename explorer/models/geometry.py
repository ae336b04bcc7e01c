"""Window geometry shared by the architectures and the lenses: (height, width) pairs, Swin's
relative-position index (timm's own ``gen_relative_position_index``) and the gather that turns a
bias table into the per-head bias added to q·kᵀ·scale. Torch and timm only."""

from __future__ import annotations

from functools import lru_cache

import torch
from timm.layers import gen_relative_position_index

Pair = tuple[int, int]


def pair(value: int | tuple[int, int] | list[int]) -> Pair:
    """``7`` -> (7, 7); ``(4, 8)`` or ``[4, 8]`` -> (4, 8)."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


@lru_cache(maxsize=64)  # every block asks on every forward; callers get the cached tensor read-only
def _index(window: Pair) -> torch.Tensor:
    # A plain CPU tensor whatever the caller's mode: one made under inference_mode (a capture)
    # could not later be saved for backward by a training step.
    with torch.inference_mode(False):
        return gen_relative_position_index(window)


def relative_position_index(window: int | Pair) -> torch.Tensor:
    """(N, N) long, N = wh·ww: the row of the bias table that query i and key j of a window
    use, (Δh + wh − 1)·(2ww − 1) + (Δw + ww − 1) with Δ = position_i − position_j (row-major)."""
    return _index(pair(window)).clone()


def gather_bias(table, index):
    """A ((2wh−1)(2ww−1), heads) bias table and a window's (N, N) index -> the (heads, N, N) bias
    added to the logits of query slot i and key slot j (numpy in, numpy out; torch likewise)."""
    n = index.shape[0]
    out = table[index.reshape(-1)].reshape(n, n, -1)
    return out.permute(2, 0, 1).contiguous() if isinstance(out, torch.Tensor) else out.transpose(2, 0, 1)
