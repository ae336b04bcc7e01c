"""Attention rollout (Abnar & Zuidema 2020): how much each output token draws on each input
token through all the layers. Shared by the attention lens and the demo models' training
metrics (and the explanation methods to come)."""

from __future__ import annotations

import numpy as np

HEAD_FUSIONS = ("mean", "max", "min")


def attention_rollout(attention: np.ndarray, head_fusion: str = "mean", row: int | None = None) -> np.ndarray:
    """Abnar & Zuidema (2020): fuse heads, add the residual identity, renormalise the rows,
    multiply from the first layer to the last.

    ``attention`` is (layers, heads, N, N); returns R (N, N) where R[i, j] is how much the
    output token i draws on input token j. A' = 0.5·A + 0.5·I; R = A'_L · … · A'_1. With ``row``,
    R's row alone (N,): a vector taken through the factors from the left (N² work a layer, not N³).
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}")
    fused = getattr(np, head_fusion)(attention, axis=1).astype(np.float64)  # (L, N, N)
    n = fused.shape[-1]
    factors = []
    for layer in fused:
        a = 0.5 * layer + 0.5 * np.eye(n)
        factors.append(a / a.sum(axis=-1, keepdims=True))
    if row is not None:
        result = np.eye(n)[row]
        for a in reversed(factors):
            result = result @ a
        return result.astype(np.float32)
    result = np.eye(n)
    for a in factors:
        result = a @ result
    return result.astype(np.float32)
