"""The attention lens, as pure computation: one captured forward pass -> every view's arrays.

Views: attention of any query token per layer/head, attention rollout (Abnar & Zuidema
2020), mean attention distance per head (ViT paper, Fig. 7 right), position-embedding
cosine similarity (ViT paper, Fig. 7 left) and the tensor shapes through the model.
Everything here is numpy/torch; drawing lives in ``figures.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from explorer.core.capture import capture_attention, prefix_token_names
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import Preprocessed, preprocess
from explorer.core.rollout import HEAD_FUSIONS, attention_rollout
from explorer.core.text import is_chinese
from explorer.core.weights import LoadedModel



@dataclass
class AttentionAnalysis:
    """All arrays of the attention lens for one (model, weights, image, geometry)."""

    attention: np.ndarray  # (layers, heads, N, N) float32, N = prefix + rows·cols
    grid: tuple[int, int]  # (rows, cols) of patches
    patch_size: tuple[int, int]
    num_prefix_tokens: int
    prefix_names: tuple[str, ...]  # e.g. ("CLS",), ("CLS", "DIST"), ("CLS", "REG1", ...)
    logits: np.ndarray  # (K,) or pooled features when the model has no classifier
    predictions: list[Prediction]  # top-5; empty without a classifier
    rollout: dict[str, np.ndarray]  # head fusion -> (N, N)
    mean_distance: np.ndarray  # (layers, heads), pixels of the model input
    pos_similarity: np.ndarray | None  # (gr, gc, gr, gc) cosine similarity of learned pos-embeds
    stages: list[tuple[str, tuple[int, ...]]]  # (module, output shape) in execution order
    input_shape: tuple[int, ...]
    pooling: str  # "token" (CLS), "avg", ...
    model_image: np.ndarray  # (H, W, 3) uint8, the pixels the model saw
    steps: tuple[tuple[str, str], ...]  # preprocessing, (en, zh)

    @property
    def num_layers(self) -> int:
        return self.attention.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attention.shape[1]

    def shape_table(self, lang: str = "en") -> list[tuple[str, str, str]]:
        return shape_table(self.stages, self.input_shape, self.pooling, lang)

    def token_of_patch(self, row: int, col: int) -> int:
        return self.num_prefix_tokens + row * self.grid[1] + col

    def patch_of_token(self, token: int) -> tuple[int, int] | None:
        if token < self.num_prefix_tokens:
            return None
        return divmod(token - self.num_prefix_tokens, self.grid[1])

    def token_name(self, token: int) -> str:
        patch = self.patch_of_token(token)
        return self.prefix_names[token] if patch is None else f"patch ({patch[0]},{patch[1]})"

    def query_map(self, layer: int, head: int | None, query: int) -> np.ndarray:
        """(rows, cols) attention of token ``query`` over the patch tokens; head None = mean."""
        att = self.attention[layer]
        row = att[:, query].mean(0) if head is None else att[head, query]
        return row[self.num_prefix_tokens:].reshape(self.grid)

    def rollout_map(self, fusion: str, query: int) -> np.ndarray:
        return self.rollout[fusion][query, self.num_prefix_tokens:].reshape(self.grid)


def linked_view(first: AttentionAnalysis, second: AttentionAnalysis, layer: int, head: int | None,
                query: int) -> tuple[int, int | None, int]:
    """The second model's layer, head and query that match the first's, for two models side by
    side on one image: the layer at the same relative depth (first to first, last to last), the
    same head where the second has it (else the mean of heads), and the query token by place —
    a prefix token to the second's token of that name (else its first token), a patch to the
    second's patch under the same point of the picture (their grids may differ)."""
    layer = round(layer * (second.num_layers - 1) / (first.num_layers - 1)) if first.num_layers > 1 \
        else second.num_layers - 1
    head = head if head is not None and head < second.num_heads else None
    patch = first.patch_of_token(query)
    if patch is None:
        name = first.prefix_names[query]
        return layer, head, second.prefix_names.index(name) if name in second.prefix_names else 0
    rows, cols = second.grid
    row = min(int((patch[0] + 0.5) / first.grid[0] * rows), rows - 1)
    col = min(int((patch[1] + 0.5) / first.grid[1] * cols), cols - 1)
    return layer, head, second.token_of_patch(row, col)


# --------------------------------------------------------------------------- the mathematics

def patch_centres(grid: tuple[int, int], patch_size: tuple[int, int]) -> np.ndarray:
    """(rows·cols, 2) pixel coordinates (y, x) of the patch centres, row-major."""
    rows, cols = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    ph, pw = patch_size
    return np.stack([(rows.ravel() + 0.5) * ph, (cols.ravel() + 0.5) * pw], axis=1)


def mean_attention_distance(attention: np.ndarray, grid: tuple[int, int],
                            patch_size: tuple[int, int], num_prefix_tokens: int) -> np.ndarray:
    """ViT paper Fig. 7 (right): per layer and head, Σ_j a_ij·‖p_i − p_j‖ averaged over the
    patch queries i, over patch keys j (prefix tokens have no position; their weight counts
    as distance 0, as in the usual implementations). Returns (layers, heads) in pixels."""
    centres = patch_centres(grid, patch_size)
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)  # (P, P)
    patches = attention[:, :, num_prefix_tokens:, num_prefix_tokens:]
    return np.einsum("lhij,ij->lhi", patches, distance).mean(-1).astype(np.float32)


def position_similarity(pos_embed: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """ViT paper Fig. 7 (left): cosine similarity between the learned position embedding of
    every patch and every other one. ``pos_embed`` (rows·cols, D) -> (rows, cols, rows, cols)."""
    unit = pos_embed / np.linalg.norm(pos_embed, axis=-1, keepdims=True).clip(1e-12)
    sim = unit @ unit.T
    return rearrange(sim, "(r1 c1) (r2 c2) -> r1 c1 r2 c2", r1=grid[0], r2=grid[0])


def learned_patch_pos_embed(model: torch.nn.Module) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The patch part of a timm ViT's learned position embedding, at its training grid."""
    pos = getattr(model, "pos_embed", None)
    if pos is None:
        return None
    grid = tuple(model.patch_embed.grid_size)
    skip = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
    table = pos.detach()[0, skip:].float().cpu().numpy()
    if table.shape[0] != grid[0] * grid[1]:
        return None
    return table, grid


_STAGE_NOTES = {
    "input": ("image", "图像"),
    "patch_embed": ("patches: Conv2d(k=p, s=p), flattened", "切成 patch：Conv2d(k=p, s=p)，展平"),
    "pos_drop": ("+ prefix tokens, + position embedding", "拼接前缀 token，加位置编码"),
    "blocks": ("transformer blocks", "Transformer 块"),
    "norm": ("final LayerNorm", "最终 LayerNorm"),
    "fc_norm": ("LayerNorm after pooling", "池化后的 LayerNorm"),
    "head_drop": ("pooled", "池化"),
    "head": ("classifier head", "分类头"),
}


_POOLING_NOTES = {"token": ("CLS token", "取 CLS token"), "avg": ("mean of patch tokens", "patch token 取平均"),
                  "map": ("attention pooling", "注意力池化")}


def shape_table(stages: list[tuple[str, tuple[int, ...]]], input_shape: tuple[int, ...],
                pooling: str, lang: str = "en") -> list[tuple[str, str, str]]:
    """Rows (stage, shape with B for the batch, what happens) for this very input.

    Consecutive blocks with the same shape collapse into one row "blocks 0–11".
    """
    def fmt(shape: tuple[int, ...]) -> str:
        return "(" + ", ".join(["B", *map(str, shape[1:])]) + ")"

    pick = 1 if is_chinese(lang) else 0
    rows = [("input", fmt(input_shape), _STAGE_NOTES["input"][pick])]
    blocks: list[tuple[str, tuple[int, ...]]] = []
    for name, shape in stages:
        if name == "patch_embed" and len(shape) == 4:  # NHWC with dynamic_img_size
            shape = (shape[0], shape[1] * shape[2], shape[3])
        if name.startswith("blocks."):
            blocks.append((name, shape))
            continue
        if blocks:
            rows.append(_block_row(blocks, fmt, pick))
            blocks = []
        if name in ("fc_norm",) and len(shape) == 3:
            continue
        note = _STAGE_NOTES.get(name, (name, name))[pick]
        if name == "head_drop":
            note = f"{note}: {_POOLING_NOTES.get(pooling, (pooling, pooling))[pick]}"
        rows.append((name, fmt(shape), note))
    if blocks:
        rows.append(_block_row(blocks, fmt, pick))
    return rows


def _block_row(blocks, fmt, pick):
    first, last = blocks[0][0].split(".")[1], blocks[-1][0].split(".")[1]
    return (f"blocks {first}–{last}", fmt(blocks[-1][1]), _STAGE_NOTES["blocks"][pick])


# --------------------------------------------------------------------------- one analysis

def analyze(loaded: LoadedModel, image: LoadedImage, geometry: str = "model") -> AttentionAnalysis:
    """One captured forward pass of ``loaded`` on ``image`` and every view derived from it."""
    pre: Preprocessed = preprocess(image.image, loaded.data_config, geometry, loaded.patch_size)
    capture = capture_attention(loaded.model, pre.tensor)
    attention = torch.stack([a[0] for a in capture.attentions]).cpu().numpy()
    logits = capture.logits[0].cpu().numpy()
    pos = learned_patch_pos_embed(loaded.model)
    return AttentionAnalysis(
        attention=attention,
        grid=capture.grid,
        patch_size=loaded.patch_size,
        num_prefix_tokens=capture.num_prefix_tokens,
        prefix_names=prefix_token_names(loaded.model),
        logits=logits,
        predictions=top_predictions(logits, loaded.class_names),
        rollout={f: attention_rollout(attention, f) for f in HEAD_FUSIONS},
        mean_distance=mean_attention_distance(attention, capture.grid, loaded.patch_size,
                                              capture.num_prefix_tokens),
        pos_similarity=None if pos is None else position_similarity(*pos),
        stages=capture.stages,
        input_shape=tuple(pre.tensor.shape),
        pooling=getattr(loaded.model, "global_pool", "token") or "none",
        model_image=pre.model_image,
        steps=pre.steps,
    )


def export_arrays(analysis: AttentionAnalysis) -> dict[str, np.ndarray]:
    """The arrays of ``python -m explorer export attention`` (and of the API)."""
    arrays = dict(
        logits=analysis.logits.astype(np.float32),
        attention=analysis.attention.astype(np.float32),
        grid=np.array(analysis.grid),
        patch_size=np.array(analysis.patch_size),
        num_prefix_tokens=np.array(analysis.num_prefix_tokens),
        mean_distance=analysis.mean_distance,
        model_image=analysis.model_image,
        **{f"rollout_{f}": analysis.rollout[f] for f in HEAD_FUSIONS},
    )
    if analysis.pos_similarity is not None:
        arrays["pos_similarity"] = analysis.pos_similarity
    return arrays
