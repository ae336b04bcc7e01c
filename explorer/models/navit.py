"""NaViT (Dehghani et al. 2023, "Patch n' Pack"): a ViT that takes each image at its own
resolution and aspect ratio, packs the patches of several images into one sequence and keeps
them apart with a block-diagonal attention mask.

timm has no NaViT, so this module follows lucidrains' ``na_vit.py`` and the paper (FACTS.md):
greedy sequential packing into sequences of at most ``max_seq_len`` tokens; per-token image
ids; attention allowed only between tokens of the same image and never to padding;
factorised learned position embeddings pos_h[row] + pos_w[col]; token dropout that keeps
max(1, int(n·(1 − p))) tokens of an image; attention pooling with one learned query per image
that sees only its own image. The transformer blocks are timm's ``Block`` (with the QK-norm
NaViT takes from ViT-22B), so the project's attention capture sees ordinary timm attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from explorer.models.geometry import Pair

__all__ = ["PackedBatch", "NaViT", "navit", "pack", "pack_greedy", "patchify", "kept_token_count",
           "choose_kept_tokens"]


# --------------------------------------------------------------------------- packing


def patchify(image: torch.Tensor, patch: int) -> torch.Tensor:
    """(C, H, W) -> (rows·cols, p·p·C): patches in row-major order, each flattened row by row
    with the channels fastest. H and W must be multiples of ``patch``."""
    c, h, w = image.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}×{w} is not a multiple of the patch size {patch}")
    return rearrange(image, "c (h p1) (w p2) -> (h w) (p1 p2 c)", p1=patch, p2=patch)


def kept_token_count(n: int, drop: float) -> int:
    """Tokens an image keeps under token dropout rate ``drop``: max(1, int(n·(1 − drop)))."""
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"token dropout must be in [0, 1), got {drop}")
    return max(1, int(n * (1.0 - drop)))


def choose_kept_tokens(n: int, drop: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random subset of ``kept_token_count(n, drop)`` of the indices 0..n-1, sorted (the
    order inside an image does not matter to attention; sorted strips are easier to read)."""
    keep = kept_token_count(n, drop)
    if keep == n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:keep].sort().values


def pack_greedy(lengths: Sequence[int], max_seq_len: int) -> list[list[int]]:
    """Greedy sequential packing (NaViT / lucidrains): take the images in order and start a new
    sequence whenever the next one would overflow ``max_seq_len``. Returns image indices per
    sequence."""
    sequences: list[list[int]] = []
    used = max_seq_len + 1  # forces a first sequence
    for i, n in enumerate(lengths):
        if n > max_seq_len:
            raise ValueError(f"image {i} has {n} tokens, more than max_seq_len = {max_seq_len}")
        if used + n > max_seq_len:
            sequences.append([])
            used = 0
        sequences[-1].append(i)
        used += n
    return sequences


@dataclass
class PackedBatch:
    """Several images cut into patches and packed into sequences of equal (padded) length."""

    patches: torch.Tensor  # (S, L, p·p·C)
    positions: torch.Tensor  # (S, L, 2) long: (row, col) in the token's own image; 0 on padding
    image_ids: torch.Tensor  # (S, L) long: the image's slot in its sequence; -1 on padding
    placement: list[Pair]  # per input image, in input order: (sequence, slot)
    grids: list[Pair]  # per input image: (rows, cols) of its patch grid
    kept: list[torch.Tensor]  # per input image: row-major indices of the tokens it kept
    max_seq_len: int

    @property
    def num_images(self) -> int:
        return len(self.placement)

    @property
    def num_sequences(self) -> int:
        return int(self.image_ids.shape[0])

    @property
    def real(self) -> torch.Tensor:
        """(S, L) bool: True on image tokens, False on padding."""
        return self.image_ids >= 0

    @property
    def utilisation(self) -> float:
        """The share of the (S × L) token slots that hold image tokens (not padding)."""
        return float(self.real.float().mean()) if self.image_ids.numel() else 0.0

    def attention_mask(self) -> torch.Tensor:
        """(S, L, L) bool, True = query may attend to key: same image and the key is not
        padding. A padding query sees only itself, so no softmax row is empty (its output is
        never used)."""
        ids = self.image_ids
        allowed = (ids[:, :, None] == ids[:, None, :]) & self.real[:, None, :]
        pad_self = torch.eye(ids.shape[1], dtype=torch.bool, device=ids.device)[None] & ~self.real[:, :, None]
        return allowed | pad_self

    def pool_mask(self) -> torch.Tensor:
        """(S, M, L) bool: pooling query m of a sequence sees the tokens of the image in slot m.
        Slots with no image see the whole sequence (their output is dropped)."""
        slots = torch.arange(max(self.slots_per_sequence(), 1), device=self.image_ids.device)
        allowed = slots[None, :, None] == self.image_ids[:, None, :]
        return allowed | ~allowed.any(-1, keepdim=True)

    def slots_per_sequence(self) -> int:
        return max((slot for _, slot in self.placement), default=-1) + 1

    def tokens_of(self, image: int) -> tuple[int, torch.Tensor]:
        """(sequence, positions in that sequence) of ``image``'s kept tokens."""
        seq, slot = self.placement[image]
        return seq, torch.nonzero(self.image_ids[seq] == slot).flatten()


def pack(images: Sequence[torch.Tensor], patch: int, max_seq_len: int,
         token_dropout: float | Sequence[float] = 0.0,
         generator: torch.Generator | None = None) -> PackedBatch:
    """Cut each (C, H, W) image into patches, apply token dropout (one rate, or one per image),
    pack greedily into sequences of at most ``max_seq_len`` tokens and pad them to one length.
    The batch lives on the images' device; ``generator`` (token dropout) draws on the CPU."""
    if len(images) == 0:
        raise ValueError("nothing to pack")
    rates = [token_dropout] * len(images) if isinstance(token_dropout, (int, float)) else list(token_dropout)
    if len(rates) != len(images):
        raise ValueError("one token-dropout rate per image")
    device = images[0].device
    cut, kept, grids, coords = [], [], [], []
    for image, rate in zip(images, rates):
        tokens = patchify(image, patch)
        rows, cols = image.shape[-2] // patch, image.shape[-1] // patch
        keep = choose_kept_tokens(len(tokens), float(rate), generator).to(device)
        cut.append(tokens[keep])
        kept.append(keep)
        grids.append((rows, cols))
        coords.append(torch.stack([keep // cols, keep % cols], dim=-1))
    order = pack_greedy([len(t) for t in cut], max_seq_len)
    length = max(sum(len(cut[i]) for i in seq) for seq in order)
    dim = cut[0].shape[-1]
    patches = torch.zeros(len(order), length, dim, dtype=cut[0].dtype, device=device)
    positions = torch.zeros(len(order), length, 2, dtype=torch.long, device=device)
    image_ids = torch.full((len(order), length), -1, dtype=torch.long, device=device)
    placement: list[Pair] = [(0, 0)] * len(images)
    for s, seq in enumerate(order):
        start = 0
        for slot, i in enumerate(seq):
            end = start + len(cut[i])
            patches[s, start:end], positions[s, start:end], image_ids[s, start:end] = cut[i], coords[i], slot
            placement[i] = (s, slot)
            start = end
    return PackedBatch(patches, positions, image_ids, placement, grids, kept, max_seq_len)


# --------------------------------------------------------------------------- model


class AttentionPool(nn.Module):
    """One learned query per image attends to that image's tokens (multi-head), plus the query
    itself (a residual, as in lucidrains' NaViT)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(dim))
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (S, L, D), mask (S, M, L) bool -> pooled (S, M, D) and the pooling weights
        (S, heads, M, L)."""
        s, m = mask.shape[:2]
        query = self.query.expand(s, m, -1)
        q = rearrange(self.q(query), "s m (h d) -> s h m d", h=self.num_heads)
        k, v = rearrange(self.kv(self.norm(x)), "s l (two h d) -> two s h l d", two=2, h=self.num_heads)
        logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        weights = logits.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        pooled = rearrange(weights @ v, "s h m d -> s m (h d)")
        return self.proj(pooled) + query, weights


class NaViT(nn.Module):
    """A NaViT classifier. ``forward`` takes a list of (C, H, W) tensors (any sizes, multiples
    of the patch size), a (B, C, H, W) batch, or a ready ``PackedBatch`` and returns logits
    (num_images, classes) in input order. In training mode ``token_dropout`` drops tokens at
    random."""

    def __init__(self, *, patch_size: int = 8, max_grid: int | Pair = 16, num_classes: int = 1000,
                 embed_dim: int = 96, depth: int = 6, num_heads: int = 3, mlp_ratio: float = 4.0,
                 in_chans: int = 3, max_seq_len: int = 256, token_dropout: float = 0.0):
        super().__init__()
        rows, cols = (max_grid, max_grid) if isinstance(max_grid, int) else tuple(max_grid)
        self.patch_size, self.in_chans, self.max_grid = patch_size, in_chans, (rows, cols)
        self.max_seq_len, self.token_dropout = max_seq_len, token_dropout
        self.num_classes, self.embed_dim = num_classes, embed_dim
        self.num_features = embed_dim
        patch_dim = in_chans * patch_size * patch_size
        # a linear patch embedding, as ViT's conv (lucidrains also layer-normalises the raw patch
        # first: on flat synthetic backgrounds that scales pixel noise up to unit variance and
        # the model stayed at chance for 300+ steps here)
        self.patch_embed = nn.Sequential(nn.Linear(patch_dim, embed_dim), nn.LayerNorm(embed_dim))
        # factorised: a token at (row, col) gets pos_h[row] + pos_w[col], for any aspect ratio
        self.pos_h = nn.Parameter(torch.zeros(rows, embed_dim))
        self.pos_w = nn.Parameter(torch.zeros(cols, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, qk_norm=True)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.pool = AttentionPool(embed_dim, num_heads)
        self.fc_norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        for p in (self.pos_h, self.pos_w, self.pool.query):
            trunc_normal_(p, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_h", "pos_w", "pool.query"}

    def pack(self, images: Sequence[torch.Tensor], token_dropout: float | Sequence[float] | None = None,
             generator: torch.Generator | None = None) -> PackedBatch:
        """Pack images for this model, checking they fit its position tables."""
        for image in images:
            rows, cols = image.shape[-2] // self.patch_size, image.shape[-1] // self.patch_size
            if rows > self.max_grid[0] or cols > self.max_grid[1]:
                raise ValueError(f"a {rows}×{cols} patch grid exceeds the position tables "
                                 f"({self.max_grid[0]}×{self.max_grid[1]})")
        rate = self.token_dropout if token_dropout is None else token_dropout
        return pack(images, self.patch_size, self.max_seq_len, rate, generator)

    def forward_tokens(self, batch: PackedBatch) -> torch.Tensor:
        """(S, L, D): the packed tokens after the blocks and the final norm (on the model's
        device, wherever ``batch`` was packed)."""
        device = self.pos_h.device
        x = self.patch_embed(batch.patches.to(device))
        rows, cols = batch.positions.to(device).unbind(-1)
        x = x + self.pos_h[rows] + self.pos_w[cols]
        # additive form (0 / -inf) of the block-diagonal mask, one per sequence, shared by heads
        allowed = batch.attention_mask().to(device)
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=device).masked_fill(~allowed, float("-inf"))[:, None]
        for block in self.blocks:
            x = block(x, attn_mask=mask)
        return self.norm(x)

    def forward_packed(self, batch: PackedBatch, return_pool_weights: bool = False):
        x = self.forward_tokens(batch)
        pooled, weights = self.pool(x, batch.pool_mask().to(x.device))
        seq = torch.tensor([s for s, _ in batch.placement], device=x.device)
        slot = torch.tensor([m for _, m in batch.placement], device=x.device)
        logits = self.head(self.fc_norm(pooled[seq, slot]))
        return (logits, weights) if return_pool_weights else logits

    def forward(self, images: Sequence[torch.Tensor] | torch.Tensor | PackedBatch) -> torch.Tensor:
        if isinstance(images, torch.Tensor):  # a (B, C, H, W) batch: B images of one size
            images = list(images)
        if not isinstance(images, PackedBatch):
            images = self.pack(images, token_dropout=self.token_dropout if self.training else 0.0)
        return self.forward_packed(images)


# --------------------------------------------------------------------------- factory

_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def navit(pretrained: bool = False, **kwargs) -> NaViT:
    """A NaViT of any size (keywords of ``NaViT``); there are no released weights to fetch."""
    if pretrained:
        raise ValueError("there are no downloadable NaViT weights: train one with "
                         "`python -m explorer train navit`")
    for k in _TIMM_ONLY_KWARGS:
        kwargs.pop(k, None)
    return NaViT(**kwargs)


def _register_with_timm() -> None:
    """Make ``timm.create_model("navit", ...)`` build this model, like every other family."""
    from timm.models import is_model, register_model

    if not is_model("navit"):
        register_model(navit)


_register_with_timm()
