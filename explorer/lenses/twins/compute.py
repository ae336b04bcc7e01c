"""The Twins lens as pure computation: one captured forward pass of a timm Twins model
(SVT or PCPVT) that records, per block, the attention it really computed — locally-grouped
self-attention (LSA) inside ws×ws windows, or global sub-sampled attention (GSA) from every
token to a grid of keys made by a conv with kernel = stride = sr — and, per stage, what the
PEG (the depthwise 3×3 conv position generator after the stage's first block) adds.

timm runs both attentions through fused SDPA, which never materialises the probabilities, so
the hooks take q and k where timm makes them (LSA: the window-reshaped ``qkv`` output, zero-
padded tokens included; GSA: ``q`` and the sub-sampled ``kv``) and recompute
softmax(q·kᵀ·scale) — exact whether the fused path is on or off. Hooks live for one call and
write into a ``ContextVar`` recorder, so concurrent requests on one model never mix.
numpy/torch only; drawing lives in ``figures.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from timm.models.twins import GlobalSubSampleAttn, LocallyGroupedAttn, Twins
from torch import nn

from explorer.core import capture
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.models.geometry import Pair

__all__ = ["TwinsBlock", "PEGEffect", "TwinsAnalysis", "capture_twins", "analyze",
           "TwinsImageAnalysis", "analyze_image", "export_arrays", "lsa_windows", "gsa_key_grid",
           "total_stride"]


# --------------------------------------------------------------------------- geometry

def lsa_windows(grid: Pair, ws: int) -> tuple[Pair, Pair]:
    """((windows down, windows across), (padded H, padded W)) of LSA on an H×W map: timm pads
    the map with zeros at the bottom/right up to multiples of ws."""
    h, w = grid
    wh, ww = -(-h // ws), -(-w // ws)
    return (wh, ww), (wh * ws, ww * ws)


def gsa_key_grid(grid: Pair, sr: int) -> Pair:
    """The sub-sampled key grid of GSA: Conv2d(kernel = stride = sr, no padding) floors."""
    return (grid[0] // sr, grid[1] // sr) if sr > 1 else grid


def total_stride(model: Twins) -> int:
    """Input pixels per token of the last stage (patch embed, then ×2 per stage)."""
    stride = 1
    for embed in model.patch_embeds:
        stride *= int(embed.patch_size[0])
    return stride


# --------------------------------------------------------------------------- capture

@dataclass
class TwinsCapture:
    logits: torch.Tensor  # (B, K); pooled features without a classifier
    probs: dict[str, torch.Tensor]  # attention module name -> probabilities
    sizes: dict[str, Pair]  # attention module name -> the (H, W) map it ran on
    peg: dict[int, tuple[torch.Tensor, torch.Tensor]]  # stage -> (PEG input, PEG addition)
    shapes: list[tuple[str, tuple[int, ...]]]  # (module, output shape) in execution order


def _check_twins(model: nn.Module) -> None:
    if not isinstance(model, Twins):
        raise UserFacingError("This tab needs a Twins model (Twins-SVT or Twins-PCPVT).",
                              "此标签页需要 Twins 模型（Twins-SVT 或 Twins-PCPVT）。")
    if model.training:
        raise ValueError("put the model in eval mode: dropout would change the attention")


def capture_twins(model: Twins, x: torch.Tensor) -> TwinsCapture:
    """One no-grad forward pass that records every LSA/GSA block's attention probabilities,
    each stage's PEG input and addition, and the shape after every step (through the capture's
    Twins adapters: hooks installed once, a recorder per request)."""
    _check_twins(model)
    logits, rec = capture.capture(model, x)
    names = [n for n, m in model.named_modules() if isinstance(m, (LocallyGroupedAttn, GlobalSubSampleAttn))]
    missing = [n for n in names if n not in rec.records]
    if missing:
        raise RuntimeError(f"attention was not captured for {missing[:3]}")
    pegs = {s: rec.records[f"pos_block.{s}"] for s in range(len(model.pos_block)) if f"pos_block.{s}" in rec.records}
    return TwinsCapture(logits=logits, probs={n: rec.records[n] for n in names},
                        sizes={n: rec.records[f"{n}.size"] for n in names}, peg=pegs, shapes=list(rec.stages))


# --------------------------------------------------------------------------- one analysis

@dataclass
class TwinsBlock:
    """One block's attention for one image (float32 numpy)."""

    stage: int
    block: int
    name: str  # attention module, e.g. "blocks.0.1.attn"
    kind: str  # "LSA" | "GSA"
    heads: int
    grid: Pair  # the stage's token map (H, W)
    probs: np.ndarray  # LSA: (windows, heads, ws², ws²); GSA: (heads, H·W, keys)
    ws: int = 0  # LSA window side
    windows: Pair = (0, 0)  # LSA: windows down, across
    padded: Pair = (0, 0)  # LSA: the zero-padded map
    sr: int = 1  # GSA sub-sampling ratio (1 = plain global attention)
    key_grid: Pair = (0, 0)  # GSA: the sub-sampled key map

    @property
    def is_padded(self) -> bool:
        return self.kind == "LSA" and self.padded != self.grid

    def window_of(self, row: int, col: int) -> tuple[int, int]:
        """LSA: (window index, slot inside the window) of map token (row, col)."""
        ws = self.ws
        return (row // ws) * self.windows[1] + col // ws, (row % ws) * ws + col % ws

    def _pick(self, rows: np.ndarray, head: int | None) -> np.ndarray:
        return rows.mean(0) if head is None else rows[head]

    def query_attention(self, head: int | None, row: int, col: int) -> np.ndarray:
        """LSA: (H, W), the token's weights on the members of its window, NaN elsewhere
        (weight on zero-padding slots is left out: see ``padding_weight``). GSA: the
        (keys down, keys across) map of its weights on the sub-sampled keys. ``head`` None =
        mean of heads."""
        if self.kind == "GSA":
            weights = self._pick(self.probs[:, row * self.grid[1] + col], head)
            return weights.reshape(self.key_grid).astype(np.float32)
        window, slot = self.window_of(row, col)
        weights = self._pick(self.probs[window, :, slot], head).reshape(self.ws, self.ws)
        out = np.full(self.grid, np.nan, dtype=np.float32)
        r0, c0 = (window // self.windows[1]) * self.ws, (window % self.windows[1]) * self.ws
        r1, c1 = min(r0 + self.ws, self.grid[0]), min(c0 + self.ws, self.grid[1])
        out[r0:r1, c0:c1] = weights[:r1 - r0, :c1 - c0]
        return out

    def padding_weight(self, head: int | None, row: int, col: int) -> float:
        """LSA: the weight the token puts on zero-padded slots of its window (timm pads
        instead of masking, so padded tokens are real keys)."""
        if self.kind != "LSA":
            return 0.0
        attention = self.query_attention(head, row, col)
        return float(1.0 - np.nansum(attention))


@dataclass
class PEGEffect:
    """What a stage's PEG (x + DWConv3×3(x)) adds: per-token norms and their ratio."""

    stage: int
    grid: Pair
    added_norm: np.ndarray  # (H, W): ‖DWConv(x)‖ per token
    input_norm: np.ndarray  # (H, W): ‖x‖ per token

    @property
    def relative(self) -> float:
        """mean ‖DWConv(x)‖ / mean ‖x‖: how much the stage's tokens would change without it."""
        return float(self.added_norm.mean() / max(float(self.input_norm.mean()), 1e-12))


@dataclass
class TwinsAnalysis:
    """All arrays of the Twins lens for one image."""

    blocks: list[TwinsBlock]  # execution order
    depths: tuple[int, ...]
    stage_grids: list[Pair]
    token_px: list[int]  # input pixels per token, per stage
    peg: list[PEGEffect]
    shapes: list[tuple[str, tuple[int, ...]]]
    logits: np.ndarray
    input_shape: tuple[int, ...]
    variant: str  # "SVT" (LSA and GSA alternate) | "PCPVT" (GSA only)

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    def block(self, stage: int, block: int) -> TwinsBlock:
        for item in self.blocks:
            if (item.stage, item.block) == (stage, block):
                return item
        raise IndexError(f"no block {block} in stage {stage}")

    def stage_blocks(self, stage: int) -> list[TwinsBlock]:
        return [b for b in self.blocks if b.stage == stage]


def analyze(model: Twins, x: torch.Tensor, index: int = 0) -> TwinsAnalysis:
    """One captured forward pass of a Twins model on ``x`` (B, 3, H, W); arrays of image ``index``."""
    capture = capture_twins(model, x)
    blocks, grids, token_px, px = [], [], [], 1
    for s, stage in enumerate(model.blocks):
        px *= int(model.patch_embeds[s].patch_size[0])
        token_px.append(px)
        grid = None
        for b, blk in enumerate(stage):
            name = f"blocks.{s}.{b}.attn"
            attn = blk.attn
            grid = capture.sizes[name]
            probs = capture.probs[name][index].cpu().numpy().copy()
            if isinstance(attn, LocallyGroupedAttn):
                windows, padded = lsa_windows(grid, attn.ws)
                item = TwinsBlock(s, b, name, "LSA", attn.num_heads, grid, probs, ws=attn.ws,
                                  windows=windows, padded=padded)
                if probs.shape != (windows[0] * windows[1], attn.num_heads, attn.ws ** 2, attn.ws ** 2):
                    raise RuntimeError(f"{name}: captured {probs.shape} does not match the windows")
            else:
                sr = int(attn.sr_ratio)
                keys = gsa_key_grid(grid, sr)
                item = TwinsBlock(s, b, name, "GSA", attn.num_heads, grid, probs, sr=sr, key_grid=keys)
                if probs.shape != (attn.num_heads, grid[0] * grid[1], keys[0] * keys[1]):
                    raise RuntimeError(f"{name}: captured {probs.shape} does not match the key grid")
            blocks.append(item)
        grids.append(grid)
    pegs = []
    for s, (inp, added) in sorted(capture.peg.items()):
        h, w = grids[s]
        pegs.append(PEGEffect(s, grids[s], added[index].norm(dim=-1).reshape(h, w).cpu().numpy(),
                              inp[index].norm(dim=-1).reshape(h, w).cpu().numpy()))
    variant = "SVT" if any(b.kind == "LSA" for b in blocks) else "PCPVT"
    return TwinsAnalysis(blocks=blocks, depths=tuple(len(s) for s in model.blocks), stage_grids=grids,
                         token_px=token_px, peg=pegs, shapes=capture.shapes,
                         logits=capture.logits[index].cpu().numpy().copy(), input_shape=tuple(x.shape),
                         variant=variant)


# --------------------------------------------------------------------------- for the app

@dataclass
class TwinsImageAnalysis:
    twins: TwinsAnalysis
    model_image: np.ndarray  # (H, W, 3) uint8: the pixels the model saw
    steps: tuple[tuple[str, str], ...]
    predictions: list[Prediction]


def analyze_image(loaded: LoadedModel, image: LoadedImage, geometry: str = "model") -> TwinsImageAnalysis:
    """Preprocess ``image`` for ``loaded`` (a Twins model) and run one captured forward pass.
    The native geometry cuts the image to multiples of the last stage's stride, so every
    stage's map is whole."""
    model = loaded.model
    _check_twins(model)
    stride = total_stride(model)
    pre = preprocess(image.image, loaded.data_config, geometry, (stride, stride))
    analysis = analyze(model, pre.tensor)
    (h, w), patch = analysis.stage_grids[0], analysis.token_px[0]
    steps = (*pre.steps[:-1], (
        f"Model input {pre.tensor.shape[-1]}×{pre.tensor.shape[-2]} px = {h}×{w} patches of {patch}×{patch} px",
        f"模型输入 {pre.tensor.shape[-1]}×{pre.tensor.shape[-2]} 像素 = {h}×{w} 个 {patch}×{patch} 像素的 patch"))
    return TwinsImageAnalysis(twins=analysis, model_image=pre.model_image, steps=steps,
                              predictions=top_predictions(analysis.logits, loaded.class_names))


def export_arrays(result: TwinsImageAnalysis | TwinsAnalysis) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: per block (prefix ``stage{s}_block{b}_``) its kind, geometry
    (map H/W, ws, windows, padded H/W, sr, key grid) and probabilities; per stage the PEG's
    per-token added and input norms; the logits (and the model's input picture)."""
    analysis = result.twins if isinstance(result, TwinsImageAnalysis) else result
    out: dict[str, np.ndarray] = {
        "logits": analysis.logits,
        "block_names": np.array([b.name for b in analysis.blocks]),
        "block_kinds": np.array([b.kind for b in analysis.blocks]),
        "stage_grids": np.array(analysis.stage_grids, dtype=np.int64),
        "peg_relative": np.array([p.relative for p in analysis.peg], dtype=np.float32),
    }
    if isinstance(result, TwinsImageAnalysis):
        out["model_image"] = result.model_image
    for item in analysis.blocks:
        prefix = f"stage{item.stage}_block{item.block}"
        out[f"{prefix}_kind"] = np.array(item.kind)
        out[f"{prefix}_geometry"] = np.array(
            [*item.grid, item.ws, *item.windows, *item.padded, item.sr, *item.key_grid], dtype=np.int64)
        out[f"{prefix}_probs"] = item.probs
    for peg in analysis.peg:
        out[f"stage{peg.stage}_peg_added_norm"] = peg.added_norm
        out[f"stage{peg.stage}_peg_input_norm"] = peg.input_norm
    return out
