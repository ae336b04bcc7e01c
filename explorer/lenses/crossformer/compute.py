"""The CrossFormer lens as pure computation: one captured forward pass of a CrossFormer v1
(per block: which tokens share a group, SDA or LDA, and softmax(content + bias + mask) with
its three parts), and the cross-scale embedding read off the model's convolutions.
numpy/torch only; drawing lives in ``figures.py``.

Groups and layouts come from the model itself (``GroupLayout`` of each block, recorded during
the very forward pass whose attention is shown); the SDA/LDA group maps on the image are the
position-bias lens's (``explorer.lenses.bias.compute.analyze_image``), checked against the
layouts the forward pass really used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.lenses.bias.compute import BiasImage, crossformer_stage_grids
from explorer.lenses.bias.compute import analyze_image as groups_on_image
from explorer.core import capture
from explorer.models.crossformer import Attention, CrossFormer, CrossFormerCapture, GroupLayout, RPBAttention
from explorer.models.geometry import Pair

__all__ = [
    "ScaleConv", "ScaleLayer", "cross_scale_layers", "CrossFormerBlockAttention",
    "CrossFormerAnalysis", "analyze", "CrossFormerImageAnalysis", "analyze_image",
    "export_arrays",
]


# --------------------------------------------------------------------------- cross-scale embedding

@dataclass(frozen=True)
class ScaleConv:
    """One convolution of a cross-scale embedding layer (all share the stride)."""

    kernel: int
    stride: int
    padding: int
    in_channels: int
    out_channels: int
    channels: Pair  # [start, stop) of its output in the concatenated token vector

    @property
    def channel_range(self) -> str:
        return f"{self.channels[0]}–{self.channels[1] - 1}"


@dataclass(frozen=True)
class ScaleLayer:
    """The patch embedding (``stage`` 0) or the patch merging that makes stage ``stage``'s
    tokens: convs with different kernels and one stride, outputs concatenated small to large."""

    stage: int  # the stage whose tokens this layer makes
    name: str  # module name: "patch_embed" or "layers.{stage-1}.downsample"
    input_px: int  # input-image pixels per unit of this layer's input (1 for the image)
    convs: tuple[ScaleConv, ...]

    @property
    def stride(self) -> int:
        return self.convs[0].stride

    @property
    def token_px(self) -> int:
        """Input-image pixels per output token."""
        return self.stride * self.input_px

    @property
    def out_channels(self) -> int:
        return sum(c.out_channels for c in self.convs)

    def footprint_px(self, conv: ScaleConv) -> int:
        """Side in input-image pixels of what ``conv`` reads directly for one token."""
        return conv.kernel * self.input_px

    def footprint(self, conv: ScaleConv, row: int, col: int) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1) in input-image pixels of what ``conv`` reads for output token
        (row, col): k×k input units starting at (row·stride − padding). Parts outside the
        image are the conv's zero padding. Every kernel is centred on the token."""
        y0 = (row * conv.stride - conv.padding) * self.input_px
        x0 = (col * conv.stride - conv.padding) * self.input_px
        side = self.footprint_px(conv)
        return y0, x0, y0 + side, x0 + side


def _conv_specs(convs: nn.ModuleList) -> tuple[ScaleConv, ...]:
    specs, start = [], 0
    for conv in convs:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected Conv2d in a cross-scale layer, got {type(conv).__name__}")
        kh, kw = conv.kernel_size
        if kh != kw or conv.stride[0] != conv.stride[1] or conv.padding[0] != conv.padding[1]:
            raise TypeError("cross-scale convolutions are square with one stride and padding")
        specs.append(ScaleConv(kernel=int(kh), stride=int(conv.stride[0]),
                               padding=int(conv.padding[0]), in_channels=int(conv.in_channels),
                               out_channels=int(conv.out_channels),
                               channels=(start, start + int(conv.out_channels))))
        start += int(conv.out_channels)
    return tuple(specs)


def cross_scale_layers(model: CrossFormer) -> list[ScaleLayer]:
    """The cross-scale embedding of every stage, read from the model's convolutions: the
    patch embedding (``patch_embed.projs``) for stage 0, then each stage's patch merging
    (``layers.{s}.downsample.reductions``) for stage s + 1."""
    layers = [ScaleLayer(stage=0, name="patch_embed", input_px=1,
                         convs=_conv_specs(model.patch_embed.projs))]
    for s, stage in enumerate(model.layers):
        if stage.downsample is None:
            continue
        prev = layers[-1]
        layers.append(ScaleLayer(stage=s + 1, name=f"layers.{s}.downsample",
                                 input_px=prev.token_px,
                                 convs=_conv_specs(stage.downsample.reductions)))
    return layers


# --------------------------------------------------------------------------- attention

def _bias_source(attn: nn.Module) -> str:
    if isinstance(attn, Attention):
        return "dpb" if attn.position_bias_enabled else "none"
    if isinstance(attn, RPBAttention):
        return "rpb"
    return "none"


@dataclass
class CrossFormerBlockAttention:
    """One block's grouped attention for one image (float32 numpy)."""

    stage: int
    block: int
    name: str  # attention module name, e.g. "layers.0.blocks.1.attn"
    layout: GroupLayout  # what the block really did at this input size
    lda_block: bool  # an odd block (LDA unless the map is ≤ G)
    trained_group: int  # the block's configured G
    heads: int
    bias_source: str  # "dpb" | "rpb" | "none"
    probs: np.ndarray  # (groups, heads, n, n), n = g²: softmax over keys
    content: np.ndarray  # (groups, heads, n, n): (q·scale)·kᵀ
    bias: np.ndarray  # (heads, n, n): the gathered position bias
    mask: np.ndarray | None  # (groups, n, n): −1e6 on padded keys; None without padding
    token_index: np.ndarray  # (groups, n): row-major map index of each slot, −1 = padding
    slots: np.ndarray  # (H, W, 2): (group, slot) of every map token

    @property
    def kind(self) -> str:
        return self.layout.kind

    @property
    def fallback(self) -> bool:
        """An LDA block that became SDA because the map is ≤ G."""
        return self.lda_block and self.layout.kind == "SDA"

    @property
    def grid(self) -> Pair:
        return self.layout.height, self.layout.width

    @property
    def logits(self) -> np.ndarray:
        """(groups, heads, n, n) content + bias + mask: what the softmax sees."""
        logits = self.content + self.bias[None]
        return logits if self.mask is None else logits + self.mask[:, None]

    def members(self, group: int) -> np.ndarray:
        """(n, 2) int: (row, col) on the map of each slot of ``group``, (−1, −1) = padding."""
        index = self.token_index[group]
        width = self.layout.width
        rows = np.where(index >= 0, index // width, -1)
        cols = np.where(index >= 0, index % width, -1)
        return np.stack([rows, cols], axis=-1)


def _slots(token_index: np.ndarray, grid: Pair) -> np.ndarray:
    slots = np.full((*grid, 2), -1, dtype=np.int64)
    group, slot = np.nonzero(token_index >= 0)
    flat = token_index[group, slot]
    slots[flat // grid[1], flat % grid[1], 0] = group
    slots[flat // grid[1], flat % grid[1], 1] = slot
    return slots


@dataclass
class CrossFormerAnalysis:
    """All arrays of the CrossFormer lens for one image."""

    blocks: list[CrossFormerBlockAttention]  # execution order
    depths: tuple[int, ...]
    stage_grids: list[Pair]  # token grid (H, W) per stage
    token_px: list[Pair]  # input pixels per token, per stage
    group_sizes: tuple[int, ...]  # configured G per stage
    heads: tuple[int, ...]  # heads per stage
    scale_layers: list[ScaleLayer]  # cross-scale embedding per stage
    logits: np.ndarray  # (K,), pooled features without a classifier
    input_shape: tuple[int, ...]

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    def block(self, stage: int, block: int) -> CrossFormerBlockAttention:
        for item in self.blocks:
            if (item.stage, item.block) == (stage, block):
                return item
        raise IndexError(f"no block {block} in stage {stage}")

    def scale_layer(self, stage: int) -> ScaleLayer:
        return next(layer for layer in self.scale_layers if layer.stage == stage)

    def group_of_token(self, stage: int, block: int, row: int, col: int) -> Pair:
        """(group, slot inside the group) of map token (row, col) in this block."""
        group, slot = self.block(stage, block).slots[row, col]
        return int(group), int(slot)

    def group_map(self, stage: int, block: int) -> np.ndarray:
        """(H, W) int: the group of every token in this block."""
        return self.block(stage, block).slots[..., 0].copy()

    def _query_row(self, stage: int, block: int, head: int | None, row: int, col: int):
        item = self.block(stage, block)
        group, slot = self.group_of_token(stage, block, row, col)
        probs = item.probs[group, :, slot]  # (heads, n)
        return item, group, (probs.mean(0) if head is None else probs[head])

    def token_attention(self, stage: int, block: int, head: int | None,
                        row: int, col: int) -> np.ndarray:
        """(H, W) float32: how much map token (row, col) attends to each member of its
        group; NaN on every token outside the group. ``head`` None = mean over heads. Weight
        on padded slots is left out (see ``padding_attention``)."""
        item, group, weights = self._query_row(stage, block, head, row, col)
        out = np.full(item.grid, np.nan, dtype=np.float32)
        members = item.members(group)
        real = members[:, 0] >= 0
        out[members[real, 0], members[real, 1]] = weights[real]
        return out

    def padding_attention(self, stage: int, block: int, head: int | None,
                          row: int, col: int) -> float:
        """The weight map token (row, col) puts on padded (zero) slots of its group."""
        item, group, weights = self._query_row(stage, block, head, row, col)
        return float(weights[item.token_index[group] < 0].sum())

    def logit_split(self, stage: int, block: int, group: int,
                    head: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(content, bias, mask, probs) of one group, each (n, n) (query slots × key slots),
        for one head or the mean of heads. probs = softmax(content + bias + mask) per head;
        for the mean of heads each part is averaged on its own."""
        item = self.block(stage, block)
        n = item.layout.tokens_per_group

        def pick(array: np.ndarray) -> np.ndarray:
            return array.mean(0) if head is None else array[head]

        mask = item.mask[group] if item.mask is not None else np.zeros((n, n), np.float32)
        return pick(item.content[group]), pick(item.bias), mask, pick(item.probs[group])


def capture_crossformer(model: CrossFormer, x: torch.Tensor) -> CrossFormerCapture:
    """One no-grad forward pass that also returns every block's attention probabilities,
    content logits and position bias (see ``AttentionRecord``), block by block."""
    logits, rec = capture.capture(model, x)
    names = [n for n, m in model.named_modules() if isinstance(m, (Attention, RPBAttention))]
    missing = [n for n in names if n not in rec.records]
    if missing:
        raise RuntimeError(f"group attention was not captured for {missing[:3]}")
    records = [rec.records[n] for n in names]
    stage_grids = [(r.layout.height, r.layout.width) for r in records if r.name.endswith("blocks.0.attn")]
    return CrossFormerCapture(logits=logits, records=records, stage_grids=stage_grids)


def analyze(model: CrossFormer, x: torch.Tensor, index: int = 0) -> CrossFormerAnalysis:
    """One captured forward pass of a CrossFormer on ``x`` (B, 3, H, W) and the per-block
    arrays of image ``index``."""
    if not isinstance(model, CrossFormer):
        raise TypeError("the CrossFormer lens needs a CrossFormer model")
    if model.training:
        raise ValueError("put the model in eval mode: dropout and drop path would change the attention")
    if min(x.shape[-2:]) < model.min_input_size:
        raise UserFacingError(
            f"CrossFormer needs images of at least {model.min_input_size} px per side; this "
            f"input is {x.shape[-1]}×{x.shape[-2]} px.",
            f"CrossFormer 要求图像每边至少 {model.min_input_size} 像素；当前输入为 "
            f"{x.shape[-1]}×{x.shape[-2]} 像素。")
    captured = capture_crossformer(model, x)
    records = {r.name: r for r in captured.records}
    grids = crossformer_stage_grids(model, (x.shape[-2], x.shape[-1]))
    stride = int(model.patch_embed.patch_size[0])
    blocks = []
    for s, stage in enumerate(model.layers):
        for b, blk in enumerate(stage.blocks):
            name = f"layers.{s}.blocks.{b}.attn"
            rec = records.get(name)
            if rec is None:
                raise RuntimeError(f"attention of {name} was not recorded")
            layout = rec.layout
            if (layout.height, layout.width) != grids[s] or layout != blk.layout(*grids[s]):
                raise RuntimeError(f"{name}: recorded layout {layout} does not match the config")
            token_index = layout.token_index().numpy()

            def own(t: torch.Tensor) -> np.ndarray:
                return t[index].cpu().numpy().copy()

            blocks.append(CrossFormerBlockAttention(
                stage=s, block=b, name=name, layout=layout, lda_block=blk.lsda_flag == 1,
                trained_group=int(blk.group_size), heads=int(blk.attn.num_heads),
                bias_source=_bias_source(blk.attn), probs=own(rec.probs),
                content=own(rec.content), bias=rec.bias.cpu().numpy().copy(),
                mask=None if rec.mask is None else rec.mask.cpu().numpy().copy(),
                token_index=token_index, slots=_slots(token_index, grids[s])))
    return CrossFormerAnalysis(
        blocks=blocks, depths=tuple(len(stage.blocks) for stage in model.layers),
        stage_grids=grids, token_px=[(stride * 2 ** s,) * 2 for s in range(len(grids))],
        group_sizes=tuple(int(stage.blocks[0].group_size) if len(stage.blocks) else 0
                          for stage in model.layers),
        heads=tuple(int(stage.blocks[0].attn.num_heads) if len(stage.blocks) else 0
                    for stage in model.layers),
        scale_layers=cross_scale_layers(model), logits=captured.logits[index].cpu().numpy().copy(),
        input_shape=tuple(x.shape))


# --------------------------------------------------------------------------- for the app

@dataclass
class CrossFormerImageAnalysis:
    """The CrossFormer lens for one uploaded image."""

    cross: CrossFormerAnalysis
    groups: BiasImage  # the position-bias lens's groups on this image (same layouts)
    predictions: list[Prediction]

    @property
    def model_image(self) -> np.ndarray:
        """(H, W, 3) uint8: the pixels the model saw."""
        return self.groups.model_image

    @property
    def steps(self) -> tuple[tuple[str, str], ...]:
        return self.groups.steps


def analyze_image(loaded: LoadedModel, image: LoadedImage,
                  geometry: str = "model") -> CrossFormerImageAnalysis:
    """Preprocess ``image`` for ``loaded`` (a CrossFormer) and run one captured forward pass."""
    model = loaded.model
    if not isinstance(model, CrossFormer):
        raise UserFacingError("This tab needs a CrossFormer model.", "此标签页需要 CrossFormer 模型。")
    stride = int(model.patch_embed.patch_size[0])
    pre = preprocess(image.image, loaded.data_config, geometry, (stride, stride))
    cross = analyze(model, pre.tensor)
    groups = groups_on_image(loaded, image, geometry)
    # The picture the groups are drawn on must be the one the model saw, cut the same way.
    if groups.model_image.shape != pre.model_image.shape or groups.layouts != [
            [cross.block(s, b).layout for b in range(d)] for s, d in enumerate(cross.depths)]:
        raise RuntimeError("the groups lens and the forward pass disagree on the layouts")
    return CrossFormerImageAnalysis(cross=cross, groups=groups,
                                    predictions=top_predictions(cross.logits, loaded.class_names))


def export_arrays(result: CrossFormerImageAnalysis | CrossFormerAnalysis) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: per block (prefix ``stage{s}_block{b}_``) its layout kind,
    layout numbers (H, W, g, interval h/w, padded H/W), group map, token index per group
    slot, probs, content, bias and (with padding) mask; plus the logits and the cross-scale
    convolutions (stage, kernel, stride, padding, in/out channels, first/last channel)."""
    analysis = result.cross if isinstance(result, CrossFormerImageAnalysis) else result
    out: dict[str, np.ndarray] = {
        "logits": analysis.logits,
        "block_names": np.array([b.name for b in analysis.blocks]),
        "block_kinds": np.array([b.kind for b in analysis.blocks]),
        "cross_scale_convs": np.array(
            [[layer.stage, c.kernel, c.stride, c.padding, c.in_channels, c.out_channels,
              c.channels[0], c.channels[1] - 1]
             for layer in analysis.scale_layers for c in layer.convs], dtype=np.int64),
    }
    if isinstance(result, CrossFormerImageAnalysis):
        out["model_image"] = result.model_image
    for item in analysis.blocks:
        prefix = f"stage{item.stage}_block{item.block}"
        lay = item.layout
        out[f"{prefix}_kind"] = np.array(item.kind)
        out[f"{prefix}_layout"] = np.array(
            [lay.height, lay.width, lay.group_size, *lay.interval, lay.padded_height,
             lay.padded_width], dtype=np.int64)
        out[f"{prefix}_group_map"] = item.slots[..., 0].copy()
        out[f"{prefix}_token_index"] = item.token_index
        out[f"{prefix}_probs"] = item.probs
        out[f"{prefix}_content"] = item.content
        out[f"{prefix}_bias"] = item.bias
        if item.mask is not None:
            out[f"{prefix}_mask"] = item.mask
    return out
