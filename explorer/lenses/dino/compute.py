"""The DINO lens as pure computation, after facebookresearch/dino's ``visualize_attention.py``:
the last block's softmax attention of the CLS query over the patch keys, per head
(``get_last_selfattention``), at the image's own aspect ratio; the official threshold that keeps,
per head, the smallest set of patches holding a fraction t of that attention; and the multi-crop
views the recipe (``main_dino.py``) cuts from an image — 2 global crops for teacher and student,
N local crops for the student only.

Attention comes from ``core.capture`` (softmax recomputed exactly from the hooked q and k, so
timm's fused attention stays on). Crops follow torchvision's ``RandomResizedCrop.get_params``
draw for draw, but from an explicit ``torch.Generator``: seeding the global RNG would be a global
that another request could reseed mid-draw. numpy/torch only; drawing lives in ``figures.py``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from einops import repeat
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from explorer.core.arguments import MAX_SEED  # noqa: F401  (one bound for every seed box)
from explorer.core.capture import capture_attention, prefix_token_names
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.lenses.dino.features import DEFAULT_PCA_THRESHOLD, first_component, high_norm, pca_rgb
from explorer.models.geometry import Pair

__all__ = ["DinoAnalysis", "CropBox", "analyze", "analyze_image", "threshold_masks", "upsample_nearest",
           "kept_mass", "stronger_mass", "mask_outline", "check_threshold", "random_resized_crop_params",
           "multi_crop_boxes", "crop_view", "export_arrays", "DEFAULT_THRESHOLD", "DEFAULT_LOCAL_CROPS",
           "MAX_LOCAL_CROPS", "GLOBAL_SCALE", "LOCAL_SCALE", "GLOBAL_SIZE", "LOCAL_SIZE", "CROP_RATIO"]

DEFAULT_THRESHOLD = 0.6  # visualize_attention.py's example and the paper's Fig. 4
# main_dino.py defaults: crop scales, crop sizes, 8 local crops; RandomResizedCrop's own ratio range
GLOBAL_SCALE = (0.4, 1.0)
LOCAL_SCALE = (0.05, 0.4)
GLOBAL_SIZE, LOCAL_SIZE = 224, 96
CROP_RATIO = (3 / 4, 4 / 3)
DEFAULT_LOCAL_CROPS = 8
MAX_LOCAL_CROPS = 16


# --------------------------------------------------------------------------- the threshold

def check_threshold(threshold: float) -> float:
    """``threshold`` as a float in [0, 1], or a message the user can act on."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise UserFacingError(f"The threshold t must be a number from 0 to 1 (got {threshold!r}).",
                              f"阈值 t 必须是 0 到 1 之间的数（当前为 {threshold!r}）。")
    return value


def threshold_masks(attention: np.ndarray, threshold: float) -> np.ndarray:
    """visualize_attention.py's threshold on each head of ``attention`` (heads, ...): sort the
    head's weights ascending, divide by their sum, take the cumulative sum, keep the entries whose
    cumulative sum is above 1 − t, unsort. What stays is the smallest set of largest weights that
    holds more than a fraction t of the head's mass. A 1-d input is one head.

    Two details the official float32 torch code leaves to chance are pinned: ties keep their
    patch order (stable sort), and the cumulative sum is divided by its own last entry, so that
    t = 0 keeps nothing and t = 1 keeps exactly the non-zero weights."""
    t = check_threshold(threshold)
    return _share_up_to(attention) > 1.0 - t


def _share_up_to(attention: np.ndarray) -> np.ndarray:
    """Per head of ``attention`` (heads, ...) or one 1-d head: for each entry, the share of the
    head's mass held by it and every weaker entry (ascending stable sort, cumulative sum divided
    by its own last entry, unsorted); 0 everywhere for an all-zero head."""
    values = np.asarray(attention, dtype=np.float64)
    rows = values.reshape(1, -1) if values.ndim == 1 else values.reshape(values.shape[0], -1)
    order = np.argsort(rows, axis=-1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(rows, order, axis=-1), axis=-1)
    total = cumulative[:, -1:]
    share_sorted = np.divide(cumulative, total, out=np.zeros_like(cumulative), where=total > 0)
    share = np.empty_like(share_sorted)
    np.put_along_axis(share, order, share_sorted, axis=-1)
    return share.reshape(values.shape)


def stronger_mass(attention: np.ndarray) -> np.ndarray:
    """For each entry of each head of ``attention`` (heads, ...): the share of the head's mass
    held by the entries sorted above it. An entry is in the threshold mask exactly when this is
    below t (up to rounding), which makes the rule easy to read off a hover."""
    return (1.0 - _share_up_to(attention)).astype(np.float32)


def upsample_nearest(masks: np.ndarray, patch_size: Pair) -> np.ndarray:
    """(heads, rows, cols) -> (heads, rows·ph, cols·pw): each patch's value on all its pixels
    (the official ``interpolate(scale_factor=p, mode="nearest")``)."""
    ph, pw = patch_size
    return repeat(masks, "n h w -> n (h ph) (w pw)", ph=ph, pw=pw)


def kept_mass(attention: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(heads,) share of each head's patch attention inside its mask (> t by construction)."""
    flat = attention.reshape(attention.shape[0], -1).astype(np.float64)
    inside = (flat * masks.reshape(flat.shape)).sum(-1)
    return (inside / np.maximum(flat.sum(-1), 1e-30)).astype(np.float32)


def mask_outline(mask: np.ndarray, patch_size: Pair) -> tuple[np.ndarray, np.ndarray]:
    """The boundary of a (rows, cols) patch mask in pixels: x and y arrays of straight segments
    ``x0, x1, NaN, ...`` (a NaN breaks the line, so one plotly trace draws them all). Edges lie on
    patch borders: the upsampled mask is exactly blocky, so this is its exact contour."""
    ph, pw = patch_size
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    row, col_start, col_end = _runs(padded[:-1, 1:-1] != padded[1:, 1:-1])  # edge above row r
    col, row_start, row_end = _runs((padded[1:-1, :-1] != padded[1:-1, 1:]).T)  # edge left of col c
    x0, x1 = np.concatenate([col_start * pw, col * pw]), np.concatenate([col_end * pw, col * pw])
    y0, y1 = np.concatenate([row * ph, row_start * ph]), np.concatenate([row * ph, row_end * ph])
    gap = np.full(len(x0), np.nan)
    return np.stack([x0, x1, gap], 1).ravel(), np.stack([y0, y1, gap], 1).ravel()


def _runs(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, start, end) of every maximal run of True along each line of ``edges``: one
    segment per run instead of one per patch."""
    closed = np.pad(edges, ((0, 0), (1, 1))).astype(np.int8)
    step = np.diff(closed, axis=1)
    starts, ends = np.argwhere(step == 1), np.argwhere(step == -1)  # row-major: they pair up
    return starts[:, 0].astype(float), starts[:, 1].astype(float), ends[:, 1].astype(float)


# --------------------------------------------------------------------------- attention

@dataclass
class DinoAnalysis:
    """The last block's CLS attention for one (model, weights, image, geometry)."""

    attention: np.ndarray  # (heads, rows, cols) float32: CLS query over the patch keys
    prefix_attention: np.ndarray  # (heads, prefix) CLS query over the prefix tokens (itself first)
    grid: Pair  # (rows, cols) of patches
    patch_size: Pair
    prefix_names: tuple[str, ...]  # ("CLS",), ("CLS", "DIST"), ("CLS", "REG1", ...)
    block: int  # index of the last block, the one shown
    logits: np.ndarray  # (K,), or the pooled features of a model without a classifier
    input_shape: tuple[int, ...]
    model_image: np.ndarray | None = None  # (H, W, 3) uint8: the pixels the model saw
    steps: tuple[tuple[str, str], ...] = ()  # preprocessing, (en, zh)
    predictions: tuple[Prediction, ...] = ()  # top-5; empty without a classifier
    features: np.ndarray | None = None  # (rows·cols, C) float32: the patch tokens after the final norm
    token_norms: np.ndarray | None = None  # (rows, cols) float32: patch token norms at the last block's output
    prefix_norms: np.ndarray | None = None  # (prefix,) the same for the CLS (distillation, register) tokens

    @functools.cached_property
    def first_component(self) -> np.ndarray:
        """(rows, cols) in 0–1: the first principal component of the patch features (see
        features.py); computed once per analysis, so that a threshold change only re-fits the
        foreground's PCA."""
        return first_component(self.features, self.grid)

    def pca_rgb(self, threshold: float = DEFAULT_PCA_THRESHOLD) -> np.ndarray:
        """(rows, cols, 3): the DINOv2 figure's PCA colours over the foreground at ``threshold``."""
        return pca_rgb(self.features, self.first_component, check_threshold(threshold))

    @property
    def high_norm(self) -> np.ndarray:
        """(rows, cols) bool: the high-norm patch tokens (Darcet et al.)."""
        return high_norm(self.token_norms)

    @property
    def num_heads(self) -> int:
        return int(self.attention.shape[0])

    @property
    def num_prefix_tokens(self) -> int:
        return len(self.prefix_names)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def mean_attention(self) -> np.ndarray:
        """(rows, cols): the mean over heads."""
        return self.attention.mean(0)

    @property
    def patch_share(self) -> np.ndarray:
        """(heads,) the share of the CLS query's attention that lands on patches (the rest goes
        to the prefix tokens, mostly the CLS token itself)."""
        return self.attention.reshape(self.num_heads, -1).sum(-1)

    def masks(self, threshold: float) -> np.ndarray:
        """(heads, rows, cols) bool: the official threshold on each head."""
        return threshold_masks(self.attention, threshold)

    def pixel_masks(self, threshold: float) -> np.ndarray:
        """(heads, rows·ph, cols·pw) bool: the masks upsampled ×p nearest, as the official script saves them."""
        return upsample_nearest(self.masks(threshold), self.patch_size)


def _check_vit(model: torch.nn.Module) -> None:
    if not isinstance(model, VisionTransformer) or getattr(model, "cls_token", None) is None:
        raise UserFacingError("This tab needs a ViT with a CLS token (DINO, ViT, DeiT).",
                              "此标签页需要带 CLS token 的 ViT 模型（DINO、ViT、DeiT）。")
    if model.training:
        raise ValueError("put the model in eval mode: dropout would change the attention")


def analyze(model: VisionTransformer, x: torch.Tensor, index: int = 0) -> DinoAnalysis:
    """One captured forward pass of a timm ViT on ``x`` (B, 3, H, W): the last block's attention
    of the CLS query (token 0) over the patch keys, ``attn[index, :, 0, prefix:]`` reshaped to
    (heads, rows, cols), as ``get_last_selfattention`` + ``visualize_attention.py`` take it."""
    _check_vit(model)
    last_block = f"blocks.{len(model.blocks) - 1}"
    # the last block only, and in the same pass its output tokens and the final norm's
    capture = capture_attention(model, x, blocks=(-1,), keep=(last_block, "norm"))
    last = capture.attentions[0][index]  # (heads, N, N)
    prefix = capture.num_prefix_tokens
    rows, cols = capture.grid
    if last.shape[-1] != prefix + rows * cols:
        raise RuntimeError(f"{last.shape[-1]} tokens do not make {prefix} prefix tokens + a {rows}×{cols} grid")
    cls_row = last[:, 0].cpu().numpy()
    tokens = capture.outputs[last_block][index].float()  # (N, C), on the model's device
    normed = capture.outputs.get("norm", capture.outputs[last_block])[index].float()
    norms = tokens.norm(dim=-1).cpu().numpy()
    return DinoAnalysis(
        attention=cls_row[:, prefix:].reshape(-1, rows, cols).astype(np.float32),
        prefix_attention=cls_row[:, :prefix].astype(np.float32),
        grid=(rows, cols), patch_size=tuple(int(p) for p in model.patch_embed.patch_size),
        prefix_names=prefix_token_names(model), block=len(model.blocks) - 1,
        logits=capture.logits[index].cpu().numpy().copy(), input_shape=tuple(x.shape),
        features=normed[prefix:].cpu().numpy().astype(np.float32), token_norms=norms[prefix:].reshape(rows, cols),
        prefix_norms=norms[:prefix].astype(np.float32))


def analyze_image(loaded: LoadedModel, image: LoadedImage, geometry: str = "native") -> DinoAnalysis:
    """Preprocess ``image`` for ``loaded`` (``"native"``: its aspect ratio, sides multiples of
    the patch; ``"model"``: timm's resize + centre crop) and run one captured forward pass."""
    _check_vit(loaded.model)
    pre = preprocess(image.image, loaded.data_config, geometry, loaded.patch_size)
    analysis = analyze(loaded.model, pre.tensor)
    return replace(analysis, model_image=pre.model_image, steps=pre.steps,
                   predictions=tuple(top_predictions(analysis.logits, loaded.class_names)))


# --------------------------------------------------------------------------- multi-crop

@dataclass(frozen=True)
class CropBox:
    """One multi-crop view: a box of the source image, resized to ``output_size`` and maybe flipped."""

    kind: str  # "global" (teacher and student) | "local" (student only)
    index: int  # within its kind
    top: int
    left: int
    height: int
    width: int
    flipped: bool
    output_size: int  # pixels of the square the crop is resized to

    @property
    def name(self) -> str:
        return f"{'G' if self.kind == 'global' else 'L'}{self.index + 1}"

    @property
    def to_teacher(self) -> bool:
        return self.kind == "global"

    def area_fraction(self, image_size: Pair) -> float:
        """Share of the image's area (``image_size`` is (W, H))."""
        return self.height * self.width / (image_size[0] * image_size[1])


def random_resized_crop_params(height: int, width: int, scale: tuple[float, float],
                               ratio: tuple[float, float], generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w): torchvision's ``RandomResizedCrop.get_params`` line for line, drawing
    from ``generator``: up to 10 tries of an area in ``scale``·H·W and a log-uniform aspect ratio
    that fit the image, else the central crop at the nearest allowed aspect ratio."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,), generator=generator).item()
            left = torch.randint(0, width - w + 1, size=(1,), generator=generator).item()
            return int(top), int(left), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def multi_crop_boxes(image_size: Pair, n_local: int = DEFAULT_LOCAL_CROPS, seed: int = 0, *,
                     global_scale: tuple[float, float] = GLOBAL_SCALE,
                     local_scale: tuple[float, float] = LOCAL_SCALE) -> list[CropBox]:
    """The views DINO's ``DataAugmentationDINO`` would cut from an image of ``image_size``
    (W, H): 2 global crops (→ 224 px), then ``n_local`` local crops (→ 96 px), each followed by
    a horizontal flip with probability ½, drawn in that order from one generator seeded with
    ``seed``. (The real pipeline also draws colour jitter, blur and solarisation in between;
    those change colours, not boxes, so they are left out.)"""
    if isinstance(n_local, bool) or not isinstance(n_local, (int, np.integer)) \
            or not 0 <= n_local <= MAX_LOCAL_CROPS:
        raise UserFacingError(
            f"The number of local crops must be a whole number from 0 to {MAX_LOCAL_CROPS} (got {n_local!r}).",
            f"局部裁剪的数量必须是 0 到 {MAX_LOCAL_CROPS} 之间的整数（当前为 {n_local!r}）。")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UserFacingError(f"The seed must be a whole number from 0 to {MAX_SEED} (got {seed!r}).",
                              f"随机种子必须是 0 到 {MAX_SEED} 之间的整数（当前为 {seed!r}）。")
    width, height = image_size
    generator = torch.Generator().manual_seed(int(seed))
    boxes = []
    for kind, scale, size, count in (("global", global_scale, GLOBAL_SIZE, 2),
                                     ("local", local_scale, LOCAL_SIZE, int(n_local))):
        for index in range(count):
            top, left, h, w = random_resized_crop_params(height, width, scale, CROP_RATIO, generator)
            flipped = bool(torch.rand(1, generator=generator).item() < 0.5)  # RandomHorizontalFlip(p=0.5)
            boxes.append(CropBox(kind, index, top, left, h, w, flipped, size))
    return boxes


def crop_view(image: Image.Image, box: CropBox) -> np.ndarray:
    """(size, size, 3) uint8: the box of ``image`` cut out, then resized bicubically and maybe
    flipped — torchvision's ``resized_crop`` on a PIL image, as main_dino.py runs it."""
    view = image.convert("RGB").crop((box.left, box.top, box.left + box.width, box.top + box.height))
    view = view.resize((box.output_size, box.output_size), Image.BICUBIC)
    pixels = np.asarray(view)
    return np.ascontiguousarray(pixels[:, ::-1]) if box.flipped else pixels


# --------------------------------------------------------------------------- export

def export_arrays(a: DinoAnalysis, threshold: float | None = None,
                  pca_threshold: float = DEFAULT_PCA_THRESHOLD) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: ``attention`` (heads, rows, cols) float32 of the last block's CLS
    query over the patch keys, its mean over heads, the CLS weight on the prefix tokens, the grid
    and patch size; ``pca_rgb`` (rows, cols, 3) and ``token_norms`` (rows, cols) with the prefix
    tokens' norms; with a threshold, ``masks`` (heads, rows·ph, cols·pw) bool as the official
    script saves them, the patch-level masks and the mass each keeps."""
    out: dict[str, np.ndarray] = {
        "attention": a.attention.astype(np.float32),
        "attention_mean": a.mean_attention.astype(np.float32),
        "prefix_attention": a.prefix_attention.astype(np.float32),
        "prefix_names": np.array(a.prefix_names),
        "grid": np.array(a.grid, dtype=np.int64),
        "patch_size": np.array(a.patch_size, dtype=np.int64),
        "block": np.array(a.block, dtype=np.int64),
        "logits": a.logits.astype(np.float32),
        "pca_rgb": a.pca_rgb(pca_threshold),
        "pca_first": a.first_component.astype(np.float32),
        "pca_threshold": np.array(pca_threshold, dtype=np.float32),
        "token_norms": a.token_norms.astype(np.float32),
        "prefix_norms": a.prefix_norms.astype(np.float32),
        "high_norm": a.high_norm,
    }
    if a.model_image is not None:
        out["model_image"] = a.model_image
    if threshold is not None:
        patch_masks = a.masks(threshold)
        out["threshold"] = np.array(check_threshold(threshold), dtype=np.float32)
        out["patch_masks"] = patch_masks
        out["masks"] = upsample_nearest(patch_masks, a.patch_size)
        out["kept_mass"] = kept_mass(a.attention, patch_masks)
    return out
