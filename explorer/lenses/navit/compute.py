"""The NaViT lens as pure computation: several images, each resized at its own aspect ratio
to about a budget of patches, cut into patches, thinned by token dropout, packed greedily into
sequences, and classified in one packed forward pass — next to each image run alone, to show
that packing changes nothing (the block-diagonal mask keeps the images apart).
numpy/torch only; drawing lives in ``figures.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import native_grid
from explorer.core.weights import LoadedModel
from explorer.models.navit import NaViT, PackedBatch

__all__ = ["NaViTImage", "NaViTAnalysis", "native_size", "analyze", "analyze_images", "export_arrays",
           "MAX_IMAGES"]

MAX_IMAGES = 12  # a lens, not a batch job: the figures stay readable


def native_size(width: int, height: int, patch: int, tokens: int, max_grid: tuple[int, int]) -> tuple[int, int]:
    """(H, W) in pixels for an image of ``width``×``height``: its aspect ratio kept, about
    ``tokens`` patches, each side a multiple of the patch and within the position tables."""
    rows, cols = native_grid(width, height, tokens)
    scale = min(1.0, max_grid[0] / rows, max_grid[1] / cols)  # shrink both sides alike
    rows, cols = max(1, min(max_grid[0], round(rows * scale))), max(1, min(max_grid[1], round(cols * scale)))
    return rows * patch, cols * patch


@dataclass
class NaViTImage:
    """One image of the pack."""

    name: str
    source_size: tuple[int, int]  # (W, H) as uploaded
    pixels: np.ndarray  # (H, W, 3) uint8: what the model saw
    grid: tuple[int, int]  # (rows, cols) of patches
    kept: np.ndarray  # row-major indices of the patches kept after token dropout
    sequence: int
    slot: int
    positions: np.ndarray  # (n_kept,) positions of its tokens in its sequence
    logits_packed: np.ndarray  # (K,)
    logits_alone: np.ndarray  # (K,): the same image and kept tokens run as a pack of one
    pool_weights: np.ndarray  # (heads, n_kept): the attention-pooling query over its tokens
    predictions: list[Prediction]

    @property
    def tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def max_abs_diff(self) -> float:
        return float(np.abs(self.logits_packed - self.logits_alone).max())

    def kept_map(self) -> np.ndarray:
        """(rows, cols) bool: True where the patch was kept."""
        out = np.zeros(self.tokens, bool)
        out[self.kept] = True
        return out.reshape(self.grid)


@dataclass
class NaViTAnalysis:
    images: list[NaViTImage]
    image_ids: np.ndarray  # (S, L): slot of the image in its sequence, −1 = padding
    owner: np.ndarray  # (S, L): index of the input image of each token, −1 = padding
    positions: np.ndarray  # (S, L, 2): (row, col) of each token in its image
    mask: np.ndarray  # (S, L, L) bool: may attend
    patch: int
    max_seq_len: int
    token_dropout: float
    seed: int

    @property
    def num_sequences(self) -> int:
        return int(self.image_ids.shape[0])

    @property
    def utilisation(self) -> float:
        return float((self.image_ids >= 0).mean())

    @property
    def max_abs_diff(self) -> float:
        return max(im.max_abs_diff for im in self.images)


def _tensor(pixels: np.ndarray, mean, std) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def analyze(model: NaViT, pictures: list[tuple[str, Image.Image]], mean, std, class_names=None, *,
            tokens: int = 64, token_dropout: float = 0.0, seed: int = 0) -> NaViTAnalysis:
    """Resize each (name, RGB picture) at its aspect ratio, pack and run ``model`` once packed
    and once per image alone (same kept tokens)."""
    if not isinstance(model, NaViT):
        raise UserFacingError("This tab needs a NaViT model.", "此标签页需要 NaViT 模型。")
    if not pictures:
        raise UserFacingError("Pick or upload at least one image.", "请至少选择或上传一张图片。")
    if len(pictures) > MAX_IMAGES:
        raise UserFacingError(f"At most {MAX_IMAGES} images at once (got {len(pictures)}).",
                              f"一次最多 {MAX_IMAGES} 张图片（当前 {len(pictures)} 张）。")
    if not 0.0 <= token_dropout < 1.0:
        raise UserFacingError("Token dropout must be at least 0 and below 1.", "token 丢弃率必须在 [0, 1) 内。")
    p = model.patch_size
    pixels, tensors = [], []
    for _, picture in pictures:
        h, w = native_size(*picture.size, p, tokens, model.max_grid)
        array = np.array(picture.convert("RGB").resize((w, h), Image.BICUBIC))
        pixels.append(array)
        tensors.append(_tensor(array, mean, std))
    with torch.inference_mode():  # packed on the CPU; the model moves it to its device
        batch: PackedBatch = model.pack(tensors, token_dropout=token_dropout,
                                        generator=torch.Generator().manual_seed(seed))
        packed, weights = model.forward_packed(batch, return_pool_weights=True)
        alone = []
        for i in range(batch.num_images):  # the same kept tokens, in a pack of one
            seq, where = batch.tokens_of(i)
            single = PackedBatch(batch.patches[seq:seq + 1, where], batch.positions[seq:seq + 1, where],
                                 torch.zeros(1, len(where), dtype=torch.long, device=where.device),
                                 [(0, 0)], [batch.grids[i]],
                                 [batch.kept[i]], batch.max_seq_len)
            alone.append(model.forward_packed(single)[0])
    owner = np.full(batch.image_ids.shape, -1, dtype=np.int64)
    images = []
    for i, (name, picture) in enumerate(pictures):
        seq, where = batch.tokens_of(i)
        owner[seq, where.cpu().numpy()] = i
        logits = packed[i].float().cpu().numpy()
        images.append(NaViTImage(
            name=name, source_size=picture.size, pixels=pixels[i], grid=batch.grids[i],
            kept=batch.kept[i].cpu().numpy(), sequence=seq, slot=batch.placement[i][1],
            positions=where.cpu().numpy(), logits_packed=logits, logits_alone=alone[i].float().cpu().numpy(),
            pool_weights=weights[seq, :, batch.placement[i][1], where.to(weights.device)].float().cpu().numpy(),
            predictions=top_predictions(logits, class_names)))
    return NaViTAnalysis(images=images, image_ids=batch.image_ids.cpu().numpy(), owner=owner,
                         positions=batch.positions.cpu().numpy(), mask=batch.attention_mask().cpu().numpy(),
                         patch=p, max_seq_len=batch.max_seq_len, token_dropout=token_dropout, seed=seed)


def analyze_images(loaded: LoadedModel, images: list[tuple[str, LoadedImage]], *, tokens: int = 64,
                   token_dropout: float = 0.0, seed: int = 0) -> NaViTAnalysis:
    """The lens for the app: validated uploads, the loaded model's normalisation and classes."""
    cfg = loaded.data_config
    return analyze(loaded.model, [(name, im.image) for name, im in images], cfg["mean"], cfg["std"],
                   loaded.class_names, tokens=tokens, token_dropout=token_dropout, seed=seed)


def export_arrays(a: NaViTAnalysis) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: the packing (per token: image slot, input image, row/col; the
    attention mask), and per image its grid, kept tokens, sequence/slot, packed and alone logits."""
    out: dict[str, np.ndarray] = {
        "image_ids": a.image_ids, "token_image": a.owner, "positions": a.positions, "mask": a.mask,
        "image_names": np.array([im.name for im in a.images]),
        "grids": np.array([im.grid for im in a.images], dtype=np.int64),
        "placement": np.array([(im.sequence, im.slot) for im in a.images], dtype=np.int64),
        "logits": np.stack([im.logits_packed for im in a.images]),
        "logits_alone": np.stack([im.logits_alone for im in a.images]),
        "settings": np.array([a.patch, a.max_seq_len, a.seed], dtype=np.int64),
        "token_dropout": np.array(a.token_dropout, dtype=np.float32),
    }
    for i, im in enumerate(a.images):
        out[f"image{i}_kept"] = im.kept
        out[f"image{i}_pixels"] = im.pixels
    return out
