"""The position-bias lens as pure computation: Swin's learned relative position bias (RPB)
tables and CrossFormer's dynamic position bias (DPB) MLP, read or evaluated once per model,
the index that gathers a table into the (M², M²) bias added to q·kᵀ·scale, and which tokens
share a CrossFormer SDA/LDA group. numpy/torch only; drawing lives in ``figures.py``.

The tables are parameters: no image and no forward pass are needed, except to draw the
groups on an image. Conventions follow FACTS.md: Δ = position(query) − position(key),
index = (Δh + Mh − 1)·(2Mw − 1) + (Δw + Mw − 1); table rows are offsets h-major.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2
from torch import nn

from explorer.core.devices import device_of
from explorer.core.images import LoadedImage
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.models import geometry
from explorer.models.geometry import Pair, gather_bias
from explorer.models.geometry import pair as _pair
from explorer.models.swinv2_cpb import cpb_table, cpb_to_table
from explorer.models.crossformer import (Attention, CrossFormer, GroupLayout, RPBAttention,
                                         dpb_table, dpb_to_rpb)

__all__ = [
    "G_RANGE", "relative_position_index", "gather_bias", "table_offsets", "pair_offsets",
    "BlockBias", "BiasAnalysis", "analyze", "analyze_swin", "analyze_crossformer",
    "export_arrays", "crossformer_stage_grids", "crossformer_layouts", "BiasImage",
    "analyze_image",
]


# Group sizes G' at which the DPB MLP is evaluated for the slider (and always the trained G).
G_RANGE: Pair = (2, 14)


# --------------------------------------------------------------------------- the mathematics

def relative_position_index(ws: int | Pair) -> np.ndarray:
    """(N, N) int: the bias-table row of query i and key j in a window (timm's index, as numpy)."""
    return geometry.relative_position_index(ws).numpy()


def table_offsets(ws: int | Pair) -> tuple[np.ndarray, np.ndarray]:
    """(Δh, Δw) of every row of a ((2Mh−1)(2Mw−1), heads) table, each ((2Mh−1)(2Mw−1),):
    row r holds Δh = r // (2Mw−1) − (Mh−1), Δw = r % (2Mw−1) − (Mw−1)."""
    mh, mw = _pair(ws)
    dh, dw = np.meshgrid(np.arange(1 - mh, mh), np.arange(1 - mw, mw), indexing="ij")
    return dh.ravel(), dw.ravel()


def pair_offsets(ws: int | Pair) -> tuple[np.ndarray, np.ndarray]:
    """(Δh, Δw) for query slot i and key slot j of a window (slots row-major), each (N, N):
    Δ = position_i − position_j."""
    mh, mw = _pair(ws)
    rows, cols = np.meshgrid(np.arange(mh), np.arange(mw), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    return rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]


# --------------------------------------------------------------------------- per block

@dataclass
class BlockBias:
    """The position bias of one attention block."""

    family: str  # "swin" | "crossformer"
    stage: int
    block: int
    name: str  # attention module name, e.g. "layers.0.blocks.1.attn"
    kind: str  # "W-MSA" | "SW-MSA" (Swin) or "SDA" | "LDA" (CrossFormer, by block parity)
    window: Pair  # (Mh, Mw): the window (Swin) or trained group size G (CrossFormer)
    heads: int
    table: np.ndarray  # ((2Mh−1)(2Mw−1), heads) float32: the RPB table (CrossFormer: dpb_to_rpb's)
    index: np.ndarray  # (N, N) int64, N = Mh·Mw
    source: str = "rpb"  # "rpb" learned table · "dpb" converted from the DPB MLP · "cpb" SwinV2's · "none"
    dpb: dict[int, np.ndarray] = field(default_factory=dict)  # G' -> ((2G'−1)², heads)
    dpb_max_diff: float | None = None  # max |DPB(G) − converted table| at the trained G
    dpb_hidden: int | None = None  # hidden width of the DPB MLP (C/16)
    cpb_offsets: np.ndarray | None = None  # (2Mh−1, 2Mw−1, 2): SwinV2's log-spaced (Δh, Δw), the MLP's input

    @property
    def span(self) -> Pair:
        return 2 * self.window[0] - 1, 2 * self.window[1] - 1

    @property
    def area(self) -> int:
        return self.window[0] * self.window[1]

    @property
    def has_dpb(self) -> bool:
        return bool(self.dpb)

    @property
    def group_size(self) -> int:
        """The trained group size G (square groups; Swin: the window height)."""
        return self.window[0]

    def head_tables(self) -> np.ndarray:
        """(heads, 2Mh−1, 2Mw−1): rows Δh = −(Mh−1)..Mh−1, columns Δw likewise."""
        return self.table.T.reshape(self.heads, *self.span)

    def gathered(self) -> np.ndarray:
        """(heads, N, N): the bias added to the logits of query slot i, key slot j."""
        return gather_bias(self.table, self.index)

    def dpb_grid(self, group_size: int) -> np.ndarray:
        """(heads, 2G'−1, 2G'−1): the DPB MLP's output at group size G'."""
        side = 2 * group_size - 1
        return self.dpb[group_size].T.reshape(self.heads, side, side)


@dataclass
class BiasAnalysis:
    """The position bias of every block of one model, in execution order."""

    family: str
    blocks: list[BlockBias]
    depths: tuple[int, ...]
    patch_stride: int  # input pixels per token at stage 0
    input_size: Pair  # (H, W) the model was built for
    g_range: Pair = G_RANGE
    # SwinV2: max |logit difference| between the model (CPB MLP) and cpb_to_table's (fixed tables)
    cpb_logit_diff: float | None = None

    def block(self, stage: int, block: int) -> BlockBias:
        for item in self.blocks:
            if (item.stage, item.block) == (stage, block):
                return item
        raise IndexError(f"no block {block} in stage {stage}")

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def dpb_max_diff(self) -> float | None:
        diffs = [b.dpb_max_diff for b in self.blocks if b.dpb_max_diff is not None]
        return max(diffs) if diffs else None


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def analyze_swin(model: nn.Module) -> BiasAnalysis:
    """Read every ``relative_position_bias_table`` of a timm ``SwinTransformer``; for a
    ``SwinTransformerV2`` evaluate every CPB MLP at its window (the table ``cpb_to_table``
    makes) and check the converted model's logits against the model's on a probe input."""
    blocks = []
    for s, stage in enumerate(model.layers):
        for b, blk in enumerate(stage.blocks):
            attn = blk.attn
            if not isinstance(attn, (WindowAttention, WindowAttentionV2)):
                raise TypeError(f"layers.{s}.blocks.{b}.attn is not a timm WindowAttention")
            window = _pair(attn.window_size)
            shifted = any(_pair(getattr(blk, "shift_size", 0)))
            item = BlockBias(family="swin", stage=s, block=b, name=f"layers.{s}.blocks.{b}.attn",
                             kind="SW-MSA" if shifted else "W-MSA", window=window, heads=attn.num_heads,
                             table=np.zeros(0), index=relative_position_index(window), source="rpb")
            if isinstance(attn, WindowAttentionV2):
                with torch.no_grad():
                    item.table = _numpy(cpb_table(attn))
                item.source, item.cpb_offsets = "cpb", _numpy(attn.relative_coords_table[0])
                item.dpb_hidden = attn.cpb_mlp[0].out_features
            else:
                item.table = _numpy(attn.relative_position_bias_table)
            blocks.append(item)
    embed = model.patch_embed
    analysis = BiasAnalysis(family="swin", blocks=blocks, depths=tuple(len(stage.blocks) for stage in model.layers),
                            patch_stride=_pair(embed.patch_size)[0], input_size=_pair(embed.img_size))
    if any(item.source == "cpb" for item in blocks):
        generator = torch.Generator().manual_seed(0)
        probe = torch.randn(1, 3, *analysis.input_size, generator=generator).to(device_of(model))
        with torch.no_grad():
            analysis.cpb_logit_diff = float((model(probe) - cpb_to_table(model)(probe)).abs().max())
    return analysis


def analyze_crossformer(model: CrossFormer, g_range: Pair = G_RANGE) -> BiasAnalysis:
    """Evaluate every DPB MLP of a CrossFormer at G' in ``g_range`` (and at its trained G),
    convert the model with ``dpb_to_rpb`` and compare the two at the trained G. A model that
    already holds RPB tables (converted) is read as it is."""
    has_dpb = any(isinstance(m, Attention) and m.position_bias_enabled for m in model.modules())
    rpb = dpb_to_rpb(model) if has_dpb else model
    blocks = []
    for s, (stage, rpb_stage) in enumerate(zip(model.layers, rpb.layers)):
        for b, (blk, rpb_blk) in enumerate(zip(stage.blocks, rpb_stage.blocks)):
            attn, converted = blk.attn, rpb_blk.attn
            g = attn.group_size
            item = BlockBias(
                family="crossformer", stage=s, block=b, name=f"layers.{s}.blocks.{b}.attn",
                kind="LDA" if blk.lsda_flag == 1 else "SDA", window=(g, g), heads=attn.num_heads,
                table=_numpy(converted.relative_position_bias_table),
                index=relative_position_index(g), source="rpb")
            if isinstance(attn, Attention):
                if attn.position_bias_enabled:
                    item.source = "dpb"
                    item.dpb_hidden = attn.pos.pos_dim
                    with torch.no_grad():
                        for size in sorted(set(range(g_range[0], g_range[1] + 1)) | {g}):
                            item.dpb[size] = _numpy(dpb_table(attn.pos, size))
                    item.dpb_max_diff = float(np.abs(item.dpb[g] - item.table).max())
                else:
                    item.source = "none"
            elif not isinstance(attn, RPBAttention):
                raise TypeError(f"{item.name}: unknown attention {type(attn).__name__}")
            blocks.append(item)
    return BiasAnalysis(family="crossformer", blocks=blocks,
                        depths=tuple(len(stage.blocks) for stage in model.layers),
                        patch_stride=int(model.patch_embed.patch_size[0]),
                        input_size=_pair(model.patch_embed.img_size), g_range=g_range)


def analyze(model: nn.Module, g_range: Pair = G_RANGE) -> BiasAnalysis:
    """The position bias of a timm Swin or of a CrossFormer (DPB or converted RPB)."""
    if isinstance(model, CrossFormer):
        return analyze_crossformer(model, g_range)
    if hasattr(model, "layers") and any(isinstance(m, (WindowAttention, WindowAttentionV2)) for m in model.modules()):
        return analyze_swin(model)
    raise TypeError(f"{type(model).__name__} has no relative position bias this lens can read "
                    f"(expected a timm SwinTransformer (v1 or v2) or a CrossFormer)")


def export_arrays(analysis: BiasAnalysis) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: per block its RPB table and index; for a DPB CrossFormer the
    DPB table at the trained G, the converted RPB table and their max |difference|."""
    out: dict[str, np.ndarray] = {
        "block_names": np.array([b.name for b in analysis.blocks]),
        "block_kinds": np.array([b.kind for b in analysis.blocks]),
        "window_sizes": np.array([b.window for b in analysis.blocks], dtype=np.int64),
    }
    for item in analysis.blocks:
        prefix = f"stage{item.stage}_block{item.block}"
        out[f"{prefix}_relative_position_index"] = item.index
        if item.has_dpb:
            g = item.group_size
            out[f"{prefix}_dpb_table_G{g}"] = item.dpb[g]
            out[f"{prefix}_converted_rpb_table"] = item.table
            out[f"{prefix}_dpb_max_abs_diff"] = np.array(item.dpb_max_diff, dtype=np.float64)
        elif item.source == "cpb":
            out[f"{prefix}_cpb_table"] = item.table  # 16·σ(MLP(offsets)): the fixed table it converts to
            out[f"{prefix}_cpb_offsets"] = item.cpb_offsets
        else:
            out[f"{prefix}_rpb_table"] = item.table
    if analysis.cpb_logit_diff is not None:
        out["cpb_max_abs_logit_diff"] = np.array(analysis.cpb_logit_diff, dtype=np.float64)
    return out


# --------------------------------------------------------------------------- CrossFormer groups

def crossformer_stage_grids(model: CrossFormer, image_hw: Pair) -> list[Pair]:
    """Token grid (H, W) of each stage for an input of ``image_hw`` px, from the config: the
    stride-s embedding gives floor(H/s) (all its kernels use padding (k − s)/2), each patch
    merging floor(H/2)."""
    stride = int(model.patch_embed.patch_size[0])
    h, w = image_hw[0] // stride, image_hw[1] // stride
    grids = []
    for _ in model.layers:
        grids.append((h, w))
        h, w = h // 2, w // 2
    return grids


def crossformer_layouts(model: CrossFormer, image_hw: Pair) -> list[list[GroupLayout]]:
    """Per stage and block, the grouping the block really uses at this input size (SDA/LDA,
    or SDA with a smaller group where min(H, W) ≤ G)."""
    return [[blk.layout(*grid) for blk in stage.blocks]
            for stage, grid in zip(model.layers, crossformer_stage_grids(model, image_hw))]


@dataclass
class BiasImage:
    """A CrossFormer's groups for one uploaded image."""

    model_image: np.ndarray  # (H, W, 3) uint8, the pixels the model would see
    grids: list[Pair]  # token grid per stage
    token_px: list[Pair]  # input pixels per token, per stage
    layouts: list[list[GroupLayout]]
    group_maps: list[list[np.ndarray]]  # per stage, per block: (H, W) group id of every token
    steps: tuple[tuple[str, str], ...]


def analyze_image(loaded: LoadedModel, image: LoadedImage, geometry: str = "model") -> BiasImage:
    """Preprocess ``image`` for a CrossFormer and work out every block's groups (no forward
    pass: only the grid sizes matter)."""
    model = loaded.model
    if not isinstance(model, CrossFormer):
        raise TypeError("SDA/LDA groups exist only in CrossFormer models")
    stride = int(model.patch_embed.patch_size[0])
    pre = preprocess(image.image, loaded.data_config, geometry, (stride, stride))
    hw = pre.model_image.shape[:2]
    grids = crossformer_stage_grids(model, hw)
    layouts = crossformer_layouts(model, hw)
    return BiasImage(
        model_image=pre.model_image, grids=grids,
        token_px=[(stride * 2 ** s, stride * 2 ** s) for s in range(len(grids))],
        layouts=layouts,
        group_maps=[[layout.group_map().numpy() for layout in stage] for stage in layouts],
        steps=pre.steps)
