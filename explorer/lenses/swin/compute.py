"""The Swin lens as pure computation: windows, the cyclic shift and its mask, the relative
position bias, and one captured forward pass of a timm ``SwinTransformer`` (per block:
softmax(content + bias + mask) and its three parts). numpy/torch only; drawing lives in
``figures.py``.

Everything does what timm's ``swin_transformer.py`` does, because that is what the model a
person runs computes. timm follows microsoft/Swin-Transformer except where it pads (it rolls
*before* padding, see ``mask_wrap_leak``) and how it clips the window on small or non-square
maps (per axis, see ``effective_window_shift``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2
from torch import nn

from explorer.core import capture
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.models.geometry import Pair, gather_bias  # noqa: F401  (gather_bias: part of this module's API)
from explorer.models.geometry import pair as _pair
from explorer.models.geometry import relative_position_index as _index

__all__ = [
    "MASK_VALUE", "window_partition_ids", "shift_region_ids", "shifted_window_mask",
    "relative_position_index", "gather_bias", "effective_window_shift", "official_window_shift",
    "window_layout", "token_slots", "mask_wrap_leak", "ShiftSteps", "cyclic_shift_steps",
    "BlockGeometry", "StageGeometry", "swin_geometry", "BlockCapture", "SwinCapture",
    "capture_swin", "BlockAttention", "SwinAnalysis", "analyze", "SwinImageAnalysis", "analyze_image",
    "export_arrays",
]

MASK_VALUE = -100.0  # what official Swin and timm add between different regions
# Swin's and SwinV2's window attention: the same windows, shift, padding and mask (timm's
# swin_transformer_v2.py repeats v1's block); V2's content is a scaled cosine, its bias 16·σ(CPB)
WINDOW_ATTENTIONS = (WindowAttention, WindowAttentionV2)



def _padded(size: int, window: int) -> int:
    return math.ceil(size / window) * window


def _partition(grid: np.ndarray, ws: Pair) -> np.ndarray:
    """(Hp, Wp, ...) -> (nW, wh·ww, ...) in timm's order: windows row-major, tokens row-major."""
    wh, ww = ws
    hp, wp = grid.shape[:2]
    rest = grid.shape[2:]
    x = grid.reshape(hp // wh, wh, wp // ww, ww, *rest).swapaxes(1, 2)
    return x.reshape((hp // wh) * (wp // ww), wh * ww, *rest)


# --------------------------------------------------------------------------- the mathematics

def window_partition_ids(H: int, W: int, ws: int | Pair) -> np.ndarray:
    """(H, W) int: the window each token falls in, windows numbered row-major (timm and official
    ``window_partition``). A grid that is not a multiple of the window gets partial windows at
    the bottom/right, as if padded."""
    wh, ww = _pair(ws)
    rows = np.arange(H)[:, None] // wh
    cols = np.arange(W)[None, :] // ww
    return rows * math.ceil(W / ww) + cols


def shift_region_ids(H: int, W: int, ws: int | Pair, shift: int | Pair) -> np.ndarray:
    """(H, W) int: the region ids 0..8 of the official mask construction.

    Rows are cut into the slices (0:−ws, −ws:−s, −s:), columns the same, h outer, and region
    ``3·h_slice + w_slice`` is written in that order (later slices overwrite earlier ones, which
    only matters for a zero shift on one axis: ``-0:`` is the whole axis, exactly as in timm).
    ``H``, ``W`` are the (padded) grid the mask is built on.
    """
    wh, ww = _pair(ws)
    sh, sw = _pair(shift)
    ids = np.zeros((H, W), dtype=np.int64)
    count = 0
    for h in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
        for w in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
            ids[h, w] = count
            count += 1
    return ids


def shifted_window_mask(H: int, W: int, ws: int | Pair, shift: int | Pair) -> np.ndarray:
    """(nW, ws², ws²) float32: mask[w, i, j] = 0 where tokens i and j of window w share a
    region id, −100.0 otherwise. Built, as timm does, on the grid padded up to window
    multiples. Equals timm's ``SwinTransformerBlock.attn_mask`` (which is None for shift 0)."""
    wh, ww = _pair(ws)
    ids = shift_region_ids(_padded(H, wh), _padded(W, ww), (wh, ww), shift)
    windows = _partition(ids, (wh, ww))  # (nW, N)
    differ = windows[:, None, :] != windows[:, :, None]
    return np.where(differ, MASK_VALUE, 0.0).astype(np.float32)


def relative_position_index(ws: int | Pair) -> np.ndarray:
    """(N, N) int, N = wh·ww: index into the bias table for query i and key j of a window,
    (Δh + wh − 1)·(2ww − 1) + (Δw + ww − 1) with Δ = position_i − position_j (ij order)."""
    return _index(ws).numpy()


def effective_window_shift(resolution: Pair, window: int | Pair, shift: int | Pair,
                           always_partition: bool = False) -> tuple[Pair, Pair]:
    """timm's rule (``SwinTransformerBlock._calc_window_shift``), *per axis*: where the map is
    no larger than the window, the window shrinks to the map and that axis is not shifted.
    ``always_partition`` keeps the configured window and shift (and pads instead)."""
    window, shift = _pair(window), _pair(shift)
    if always_partition:
        return window, shift
    win = tuple(r if r <= w else w for r, w in zip(resolution, window))
    sft = tuple(0 if r <= w else s for r, w, s in zip(resolution, win, shift))
    return (win[0], win[1]), (sft[0], sft[1])


def official_window_shift(resolution: Pair, window: int, shift: int) -> tuple[int, int]:
    """microsoft/Swin-Transformer's rule: if min(resolution) ≤ window the shift is 0 and the
    (square) window becomes min(resolution). Same as timm on square maps."""
    if min(resolution) <= window:
        return min(resolution), 0
    return window, shift


def window_layout(H: int, W: int, ws: int | Pair, shift: int | Pair) -> np.ndarray:
    """(nW, N, 2) int: for window w and slot i, the (row, col) of the token there in the
    un-shifted map, or (−1, −1) for padding. timm's order of operations: roll the H×W map by
    (−s, −s), pad bottom/right to window multiples, partition."""
    wh, ww = _pair(ws)
    sh, sw = _pair(shift)
    hp, wp = _padded(H, wh), _padded(W, ww)
    grid = np.full((hp, wp, 2), -1, dtype=np.int64)
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    # torch.roll(x, -s)[i] = x[(i + s) mod H]
    grid[:H, :W, 0] = (rows + sh) % H
    grid[:H, :W, 1] = (cols + sw) % W
    return _partition(grid, (wh, ww))


def token_slots(layout: np.ndarray, H: int, W: int) -> np.ndarray:
    """Inverse of ``window_layout``: (H, W, 2) int, the (window, slot) of every map token."""
    slots = np.full((H, W, 2), -1, dtype=np.int64)
    w, i = np.nonzero(layout[..., 0] >= 0)
    r, c = layout[w, i, 0], layout[w, i, 1]
    slots[r, c, 0] = w
    slots[r, c, 1] = i
    return slots


def _origin(H: int, W: int, ws: Pair, shift: Pair) -> np.ndarray:
    """(Hp, Wp) int on the rolled+padded grid: which piece of the original map a token came
    from: 0 body, 1 top rows (wrapped to the bottom), 2 left columns (wrapped to the right),
    3 top-left corner; −1 padding."""
    wh, ww = ws
    sh, sw = shift
    origin = np.full((_padded(H, wh), _padded(W, ww)), -1, dtype=np.int64)
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    origin[:H, :W] = (rows >= H - sh).astype(int) * (sh > 0) + 2 * (cols >= W - sw) * (sw > 0)
    return origin


def mask_wrap_leak(H: int, W: int, ws: int | Pair, shift: int | Pair) -> bool:
    """True when the shifted-window mask lets two real tokens of one window attend to each
    other although they come from different pieces of the rolled map (so they are not
    neighbours in the image).

    Never happens without padding, nor in the official detection code (which pads, *then*
    rolls). timm rolls, then pads, then builds the regions on the padded grid Hp: the wrapped
    rows start at H − s but the region borders sit at Hp − ws and Hp − s, so unless the padding
    is 0 or exactly ws − s, some wrapped tokens share a region (and a window) with tokens from
    the far side of the image. Same for columns.
    """
    wh, ww = _pair(ws)
    sh, sw = _pair(shift)
    if sh == 0 and sw == 0:
        return False
    origin = _partition(_origin(H, W, (wh, ww), (sh, sw)), (wh, ww))
    region = _partition(shift_region_ids(_padded(H, wh), _padded(W, ww), (wh, ww), (sh, sw)),
                        (wh, ww))
    real = (origin[:, :, None] >= 0) & (origin[:, None, :] >= 0)
    same_region = region[:, :, None] == region[:, None, :]
    return bool(np.any(real & same_region & (origin[:, :, None] != origin[:, None, :])))


@dataclass
class ShiftSteps:
    """The cyclic shift step by step, in timm's order, for a figure to draw.

    Token grids hold the token's row-major index in the *original* map (−1 = padding)."""

    grid: Pair  # (H, W) tokens
    window: Pair
    shift: Pair
    pad: Pair  # (pad_h, pad_w) added bottom/right after the roll
    original: np.ndarray  # (H, W): step 0, before the roll
    rolled: np.ndarray  # (H, W): step 1, after torch.roll(x, (−s, −s))
    padded: np.ndarray  # (Hp, Wp): step 2, rolled then padded (what is partitioned)
    region_ids: np.ndarray  # (Hp, Wp): the 9 regions of the mask on the padded grid
    window_ids: np.ndarray  # (Hp, Wp): step 3, the windows
    origin: np.ndarray  # (Hp, Wp): 0 body, 1 wrapped rows, 2 wrapped columns, 3 corner, −1 pad
    mask: np.ndarray  # (nW, N, N) the additive mask these regions give
    restored: np.ndarray  # (H, W): step 4, after the reverse roll (+s, +s) == original
    values_rolled: np.ndarray | None = None  # the caller's values (e.g. the image), rolled
    leak: bool = False  # see ``mask_wrap_leak``

    @property
    def num_windows(self) -> int:
        return int(self.window_ids.max()) + 1


def cyclic_shift_steps(tokens: Pair | np.ndarray, ws: int | Pair, shift: int | Pair,
                       token_px: int | Pair = 1) -> ShiftSteps:
    """The step-through of a shifted-window block for a map of ``tokens`` = (H, W), or for an
    array whose first two axes are the map in units of ``token_px`` pixels (e.g. the model's
    input image with token_px = the patch size): that array is rolled by s·token_px too."""
    ph, pw = _pair(token_px)
    values = None
    if isinstance(tokens, np.ndarray):
        values = tokens
        H, W = tokens.shape[0] // ph, tokens.shape[1] // pw
    else:
        H, W = _pair(tokens)
    wh, ww = _pair(ws)
    sh, sw = _pair(shift)
    hp, wp = _padded(H, wh), _padded(W, ww)
    original = np.arange(H * W).reshape(H, W)
    rolled = np.roll(original, (-sh, -sw), axis=(0, 1))
    padded = np.full((hp, wp), -1, dtype=np.int64)
    padded[:H, :W] = rolled
    return ShiftSteps(
        grid=(H, W), window=(wh, ww), shift=(sh, sw), pad=(hp - H, wp - W),
        original=original, rolled=rolled, padded=padded,
        region_ids=shift_region_ids(hp, wp, (wh, ww), (sh, sw)),
        window_ids=window_partition_ids(hp, wp, (wh, ww)),
        origin=_origin(H, W, (wh, ww), (sh, sw)),
        mask=shifted_window_mask(H, W, (wh, ww), (sh, sw)),
        restored=np.roll(rolled, (sh, sw), axis=(0, 1)),
        values_rolled=None if values is None else np.roll(values, (-sh * ph, -sw * pw), axis=(0, 1)),
        leak=mask_wrap_leak(H, W, (wh, ww), (sh, sw)),
    )


# --------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class BlockGeometry:
    """What one Swin block does to its map for this input size."""

    stage: int
    block: int
    name: str  # module name, e.g. "layers.0.blocks.1"
    resolution: Pair  # (H, W) tokens entering the block
    window: Pair  # effective window (timm clips it to the map per axis)
    shift: Pair  # (0, 0) on regular (W-MSA) blocks and where the map fits in one window
    pad: Pair  # (pad_h, pad_w) zero tokens added bottom/right after the roll
    heads: int
    token_px: Pair  # size of one token in input pixels
    wrap_leak: bool  # see ``mask_wrap_leak``

    @property
    def padded(self) -> Pair:
        return self.resolution[0] + self.pad[0], self.resolution[1] + self.pad[1]

    @property
    def windows(self) -> Pair:
        return self.padded[0] // self.window[0], self.padded[1] // self.window[1]

    @property
    def num_windows(self) -> int:
        return self.windows[0] * self.windows[1]

    @property
    def window_area(self) -> int:
        return self.window[0] * self.window[1]

    @property
    def shifted(self) -> bool:
        return any(self.shift)


@dataclass(frozen=True)
class StageGeometry:
    stage: int
    resolution: Pair  # (H, W) tokens after this stage's patch merging
    token_px: Pair
    dim: int
    downsample: bool  # the stage starts with PatchMerging (2×2 tokens -> 1, C -> 2C)
    blocks: tuple[BlockGeometry, ...]


def _swin_blocks(model: nn.Module):
    layers = getattr(model, "layers", None)
    if layers is None or not any(isinstance(m, WINDOW_ATTENTIONS) for m in model.modules()):
        raise TypeError("expected a timm SwinTransformer or SwinTransformerV2 (layers of blocks with WindowAttention)")
    return layers


def swin_geometry(model: nn.Module, image_hw: Pair) -> list[StageGeometry]:
    """Per stage and block of a timm ``SwinTransformer``: map size, effective window and shift,
    padding, windows and token size, for an input image of ``image_hw`` pixels.

    Window and shift are read from the blocks (timm fixes them when the model is built or
    resized with ``set_input_size``; a dynamic-size model keeps them for other inputs)."""
    layers = _swin_blocks(model)
    embed = model.patch_embed
    ph, pw = _pair(embed.patch_size)
    H, W = _pair(image_hw)
    if getattr(embed, "strict_img_size", False) and tuple(embed.img_size) != (H, W):
        raise ValueError(f"this model only accepts {tuple(embed.img_size)} px inputs, not {(H, W)}")
    if getattr(embed, "dynamic_img_pad", False):
        res = (math.ceil(H / ph), math.ceil(W / pw))
    else:
        if H % ph or W % pw:
            raise ValueError(f"input {(H, W)} px is not a multiple of the patch size {(ph, pw)}")
        res = (H // ph, W // pw)
    scale = 1
    stages = []
    for s, stage in enumerate(layers):
        downsample = not isinstance(stage.downsample, nn.Identity)
        if downsample:
            res = ((res[0] + 1) // 2, (res[1] + 1) // 2)  # PatchMerging pads odd sizes
            scale *= 2
        token_px = (ph * scale, pw * scale)
        blocks = []
        for b, block in enumerate(stage.blocks):
            window, shift = _pair(block.window_size), _pair(block.shift_size)
            pad = ((window[0] - res[0] % window[0]) % window[0],
                   (window[1] - res[1] % window[1]) % window[1])
            blocks.append(BlockGeometry(
                stage=s, block=b, name=f"layers.{s}.blocks.{b}", resolution=res, window=window,
                shift=shift, pad=pad, heads=int(block.attn.num_heads), token_px=token_px,
                wrap_leak=mask_wrap_leak(res[0], res[1], window, shift)))
        stages.append(StageGeometry(stage=s, resolution=res, token_px=token_px,
                                    dim=int(stage.blocks[0].dim) if len(stage.blocks) else 0,
                                    downsample=downsample, blocks=tuple(blocks)))
    return stages


# --------------------------------------------------------------------------- capture

@dataclass
class BlockCapture:
    """One block's window attention, for the whole batch (float32)."""

    name: str  # "layers.{stage}.blocks.{block}"
    probs: torch.Tensor  # (B·nW, heads, N, N) softmax(content + bias + mask)
    content: torch.Tensor  # (B·nW, heads, N, N) q·kᵀ·scale
    bias: torch.Tensor  # (heads, N, N) relative position bias
    mask: torch.Tensor | None  # (nW, N, N) 0 / −100, None on unshifted blocks

    @property
    def logits(self) -> torch.Tensor:
        logits = self.content + self.bias
        if self.mask is not None:
            nw, n = self.mask.shape[0], self.mask.shape[-1]
            heads = self.bias.shape[0]
            logits = (logits.view(-1, nw, heads, n, n) + self.mask[None, :, None]).view_as(logits)
        return logits


@dataclass
class SwinCapture:
    logits: torch.Tensor  # (B, K), pooled features without a classifier
    blocks: list[BlockCapture]  # in execution order


def capture_swin(model: nn.Module, x: torch.Tensor) -> SwinCapture:
    """One no-grad forward pass of an eval-mode timm ``SwinTransformer`` that records every
    block's attention probabilities, content logits, relative position bias and mask (through
    the capture's window-attention adapter: hooks installed once, a recorder per request)."""
    _swin_blocks(model)
    if model.training:
        raise ValueError("capture_swin needs model.eval(): dropout would change the attention")
    logits, rec = capture.capture(model, x)
    attns = [n for n, m in model.named_modules() if isinstance(m, WINDOW_ATTENTIONS)]
    missing = [n.removesuffix(".attn") for n in attns if n not in rec.records]
    if missing:
        raise RuntimeError(f"window attention was not captured for {missing[:3]}")
    blocks = []
    for name in attns:
        record = rec.records[name]
        blocks.append(BlockCapture(name=name.removesuffix(".attn"), probs=record.probs, content=record.content,
                                   bias=record.bias, mask=record.mask))
    return SwinCapture(logits=logits, blocks=blocks)


# --------------------------------------------------------------------------- one analysis

@dataclass
class BlockAttention:
    """One block's attention for one image, with the layout to put it back on the map."""

    geometry: BlockGeometry
    probs: np.ndarray  # (nW, heads, N, N) float32
    content: np.ndarray  # (nW, heads, N, N) q·kᵀ·scale
    bias: np.ndarray  # (heads, N, N)
    mask: np.ndarray | None  # (nW, N, N), None on unshifted blocks
    layout: np.ndarray  # (nW, N, 2): (row, col) in the un-shifted map of each slot, −1 = padding
    slots: np.ndarray  # (H, W, 2): (window, slot) of each map token

    @property
    def logits(self) -> np.ndarray:
        """(nW, heads, N, N) content + bias + mask: what the softmax sees."""
        logits = self.content + self.bias[None]
        return logits if self.mask is None else logits + self.mask[:, None]


@dataclass
class SwinAnalysis:
    """All arrays of the Swin lens for one image (batch item ``index`` of the input)."""

    stages: list[StageGeometry]
    blocks: list[BlockAttention]  # execution order: stage 0 block 0, stage 0 block 1, ...
    logits: np.ndarray  # (K,), pooled features without a classifier
    input_shape: tuple[int, ...]
    patch_size: Pair
    cosine: bool = False  # SwinV2: content = τ·cos(q, k), bias = 16·σ(CPB)

    def block(self, stage: int, block: int) -> BlockAttention:
        for item in self.blocks:
            if (item.geometry.stage, item.geometry.block) == (stage, block):
                return item
        raise IndexError(f"no block {block} in stage {stage}")

    def window_of_token(self, stage: int, block: int, row: int, col: int) -> tuple[int, int]:
        """(window index in timm's order, slot inside the window) of map token (row, col)."""
        w, i = self.block(stage, block).slots[row, col]
        return int(w), int(i)

    def window_id_map(self, stage: int, block: int) -> np.ndarray:
        """(H, W) int: the window of every token, in un-shifted map coordinates (shifted
        windows come out as the wrapped pieces the roll put together)."""
        return self.block(stage, block).slots[..., 0].copy()

    def _query_row(self, stage: int, block: int, head: int | None, row: int, col: int):
        item = self.block(stage, block)
        w, i = item.slots[row, col]
        probs = item.probs[w, :, i]  # (heads, N)
        return item, w, (probs.mean(0) if head is None else probs[head])

    def token_attention(self, stage: int, block: int, head: int | None,
                        row: int, col: int) -> np.ndarray:
        """(H, W) float32: how much map token (row, col) attends to each token of its window,
        placed on the stage's map in un-shifted image coordinates; NaN outside the window.
        ``head`` None = mean over heads. Weight on padding slots is left out (see
        ``padding_attention``)."""
        item, w, weights = self._query_row(stage, block, head, row, col)
        out = np.full(item.geometry.resolution, np.nan, dtype=np.float32)
        layout = item.layout[w]
        real = layout[:, 0] >= 0
        out[layout[real, 0], layout[real, 1]] = weights[real]
        return out

    def padding_attention(self, stage: int, block: int, head: int | None,
                          row: int, col: int) -> float:
        """The attention weight map token (row, col) puts on padding (zero) tokens."""
        item, w, weights = self._query_row(stage, block, head, row, col)
        return float(weights[item.layout[w][:, 0] < 0].sum())


def analyze(model: nn.Module, x: torch.Tensor, index: int = 0) -> SwinAnalysis:
    """One captured forward pass of a timm ``SwinTransformer`` on ``x`` (B, 3, H, W) and the
    per-block arrays of image ``index``."""
    capture = capture_swin(model, x)
    stages = swin_geometry(model, (x.shape[-2], x.shape[-1]))
    geometries = [b for s in stages for b in s.blocks]
    blocks = []
    for geo, cap in zip(geometries, capture.blocks, strict=True):
        nw = geo.num_windows
        if cap.probs.shape[0] != x.shape[0] * nw or cap.name != geo.name:
            raise RuntimeError(f"{cap.name}: captured {cap.probs.shape[0]} windows, geometry "
                               f"expects {x.shape[0]}×{nw}")
        layout = window_layout(*geo.resolution, geo.window, geo.shift)
        take = slice(index * nw, (index + 1) * nw)
        own = (lambda t: t.cpu().numpy()) if x.shape[0] == 1 else (lambda t: t.cpu().numpy().copy())
        blocks.append(BlockAttention(
            geometry=geo,
            probs=own(cap.probs[take]),
            content=own(cap.content[take]),
            bias=cap.bias.cpu().numpy(),
            mask=None if cap.mask is None else cap.mask.cpu().numpy(),
            layout=layout,
            slots=token_slots(layout, *geo.resolution),
        ))
    return SwinAnalysis(
        stages=stages, blocks=blocks, logits=capture.logits[index].cpu().numpy(),
        input_shape=tuple(x.shape), patch_size=_pair(model.patch_embed.patch_size),
        cosine=any(isinstance(m, WindowAttentionV2) for m in model.modules()),
    )


# --------------------------------------------------------------------------- for the app

@dataclass
class SwinImageAnalysis:
    """The Swin lens for one uploaded image: the analysis plus what the page shows beside it."""

    swin: SwinAnalysis
    model_image: np.ndarray  # (H, W, 3) uint8, the pixels the model saw
    steps: tuple[tuple[str, str], ...]  # preprocessing, (en, zh)
    predictions: list[Prediction]


def analyze_image(loaded: LoadedModel, image: LoadedImage, geometry: str = "model") -> SwinImageAnalysis:
    """Preprocess ``image`` for ``loaded`` (a timm Swin) and run one captured forward pass."""
    pre = preprocess(image.image, loaded.data_config, geometry, _pair(loaded.model.patch_embed.patch_size))
    swin = analyze(loaded.model, pre.tensor)
    return SwinImageAnalysis(swin=swin, model_image=pre.model_image, steps=pre.steps,
                             predictions=top_predictions(swin.logits, loaded.class_names))


def export_arrays(result: "SwinImageAnalysis") -> dict[str, np.ndarray]:
    """The arrays of ``python -m explorer export swin`` (and of the API): per block
    ``stage{s}_block{b}_*`` probabilities, content and bias logits, window ids, mask and region
    ids, and geometry = H, W, window h/w, shift h/w, pad h/w."""
    arrays: dict[str, np.ndarray] = {"logits": result.swin.logits, "model_image": result.model_image}
    for item in result.swin.blocks:
        geo = item.geometry
        prefix = f"stage{geo.stage}_block{geo.block}"
        arrays[f"{prefix}_probs"] = item.probs
        arrays[f"{prefix}_content"] = item.content
        arrays[f"{prefix}_bias"] = item.bias
        arrays[f"{prefix}_window_ids"] = result.swin.window_id_map(geo.stage, geo.block)
        arrays[f"{prefix}_geometry"] = np.array([*geo.resolution, *geo.window, *geo.shift, *geo.pad])
        if item.mask is not None:
            arrays[f"{prefix}_mask"] = item.mask
            arrays[f"{prefix}_region_ids"] = shift_region_ids(*geo.padded, geo.window, geo.shift)
    return arrays
