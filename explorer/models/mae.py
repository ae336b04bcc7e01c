"""Masked autoencoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

timm has the MAE *encoder* (``vit_base_patch16_224.mae``) but neither the decoder nor the masking
and patchify conventions, so they are here, built from timm's own ``PatchEmbed`` and ``Block`` with
the official module names: the released checkpoints (``mae_visualize_vit_{base,large,huge}.pth``,
weights under ``'model'``) load as they are. Conventions of facebookresearch/mae ``models_mae.py``:

- ``random_masking`` keeps ``int(L·(1−ratio))`` patches: the ones with the smallest noise;
  ``mask`` is 1 where a patch is *removed*, in the original patch order.
- ``patchify`` orders patches row-major and, inside a patch, (row, col, channel) with the
  channel fastest — not the Conv2d weight order.
- Position embeddings are fixed 2-D sin-cos tables (stored in the state dict): the first half of
  the channels encodes the column, the second half the row; the CLS entry is zeros.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from einops import rearrange
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

__all__ = ["MaskedAutoencoderViT", "sincos_pos_embed_2d", "noise_keeping", "ratio_keeping", "mean_visible_colour",
           "mae_vit_base_patch16", "mae_vit_large_patch16", "mae_vit_huge_patch14", "mae_vit"]


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.einsum("m,d->md", positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_pos_embed_2d(dim: int, grid_size: int, cls_token: bool = True) -> np.ndarray:
    """(1 + g², dim) table: row-major patches, first dim/2 channels from the column index."""
    rows, cols = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    table = np.concatenate([_sincos_1d(dim // 2, cols), _sincos_1d(dim // 2, rows)], axis=1)
    if cls_token:
        table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return table


def noise_keeping(mask: torch.Tensor) -> torch.Tensor:
    """Per-patch noise for ``random_masking`` that removes exactly the patches where ``mask`` is
    1 (kept patches get the smallest noise; ties are broken by position, so it is deterministic)."""
    mask = torch.as_tensor(mask, dtype=torch.float32)
    length = mask.shape[-1]
    return mask + 0.5 * torch.arange(length, dtype=torch.float32, device=mask.device) / length


def ratio_keeping(mask: torch.Tensor) -> float:
    """The ``mask_ratio`` for which ``int(L·(1−ratio))`` equals the number of 0s in ``mask``
    (half a patch below the exact ratio, so float rounding cannot drop one more patch)."""
    mask = torch.as_tensor(mask)
    return (float(mask.sum()) - 0.5) / mask.shape[-1]


class MaskedAutoencoderViT(nn.Module):
    """ViT encoder on the visible patches + a narrow ViT decoder that predicts the removed pixels."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 1024,
                 depth: int = 24, num_heads: int = 16, decoder_embed_dim: int = 512, decoder_depth: int = 8,
                 decoder_num_heads: int = 16, mlp_ratio: float = 4.0, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 norm_pix_loss: bool = False):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
                                     for _ in range(depth)])
        self.norm = norm_layer(embed_dim)

        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans, bias=True)

        self.norm_pix_loss = norm_pix_loss
        self.in_chans = in_chans
        # read by timm.data.resolve_data_config: the official demo resizes to img_size x img_size
        # and normalises with the ImageNet statistics
        self.pretrained_cfg = {"input_size": (in_chans, img_size, img_size), "mean": IMAGENET_DEFAULT_MEAN,
                               "std": IMAGENET_DEFAULT_STD, "interpolation": "bicubic", "crop_pct": 1.0,
                               "crop_mode": "center", "num_classes": 0}
        self.num_classes = 0
        self._init_weights()

    @property
    def patch_size(self) -> int:
        return self.patch_embed.patch_size[0]

    @property
    def grid_size(self) -> int:
        return self.patch_embed.grid_size[0]

    def _init_weights(self) -> None:
        grid = self.grid_size
        self.pos_embed.data.copy_(torch.from_numpy(sincos_pos_embed_2d(self.pos_embed.shape[-1], grid)).float()[None])
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(sincos_pos_embed_2d(self.decoder_pos_embed.shape[-1], grid)).float()[None])
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a Linear layer, as the official code does
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # ------------------------------------------------------------------ pixels <-> patches

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, h·p, w·p) -> (N, h·w, p·p·C): row-major patches, channel fastest inside."""
        p = self.patch_size
        return rearrange(imgs, "n c (h p) (w q) -> n (h w) (p q c)", p=p, q=p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, p·p·C) -> (N, C, h·p, w·p) for a square grid, the inverse of ``patchify``."""
        p, h = self.patch_size, int(round(x.shape[1] ** 0.5))
        if h * h != x.shape[1]:
            raise ValueError(f"{x.shape[1]} patches do not make a square grid")
        return rearrange(x, "n (h w) (p q c) -> n c (h p) (w q)", h=h, p=p, q=p, c=self.in_chans)

    # ------------------------------------------------------------------ masking

    @staticmethod
    def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
        """Keep the ``int(L·(1−mask_ratio))`` patches with the smallest noise (uniform by default).

        Returns (kept tokens (N, len_keep, D), mask (N, L) with 1 = removed, ids_restore (N, L)).
        """
        n, length, dim = x.shape
        len_keep = int(length * (1 - mask_ratio))
        if noise is None:  # drawn on the CPU, so a seed gives the same mask on every device
            noise = torch.rand(n, length)
        noise = noise.to(x.device).expand(n, length)
        ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # back to the original patch order
        return x_kept, mask, ids_restore

    # ------------------------------------------------------------------ the two halves

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(x)
        n, length = ids_restore.shape
        mask_tokens = self.mask_token.expand(n, length + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # visible first, then [MASK]s
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1, :], patches], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]  # drop CLS

    def patch_targets(self, imgs: torch.Tensor) -> torch.Tensor:
        """What the decoder is trained to output: the pixels of each patch, or with
        ``norm_pix_loss`` the pixels normalised by the patch's own mean and std."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def patch_loss(self, imgs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """(N, L) mean squared error of each patch against its target."""
        return ((pred - self.patch_targets(imgs)) ** 2).mean(dim=-1)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the removed patches only."""
        return (self.patch_loss(imgs, pred) * mask).sum() / mask.sum().clamp(min=1)

    def mask_pixels(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, L) patch mask -> (N, C, H, W) pixel mask (1 = removed), as the official demo draws it."""
        p = self.patch_size
        return self.unpatchify(mask.unsqueeze(-1).expand(-1, -1, p * p * self.in_chans))

    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def mean_visible_colour(pixels: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1): each image's mean colour over its visible pixels — the baseline a
    reconstruction must beat (fill every removed patch with it)."""
    visible = (~removed).float()
    return (pixels * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True).clamp(min=1)


# ---------------------------------------------------------------------- factories (official configs)

_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _build(pretrained: bool, defaults: dict, **kwargs) -> MaskedAutoencoderViT:
    if pretrained:
        raise ValueError("MAE decoder weights are not on the Hugging Face hub: put the official "
                         "mae_visualize_vit_*.pth in checkpoints/ (see `python -m explorer models`)")
    for name in _TIMM_ONLY_KWARGS:
        kwargs.pop(name, None)
    if kwargs.pop("num_classes", 0):
        raise ValueError("an MAE has no classifier (num_classes must be 0)")
    return MaskedAutoencoderViT(**{**defaults, **kwargs})


_DECODER = dict(decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0)


def mae_vit_base_patch16(pretrained: bool = False, **kwargs) -> MaskedAutoencoderViT:
    """Official ``mae_vit_base_patch16_dec512d8b``: encoder 768 wide, 12 blocks, 12 heads."""
    return _build(pretrained, dict(patch_size=16, embed_dim=768, depth=12, num_heads=12, **_DECODER), **kwargs)


def mae_vit_large_patch16(pretrained: bool = False, **kwargs) -> MaskedAutoencoderViT:
    """Official ``mae_vit_large_patch16_dec512d8b``: encoder 1024 wide, 24 blocks, 16 heads."""
    return _build(pretrained, dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16, **_DECODER), **kwargs)


def mae_vit_huge_patch14(pretrained: bool = False, **kwargs) -> MaskedAutoencoderViT:
    """Official ``mae_vit_huge_patch14_dec512d8b``: encoder 1280 wide, 32 blocks, 16 heads, patch 14."""
    return _build(pretrained, dict(patch_size=14, embed_dim=1280, depth=32, num_heads=16, **_DECODER), **kwargs)


def mae_vit(pretrained: bool = False, **kwargs) -> MaskedAutoencoderViT:
    """An MAE of any size (keywords of ``MaskedAutoencoderViT``), e.g. the bundled demo."""
    return _build(pretrained, {}, **kwargs)


def _register_with_timm() -> None:
    """Make ``timm.create_model("mae_vit_base_patch16")`` etc. build these models."""
    from timm.models import is_model, register_model

    for factory in (mae_vit_base_patch16, mae_vit_large_patch16, mae_vit_huge_patch14, mae_vit):
        if not is_model(factory.__name__):
            register_model(factory)


_register_with_timm()
