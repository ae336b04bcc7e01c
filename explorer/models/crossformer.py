"""CrossFormer v1 (Wang et al. 2021, "CrossFormer: A Versatile Vision Transformer Hinging on
Cross-scale Attention") with its dynamic position bias (DPB), plus the exact DPB -> RPB
conversion. (What each attention layer computes is captured by hooks, in
``explorer.core.capture``; the model never records anything itself.)

timm has no CrossFormer, so the architecture is written here, from the facts in
``/work/shared/FACTS.md``, with module names and state-dict keys identical to the official
release (cheerss/CrossFormer ``models/crossformer.py``) so its checkpoints load strictly.

Where the official classification code and this file differ (all shape-compatible):
* The official v1 model fixes the input size at build time (asserts it) and decides per block
  once whether the group shrinks; here every forward takes its own (H, W), so one model serves
  any image size. At the build size the result is the same computation.
* LDA interval: the v1 classification code never reads ``crs_interval``; it derives the
  interval from the group size, ``reshape(B, G, H/G, G, W/G, C).permute(0, 2, 4, 1, 3, 5)``,
  so every group is G×G tokens at stride H/G. The detection/segmentation backbones instead
  take a fixed interval I from ``crs_interval`` and groups of (H/I)×(W/I) tokens. At 224 px
  [8, 4, 2, 1] *is* H/G per stage, so the two agree on every released ImageNet model. We
  follow the classification code (fixed G×G groups: one RPB table per layer is then exact at
  every input size); ``crs_interval`` is accepted and stored only for config compatibility.
* Padding: where H or W is not a multiple of the group size the grid is zero-padded at the
  bottom/right after ``norm1`` and padded keys get -1e6 before softmax, as the official
  backbones do (the classification code cannot run such sizes at all). For LDA the padded
  size is a multiple of G and the interval is ceil(H/G).
* Patch merging accepts odd sizes (both convs give floor(H/2)); the official code asserts even.
* The official attention carries two persistent buffers, ``attn.biases`` (the (2G-1)² DPB
  inputs) and ``attn.relative_position_index``; they are constants of G, so they are computed
  on the fly here and ``checkpoint_filter_fn`` checks and drops them when a file has them.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, to_2tuple, trunc_normal_
from torch import nn

from explorer.models import geometry

__all__ = [
    "CrossFormer", "CrossFormerBlock", "Attention", "RPBAttention", "DynamicPosBias",
    "PatchEmbed", "PatchMerging", "Stage", "GroupLayout", "AttentionRecord",
    "CrossFormerCapture", "CONFIGS", "crossformer_tiny", "crossformer_small", "crossformer_base",
    "crossformer_large", "create_crossformer", "relative_offsets", "relative_position_index",
    "gather_bias", "dpb_table", "sda_groups", "lda_groups", "block_layout", "dpb_to_rpb",
    "checkpoint_filter_fn",
]

# Added to the logits of padded keys (the official backbones' NEG_INF): far below any real
# logit yet finite, so a row never becomes NaN.
NEG_INF = -1e6

# Official ImageNet configs (configs/*_patch4_group7_224.yaml); params T 27.8M, S 30.7M,
# B 52.0M, L 92.0M; ImageNet top-1 81.5 / 82.5 / 83.4 / 84.0.
_COMMON = dict(patch_size=[4, 8, 16, 32], group_size=[7, 7, 7, 7], crs_interval=[8, 4, 2, 1],
               merge_size=[[2, 4], [2, 4], [2, 4]])
CONFIGS: dict[str, dict[str, Any]] = {
    "crossformer_tiny": dict(embed_dim=64, depths=[1, 1, 8, 6], num_heads=[2, 4, 8, 16],
                             drop_path_rate=0.1, **_COMMON),
    "crossformer_small": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                              drop_path_rate=0.2, **_COMMON),
    "crossformer_base": dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24],
                             drop_path_rate=0.3, **_COMMON),
    "crossformer_large": dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                              drop_path_rate=0.5, **_COMMON),
}


# --------------------------------------------------------------------------- geometry

def relative_offsets(group_size: int) -> torch.Tensor:
    """The DPB input for a G×G group: all (2G−1)² offsets (Δh, Δw), Δ in [1−G, G−1], from an
    ij meshgrid flattened h-major, as raw (unnormalised) floats. Shape ((2G−1)², 2).

    Row r holds Δh = r // (2G−1) − (G−1), Δw = r % (2G−1) − (G−1): the row order of a Swin
    relative-position-bias table."""
    span = torch.arange(1 - group_size, group_size)
    dh, dw = torch.meshgrid(span, span, indexing="ij")
    return torch.stack([dh, dw]).flatten(1).t().float()


def relative_position_index(group_size: int) -> torch.Tensor:
    """Swin's (G², G²) long index: for query i and key j at (h, w) positions inside a group
    (row-major), index = (Δh + G − 1)·(2G − 1) + (Δw + G − 1) with Δ = pos_i − pos_j."""
    return geometry.relative_position_index(group_size)


def gather_bias(table: torch.Tensor, group_size: int) -> torch.Tensor:
    """Turn a ((2G−1)², heads) table into the (heads, G², G²) bias added to q·kᵀ·scale."""
    index = geometry.relative_position_index(group_size).to(table.device)
    return geometry.gather_bias(table, index)


def dpb_table(pos: "DynamicPosBias", group_size: int) -> torch.Tensor:
    """Evaluate a DPB MLP on the offsets of a G×G group -> ((2G−1)², heads).

    Any G works, not only the one the model was trained with: this is how DPB extrapolates
    to other group sizes (a learned RPB table cannot)."""
    ref = pos.pos_proj.weight
    return pos(relative_offsets(group_size).to(device=ref.device, dtype=ref.dtype))


def _subtable_rows(group_size: int, table_size: int) -> torch.Tensor:
    """Rows of a (2T−1)² table that hold the offsets of a smaller G×G group (G ≤ T)."""
    offsets = relative_offsets(group_size).long()
    return (offsets[:, 0] + table_size - 1) * (2 * table_size - 1) + offsets[:, 1] + table_size - 1


@dataclass(frozen=True)
class GroupLayout:
    """How one block groups an H×W token grid: the SDA/LDA choice, the group side g (tokens
    per group = g²), and the zero padding that makes the grid divisible.

    SDA: adjacent g×g squares. LDA: g×g tokens sampled at stride (interval) ceil(H/g),
    i.e. official v1 ``reshape(B, g, Hp/g, g, Wp/g, C).permute(0, 2, 4, 1, 3, 5)``. Groups
    are numbered row-major over (square row, square col) for SDA and over the offset inside
    the stride (ih, iw) for LDA; tokens inside a group row-major — the order the attention
    matrices use."""

    kind: Literal["SDA", "LDA"]
    group_size: int
    height: int
    width: int

    @property
    def padded_height(self) -> int:
        return math.ceil(self.height / self.group_size) * self.group_size

    @property
    def padded_width(self) -> int:
        return math.ceil(self.width / self.group_size) * self.group_size

    @property
    def is_padded(self) -> bool:
        return (self.padded_height, self.padded_width) != (self.height, self.width)

    @property
    def interval(self) -> tuple[int, int]:
        """Stride between neighbouring members of a group (1 for SDA)."""
        if self.kind == "SDA":
            return 1, 1
        return self.padded_height // self.group_size, self.padded_width // self.group_size

    @property
    def num_groups(self) -> int:  # the same count for SDA squares and LDA strides
        return (self.padded_height // self.group_size) * (self.padded_width // self.group_size)

    @property
    def tokens_per_group(self) -> int:
        return self.group_size * self.group_size

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Hp, Wp, C) -> (B·groups, g², C)."""
        g = self.group_size
        if self.kind == "SDA":
            return rearrange(x, "b (nh gh) (nw gw) c -> (b nh nw) (gh gw) c", gh=g, gw=g)
        return rearrange(x, "b (gh ih) (gw iw) c -> (b ih iw) (gh gw) c", gh=g, gw=g)

    def ungroup(self, x: torch.Tensor) -> torch.Tensor:
        """(B·groups, g², C) -> (B, Hp, Wp, C); the inverse of ``group``."""
        g = self.group_size
        nh, nw = self.padded_height // g, self.padded_width // g
        if self.kind == "SDA":
            return rearrange(x, "(b nh nw) (gh gw) c -> b (nh gh) (nw gw) c", nh=nh, nw=nw, gh=g)
        return rearrange(x, "(b ih iw) (gh gw) c -> b (gh ih) (gw iw) c", ih=nh, iw=nw, gh=g)

    def token_index(self) -> torch.Tensor:
        """(groups, g²) long: the row-major index (r·W + c) in the unpadded grid of each
        group member, −1 for padding. Derived by grouping an index grid with ``group``, so it
        is the exact order the model uses."""
        hp, wp = self.padded_height, self.padded_width
        rows = torch.arange(hp).view(hp, 1).expand(hp, wp)
        cols = torch.arange(wp).view(1, wp).expand(hp, wp)
        flat = torch.where((rows < self.height) & (cols < self.width),
                           rows * self.width + cols, torch.full_like(rows, -1))
        return self.group(flat.reshape(1, hp, wp, 1)).squeeze(-1)

    def group_map(self) -> torch.Tensor:
        """(H, W) long: the group number of every real token (for drawing on the image)."""
        index = self.token_index()
        out = torch.empty(self.height * self.width, dtype=torch.long)
        group_ids = torch.arange(index.shape[0]).view(-1, 1).expand_as(index)
        real = index >= 0
        out[index[real]] = group_ids[real]
        return out.view(self.height, self.width)

    def attention_mask(self, device: torch.device | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        """(groups, g², g²) additive mask: NEG_INF on padded keys, else 0; None if unpadded."""
        if not self.is_padded:
            return None
        pad_key = (self.token_index() < 0).to(device)  # (groups, g²)
        mask = torch.zeros(pad_key.shape[0], 1, pad_key.shape[1], device=device, dtype=dtype)
        return mask.masked_fill(pad_key[:, None, :], NEG_INF).expand(-1, pad_key.shape[1], -1)


def block_layout(height: int, width: int, group_size: int, lda: bool) -> GroupLayout:
    """The grouping a block really uses: as official v1, when min(H, W) ≤ G the group becomes
    min(H, W) and attention is SDA (one group spans the short side)."""
    if min(height, width) <= group_size:
        return GroupLayout("SDA", min(height, width), height, width)
    return GroupLayout("LDA" if lda else "SDA", group_size, height, width)


def sda_groups(height: int, width: int, group_size: int) -> torch.Tensor:
    """(H, W) map of SDA group ids: the G×G squares (padded at the bottom/right)."""
    return GroupLayout("SDA", group_size, height, width).group_map()


def lda_groups(height: int, width: int, group_size: int) -> torch.Tensor:
    """(H, W) map of LDA group ids: tokens at stride ceil(H/G) (rows) and ceil(W/G) (cols)
    share a group, i.e. group = (r mod Ih)·Iw + (c mod Iw). Pure geometry: a block falls back
    to SDA when min(H, W) ≤ G (see ``block_layout``)."""
    return GroupLayout("LDA", group_size, height, width).group_map()


# --------------------------------------------------------------------------- recording

@dataclass
class AttentionRecord:
    """What one attention layer computed in one forward pass (float32, detached), as the
    capture's hooks (``explorer.core.capture``) record it: the model itself never records.

    probs = softmax(content + bias + mask) over the last axis; padded keys (see ``layout``)
    get ~0 probability, padded query rows are computed and later discarded by the model."""

    name: str  # module name, e.g. "layers.0.blocks.1.attn"
    layout: GroupLayout
    probs: torch.Tensor  # (B, groups, heads, g², g²)
    content: torch.Tensor  # (B, groups, heads, g², g²): (q·scale)·kᵀ
    bias: torch.Tensor  # (heads, g², g²): the gathered DPB/RPB table
    mask: torch.Tensor | None  # (groups, g², g²) padding mask, None without padding


@dataclass
class CrossFormerCapture:
    logits: torch.Tensor  # (B, classes), or pooled features without a head
    records: list[AttentionRecord]  # one per block, in order
    stage_grids: list[tuple[int, int]]  # token grid (H, W) of each stage


# --------------------------------------------------------------------------- modules

class Mlp(nn.Module):
    def __init__(self, in_features: int, hidden_features: int | None = None,
                 out_features: int | None = None, act_layer: type[nn.Module] = nn.GELU,
                 drop: float = 0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def _pos_mlp(width: int, out: int) -> nn.Sequential:
    # Indices 0/1/2 = LayerNorm/ReLU/Linear make the official keys pos1.0 and pos1.2.
    return nn.Sequential(nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, out))


class DynamicPosBias(nn.Module):
    """DPB: an MLP from a relative offset (Δh, Δw) to one bias per head.

    ``dim`` is what the attention passes (its dim // 4), so the hidden width is dim // 4 of
    that: C/16 of the block width."""

    def __init__(self, dim: int, num_heads: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.num_heads = num_heads
        self.pos_dim = dim // 4
        self.pos_proj = nn.Linear(2, self.pos_dim)
        self.pos1 = _pos_mlp(self.pos_dim, self.pos_dim)
        self.pos2 = _pos_mlp(self.pos_dim, self.pos_dim)
        self.pos3 = _pos_mlp(self.pos_dim, num_heads)

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        """(..., 2) raw offsets -> (..., heads)."""
        pos = self.pos_proj(offsets)
        if self.residual:
            pos = pos + self.pos1(pos)
            pos = pos + self.pos2(pos)
            return self.pos3(pos)
        return self.pos3(self.pos2(self.pos1(pos)))


class _GroupAttention(nn.Module):
    """Multi-head self-attention inside groups with a relative position bias; subclasses say
    where the ((2g−1)², heads) bias table comes from."""

    def __init__(self, dim: int, group_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.dim = dim
        self.group_size = group_size  # the largest g this layer sees (runtime g may be smaller)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_bias_table(self, group_size: int) -> torch.Tensor | None:
        raise NotImplementedError

    def position_bias(self, group_size: int) -> torch.Tensor | None:
        """(heads, g², g²) bias for a g×g group, or None without position bias."""
        table = self.position_bias_table(group_size)
        return None if table is None else gather_bias(table, group_size)

    def forward(self, x: torch.Tensor, layout: GroupLayout) -> torch.Tensor:
        """x: (B·groups, g², C) grouped as ``layout`` says."""
        n = x.shape[1]
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3,
                            h=self.num_heads)
        q = q * self.scale  # scale q before the product, in the official order
        content = q @ k.transpose(-2, -1)
        bias = self.position_bias(layout.group_size)
        logits = content if bias is None else content + bias.unsqueeze(0)
        mask = layout.attention_mask(x.device, logits.dtype)
        if mask is not None:
            groups = mask.shape[0]
            logits = (logits.view(-1, groups, self.num_heads, n, n) + mask[None, :, None])
            logits = logits.view(-1, self.num_heads, n, n)
        attn = self.attn_drop(logits.softmax(dim=-1))
        x = rearrange(attn @ v, "b h n d -> b n (h d)")
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, group_size={self.group_size}, num_heads={self.num_heads}"


class Attention(_GroupAttention):
    """Group attention with a dynamic position bias (official name and keys: qkv, proj,
    pos.*). The DPB MLP runs on every call, at the group size of that call."""

    def __init__(self, dim: int, group_size: int | Sequence[int], num_heads: int,
                 qkv_bias: bool = True, qk_scale: float | None = None, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, position_bias: bool = True):
        gh, gw = to_2tuple(group_size)
        if gh != gw:
            raise ValueError(f"CrossFormer groups are square, got {gh}×{gw}")
        super().__init__(dim, gh, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop)
        self.position_bias_enabled = position_bias
        if position_bias:
            self.pos = DynamicPosBias(dim // 4, num_heads, residual=False)

    def position_bias_table(self, group_size: int) -> torch.Tensor | None:
        return dpb_table(self.pos, group_size) if self.position_bias_enabled else None


class RPBAttention(_GroupAttention):
    """Group attention with a fixed, learned-style relative position bias table, exactly as
    Swin: ``relative_position_bias_table`` ((2G−1)², heads) gathered with
    ``relative_position_index``. Made by ``dpb_to_rpb``; it holds no DPB parameters.

    A group smaller than G (small inputs) reads the rows of its offsets; a larger one has
    offsets the table never saw, which is where DPB extrapolates and RPB cannot."""

    def __init__(self, dim: int, group_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__(dim, group_size, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * group_size - 1) ** 2, num_heads))

    def position_bias_table(self, group_size: int) -> torch.Tensor:
        if group_size == self.group_size:
            return self.relative_position_bias_table
        if group_size > self.group_size:
            raise ValueError(f"this RPB table covers groups up to {self.group_size}×"
                             f"{self.group_size}; a {group_size}×{group_size} group needs offsets "
                             f"it never learned (a DPB model can evaluate them)")
        rows = _subtable_rows(group_size, self.group_size).to(self.relative_position_bias_table.device)
        return self.relative_position_bias_table[rows]

    @classmethod
    def from_dpb(cls, attn: Attention) -> "RPBAttention":
        """The same layer with the DPB MLP evaluated once at the layer's group size G."""
        new = cls(attn.dim, attn.group_size, attn.num_heads, qkv_bias=attn.qkv.bias is not None,
                  qk_scale=attn.scale)
        new.scale = attn.scale
        new.qkv, new.proj = attn.qkv, attn.proj
        new.attn_drop, new.proj_drop = attn.attn_drop, attn.proj_drop
        ref = attn.qkv.weight
        with torch.no_grad():
            table = attn.position_bias_table(attn.group_size)
            if table is None:  # no position bias: an all-zero table is the same model
                table = torch.zeros_like(new.relative_position_bias_table)
            new.relative_position_bias_table = nn.Parameter(
                table.detach().clone().to(device=ref.device, dtype=ref.dtype))
        new.train(attn.training)
        return new


class CrossFormerBlock(nn.Module):
    """Pre-norm block: LN -> group (SDA if ``lsda_flag`` == 0 else LDA) -> attention ->
    ungroup -> residual; LN -> MLP -> residual."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int,
                 group_size: int = 7, lsda_flag: int = 0, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0,
                 act_layer: type[nn.Module] = nn.GELU,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, num_patch_size: int = 1):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)  # build size; forward takes its own
        self.num_heads = num_heads
        self.group_size = group_size
        self.lsda_flag = lsda_flag
        self.mlp_ratio = mlp_ratio
        self.num_patch_size = num_patch_size
        self.norm1 = norm_layer(dim)
        # Sized for the largest group this block can see: the group only ever shrinks.
        self.attn = Attention(dim, group_size=group_size, num_heads=num_heads, qkv_bias=qkv_bias,
                              qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def layout(self, height: int, width: int) -> GroupLayout:
        return block_layout(height, width, self.group_size, lda=self.lsda_flag == 1)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        height, width = hw
        batch, length, channels = x.shape
        if length != height * width:
            raise ValueError(f"{length} tokens do not make a {height}×{width} grid")
        layout = self.layout(height, width)
        shortcut = x
        x = self.norm1(x).view(batch, height, width, channels)
        if layout.is_padded:  # zeros after the norm, as the official backbones
            x = F.pad(x, (0, 0, 0, layout.padded_width - width, 0, layout.padded_height - height))
        x = layout.ungroup(self.attn(layout.group(x), layout))
        x = x[:, :height, :width].reshape(batch, length, channels)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, input_resolution={self.input_resolution}, "
                f"num_heads={self.num_heads}, group_size={self.group_size}, "
                f"lsda_flag={self.lsda_flag}, mlp_ratio={self.mlp_ratio}")


def _split_dims(total: int, kernels: Sequence[int]) -> list[int]:
    """Channels per kernel, small to large: halve for each next kernel, the last takes what
    the one before it took (e.g. D -> D/2, D/4, D/8, D/8)."""
    return [total // 2 ** (i + 1) if i < len(kernels) - 1 else total // 2 ** i
            for i in range(len(kernels))]


class PatchEmbed(nn.Module):
    """Cross-scale embedding layer: convs with kernels [4, 8, 16, 32], all stride 4 and padding
    (k − 4)/2 (so they sample the same centres), channels concatenated small to large, then LN."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: Sequence[int] = (4,),
                 in_chans: int = 3, embed_dim: int = 96,
                 norm_layer: Callable[[int], nn.Module] | None = None):
        super().__init__()
        img_size = to_2tuple(img_size)
        self.img_size = img_size
        self.patch_size = list(patch_size)
        stride = self.patch_size[0]
        self.patches_resolution = [img_size[0] // stride, img_size[1] // stride]
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.projs = nn.ModuleList(
            nn.Conv2d(in_chans, dim, kernel_size=k, stride=stride, padding=(k - stride) // 2)
            for k, dim in zip(self.patch_size, _split_dims(embed_dim, self.patch_size)))
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C, H, W) image -> ((B, H/4·W/4, D) tokens, (H/4, W/4))."""
        maps = [proj(x) for proj in self.projs]
        hw = tuple(maps[0].shape[-2:])
        x = torch.cat([rearrange(m, "b c h w -> b (h w) c") for m in maps], dim=2)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw


class PatchMerging(nn.Module):
    """Cross-scale merging between stages: LN(C), then convs with kernels [2, 4], stride 2,
    padding (k − 2)/2, concatenated to 2C channels."""

    def __init__(self, input_resolution: tuple[int, int], dim: int,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 patch_size: Sequence[int] = (2,), num_input_patch_size: int = 1):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        self.dim = dim
        self.patch_size = list(patch_size)
        self.norm = norm_layer(dim)
        self.reductions = nn.ModuleList(
            nn.Conv2d(dim, out, kernel_size=k, stride=2, padding=(k - 2) // 2)
            for k, out in zip(self.patch_size, _split_dims(2 * dim, self.patch_size)))

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        x = rearrange(self.norm(x), "b (h w) c -> b c h w", h=hw[0], w=hw[1])
        maps = [red(x) for red in self.reductions]
        new_hw = tuple(maps[0].shape[-2:])
        return torch.cat([rearrange(m, "b c h w -> b (h w) c") for m in maps], dim=2), new_hw

    def extra_repr(self) -> str:
        return f"input_resolution={self.input_resolution}, dim={self.dim}"


class Stage(nn.Module):
    """The blocks of one stage (SDA on even, LDA on odd blocks), then the patch merging that
    starts the next stage (official layout: ``layers.{s}.downsample``)."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int,
                 group_size: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float | Sequence[float] = 0.0,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 downsample: type[PatchMerging] | None = None, use_checkpoint: bool = False,
                 patch_size_end: Sequence[int] | None = (4,), num_patch_size: int | None = None):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.depth = depth
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            CrossFormerBlock(dim, input_resolution, num_heads, group_size=group_size,
                             lsda_flag=i % 2, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                             qk_scale=qk_scale, drop=drop, attn_drop=attn_drop,
                             drop_path=drop_path[i] if isinstance(drop_path, Sequence) else drop_path,
                             norm_layer=norm_layer, num_patch_size=num_patch_size or 1)
            for i in range(depth))
        self.downsample = (downsample(input_resolution, dim=dim, norm_layer=norm_layer,
                                      patch_size=patch_size_end, num_input_patch_size=num_patch_size)
                           if downsample is not None else None)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        for blk in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(blk, x, hw, use_reentrant=False)
            else:
                x = blk(x, hw)
        if self.downsample is not None:
            x, hw = self.downsample(x, hw)
        return x, hw

    def extra_repr(self) -> str:
        return f"dim={self.dim}, input_resolution={self.input_resolution}, depth={self.depth}"


# Keywords of the later official code (CrossFormer++) that v1 does not use.
_IGNORED_OFFICIAL_KWARGS = {"group_type", "use_cpe", "pad_type", "no_mask", "adaptive_interval",
                            "use_acl", "impl_type"}


class CrossFormer(nn.Module):
    """CrossFormer v1 classifier. Keywords as the official constructor; ``img_size`` only sets
    the default input size (and the size of ``absolute_pos_embed`` when ``ape``): forward
    accepts any H, W ≥ 4·2^(stages−1)."""

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: Sequence[int] = (4, 8, 16, 32),
                 in_chans: int = 3, num_classes: int = 1000, embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 group_size: Sequence[int] = (7, 7, 7, 7), crs_interval: Sequence[int] = (8, 4, 2, 1),
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: float | None = None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, ape: bool = False,
                 patch_norm: bool = True, use_checkpoint: bool = False,
                 merge_size: Sequence[Sequence[int]] = ((2, 4), (2, 4), (2, 4)), **kwargs: Any):
        super().__init__()
        unknown = set(kwargs) - _IGNORED_OFFICIAL_KWARGS
        if unknown:
            warnings.warn(f"CrossFormer ignores unknown keywords {sorted(unknown)}", stacklevel=2)
        num_layers = len(depths)
        group_size = [group_size] * num_layers if isinstance(group_size, int) else list(group_size)
        ratios = ([float(mlp_ratio)] * num_layers if isinstance(mlp_ratio, (int, float))
                  else [float(r) for r in mlp_ratio])
        if embed_dim % 2 ** (len(patch_size) - 1):
            raise ValueError(f"embed_dim {embed_dim} must split over {len(patch_size)} kernels")
        self.config = dict(img_size=img_size, patch_size=list(patch_size), in_chans=in_chans,
                           num_classes=num_classes, embed_dim=embed_dim, depths=list(depths),
                           num_heads=list(num_heads), group_size=group_size,
                           crs_interval=list(crs_interval), mlp_ratio=mlp_ratio,
                           qkv_bias=qkv_bias, qk_scale=qk_scale, ape=ape, patch_norm=patch_norm,
                           merge_size=[list(m) for m in merge_size])
        self.num_classes = num_classes
        self.num_layers = num_layers
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_norm = patch_norm
        self.num_features = int(embed_dim * 2 ** (num_layers - 1))
        self.mlp_ratio = mlp_ratio
        self.group_size = group_size
        # Not used by the v1 classification model (see the module docstring).
        self.crs_interval = list(crs_interval)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim,
                                      norm_layer=norm_layer if patch_norm else None)
        res = self.patch_embed.patches_resolution
        self.patches_resolution = res
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, embed_dim))
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)

        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        num_patch_sizes = [len(patch_size)] + [len(m) for m in merge_size]
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            last = i == num_layers - 1
            self.layers.append(Stage(
                dim=embed_dim * 2 ** i, input_resolution=(res[0] // 2 ** i, res[1] // 2 ** i),
                depth=depths[i], num_heads=num_heads[i], group_size=group_size[i],
                mlp_ratio=ratios[i], qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                attn_drop=attn_drop_rate, drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])],
                norm_layer=norm_layer, downsample=None if last else PatchMerging,
                use_checkpoint=use_checkpoint, patch_size_end=None if last else merge_size[i],
                num_patch_size=num_patch_sizes[i]))
        self.norm = norm_layer(self.num_features)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        # What timm.data.resolve_data_config reads: the official eval transform (resize to
        # 256/224 of the size, bicubic, centre crop, ImageNet mean/std).
        self.pretrained_cfg = dict(
            input_size=(in_chans, *to_2tuple(img_size)), interpolation="bicubic", crop_pct=0.875,
            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, num_classes=num_classes,
            first_conv="patch_embed.projs.0", classifier="head")

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"absolute_pos_embed"}

    @torch.jit.ignore
    def no_weight_decay_keywords(self) -> set[str]:
        return {"relative_position_bias_table"}

    @property
    def min_input_size(self) -> int:
        return self.patch_embed.patch_size[0] * 2 ** (self.num_layers - 1)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C, H, W) -> final normed tokens (B, h·w, C) and their grid (h, w)."""
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(f"CrossFormer needs images of at least {self.min_input_size} px "
                             f"per side, got {tuple(x.shape[-2:])}")
        x, hw = self.patch_embed(x)
        if self.ape:
            if x.shape[1] != self.absolute_pos_embed.shape[1]:
                raise ValueError(f"absolute_pos_embed is fixed to {self.patches_resolution} "
                                 f"tokens; this input gives {hw}")
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x, hw = layer(x, hw)
        return self.norm(x), hw

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, C), as the official ``forward_features``."""
        x, _ = self.forward_tokens(x)
        return torch.flatten(self.avgpool(x.transpose(1, 2)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- factories

_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def create_crossformer(name: str, pretrained: bool = False, **kwargs: Any) -> CrossFormer:
    """Build an official config by name ("crossformer_tiny", "tiny", "t", ...), keywords
    override. No weights are downloaded: the official ones are on Google Drive/Baidu only."""
    key = _config_key(name)
    if pretrained:
        raise ValueError(f"{key} has no downloadable weights (the official release is on Google "
                         f"Drive/Baidu only): put the checkpoint file in checkpoints/ instead")
    for k in _TIMM_ONLY_KWARGS:
        kwargs.pop(k, None)
    model = CrossFormer(**{**CONFIGS[key], **kwargs})
    model.pretrained_cfg["architecture"] = key
    return model


def _config_key(name: str) -> str:
    short = name.lower().removeprefix("crossformer").strip("_-")
    aliases = {"t": "tiny", "s": "small", "b": "base", "l": "large"}
    key = f"crossformer_{aliases.get(short, short)}"
    if key not in CONFIGS:
        raise ValueError(f"unknown CrossFormer config {name!r}; known: {sorted(CONFIGS)}")
    return key


def crossformer_tiny(pretrained: bool = False, **kwargs: Any) -> CrossFormer:
    """CrossFormer-T: 64 / [1, 1, 8, 6] / heads [2, 4, 8, 16], group 7, drop path 0.1."""
    return create_crossformer("crossformer_tiny", pretrained, **kwargs)


def crossformer_small(pretrained: bool = False, **kwargs: Any) -> CrossFormer:
    """CrossFormer-S: 96 / [2, 2, 6, 2] / heads [3, 6, 12, 24], group 7, drop path 0.2."""
    return create_crossformer("crossformer_small", pretrained, **kwargs)


def crossformer_base(pretrained: bool = False, **kwargs: Any) -> CrossFormer:
    """CrossFormer-B: 96 / [2, 2, 18, 2] / heads [3, 6, 12, 24], group 7, drop path 0.3."""
    return create_crossformer("crossformer_base", pretrained, **kwargs)


def crossformer_large(pretrained: bool = False, **kwargs: Any) -> CrossFormer:
    """CrossFormer-L: 128 / [2, 2, 18, 2] / heads [4, 8, 16, 32], group 7, drop path 0.5."""
    return create_crossformer("crossformer_large", pretrained, **kwargs)


def _register_with_timm() -> None:
    """Make ``timm.create_model("crossformer_tiny")`` work, so the zoo and weights code treat
    CrossFormer like any timm model — unless timm ever ships its own under the same name."""
    from timm.models import is_model, register_model

    for fn in (crossformer_tiny, crossformer_small, crossformer_base, crossformer_large):
        if not is_model(fn.__name__):
            register_model(fn)


_register_with_timm()


# --------------------------------------------------------------------------- DPB -> RPB

def dpb_to_rpb(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in which every DPB attention is an ``RPBAttention``: the DPB
    MLP evaluated once on its layer's (2G−1)² offsets becomes a fixed Swin-style table.

    Exact: at group size G the table *is* what the MLP returns, and a smaller runtime group
    reads the rows of its own offsets, so logits match the DPB model at every input size
    (up to float rounding, ~1e-7: the MLP runs on a different number of rows)."""
    rpb = copy.deepcopy(model)
    for parent in list(rpb.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Attention):
                setattr(parent, child_name, RPBAttention.from_dpb(child))
    return rpb


def _attention_modules(model: nn.Module) -> dict[str, _GroupAttention]:
    return {n: m for n, m in model.named_modules() if isinstance(m, _GroupAttention)}


def _table_from_state(state: dict[str, torch.Tensor], prefix: str, group_size: int) -> torch.Tensor:
    """Evaluate the DPB MLP stored under ``prefix`` (…attn.pos.) at G, from tensors only."""
    pos_dim = state[prefix + "pos_proj.weight"].shape[0]
    heads = state[prefix + "pos3.2.weight"].shape[0]
    pos = DynamicPosBias(pos_dim * 4, heads, residual=False)
    pos.load_state_dict({k.removeprefix(prefix): v.float() for k, v in state.items()
                         if k.startswith(prefix)})
    with torch.no_grad():
        return dpb_table(pos, group_size)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt an official (or our) CrossFormer state dict to ``model`` before strict loading.

    * ``attn.biases`` / ``attn.relative_position_index`` (persistent buffers in official v1
      files) are checked to be the constants of a group size this layer can use, then dropped.
    * A DPB checkpoint loaded into an RPB model (``dpb_to_rpb``) has its DPB MLPs evaluated
      into the tables, so official files convert on load.
    Anything else is left for the strict key/shape check to report.
    (``explorer.core.weights.load_into`` calls this by the timm naming convention.)"""
    attn = _attention_modules(model)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("biases", "relative_position_index") and prefix in attn:
            _check_official_buffer(key, leaf, value, attn[prefix].group_size)
            continue
        out[key] = value
    for name, module in attn.items():
        pos_prefix = f"{name}.pos."
        has_dpb = f"{pos_prefix}pos_proj.weight" in out
        if isinstance(module, RPBAttention) and has_dpb:
            out[f"{name}.relative_position_bias_table"] = _table_from_state(
                out, pos_prefix, module.group_size)
            out = {k: v for k, v in out.items() if not k.startswith(pos_prefix)}
        elif isinstance(module, Attention) and f"{name}.relative_position_bias_table" in out:
            raise ValueError("this checkpoint holds fixed RPB tables (converted from DPB); load "
                             "it into dpb_to_rpb(model), not into a DPB model")
    return out


def _check_official_buffer(key: str, leaf: str, value: torch.Tensor, max_group: int) -> None:
    """An official buffer must be the constant of some group size g ≤ this layer's G: biases
    are ((2g−1)², 2) offsets, relative_position_index is (g², g²). A larger g means the file
    was trained with bigger groups, which the DPB weights alone would not reveal."""
    rows = value.shape[0] if value.ndim == 2 else 0
    group = (math.isqrt(rows) + 1) // 2 if leaf == "biases" else math.isqrt(rows)
    expected = None
    if group >= 1:
        expected = relative_offsets(group) if leaf == "biases" else relative_position_index(group)
    if expected is None or expected.shape != value.shape or not torch.equal(expected, value.to("cpu", expected.dtype)):
        raise ValueError(f"{key} {tuple(value.shape)} is not the constant CrossFormer v1 buffer "
                         f"of any group size")
    if group > max_group:
        raise ValueError(f"{key} says the checkpoint used {group}×{group} groups here, but this "
                         f"model's layer uses at most {max_group}×{max_group} (check group_size)")
