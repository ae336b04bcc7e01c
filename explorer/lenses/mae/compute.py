"""The MAE lab as pure computation: choose which patches to hide, run the masked autoencoder
once, and keep everything the figures need — the official 4-panel picture (original, masked,
reconstruction, reconstruction + visible), the per-patch error and a mean-colour baseline.

Masks: ``random`` is the paper's (and the official code's) per-patch uniform noise, seeded;
``block`` hides rectangles of patches (BEiT-style block-wise masking, which the MAE paper
compares against); ``grid`` keeps one patch in every k×k cell (the paper's grid sampling,
k = 2 at ratio 0.75); ``painted`` hides the patches a person picked. Every strategy reaches
the model through the official ``forward(imgs, mask_ratio, noise)``: a chosen mask becomes the
noise that makes ``random_masking`` remove exactly those patches.

For ``norm_pix_loss`` checkpoints the decoder predicts each patch normalised by its own mean
and std; the result also holds the prediction with the *true* patch statistics put back — a
view that leaks the answer, which the UI labels as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from explorer.core.devices import device_of
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.preprocess import preprocess
from explorer.core.weights import LoadedModel
from explorer.models.mae import MaskedAutoencoderViT, mean_visible_colour, noise_keeping, ratio_keeping
from explorer.models.geometry import Pair

__all__ = ["STRATEGIES", "kept_count", "random_noise", "block_mask", "grid_mask", "MaskChoice",
           "choose_mask", "MAEResult", "reconstruct", "export_arrays"]

STRATEGIES = ("random", "block", "grid", "painted")


def kept_count(num_patches: int, ratio: float) -> int:
    """Visible patches at ``ratio``, exactly as ``random_masking`` counts them."""
    return int(num_patches * (1 - ratio))


def random_noise(num_patches: int, seed: int) -> torch.Tensor:
    """The per-patch uniform noise of the official masking, from a seeded generator."""
    return torch.rand(num_patches, generator=torch.Generator().manual_seed(int(seed)))


def block_mask(grid: Pair, ratio: float, seed: int, aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> np.ndarray:
    """(h, w) bool, True = hidden: rectangles of random area and aspect ratio (log-uniform) are
    hidden one after another until ``L − kept_count`` patches are; the last rectangle is cut
    in raster order so the count is exact."""
    h, w = grid
    target = h * w - kept_count(h * w, ratio)
    rng = np.random.default_rng(int(seed))
    hidden = np.zeros((h, w), bool)
    order: list[int] = []
    min_area = max(1, h * w // 16)
    for _ in range(10_000):
        if len(order) >= target:
            break
        area = rng.uniform(min_area, max(min_area, target - len(order)))
        ratio_hw = np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1])))
        bh = int(np.clip(round(np.sqrt(area * ratio_hw)), 1, h))
        bw = int(np.clip(round(np.sqrt(area / ratio_hw)), 1, w))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        block = np.zeros((h, w), bool)
        block[top:top + bh, left:left + bw] = True
        new = np.flatnonzero(block & ~hidden)
        order.extend(new.tolist())
        hidden.reshape(-1)[new] = True
    result = np.zeros(h * w, bool)
    result[order[:target]] = True
    return result.reshape(h, w)


def grid_mask(grid: Pair, ratio: float, seed: int) -> np.ndarray:
    """(h, w) bool, True = hidden: a regular lattice. At ratios ≥ 0.5 one patch in every k×k
    cell stays visible, k = round(1/√(1−ratio)) (k = 2 at 0.75, the paper's grid sampling);
    below 0.5 one patch in every k×k cell is hidden, k = round(1/√ratio). The lattice offset
    comes from the seed; the ratio actually reached is 1/k² or 1 − 1/k² (shown by the lab)."""
    h, w = grid
    rng = np.random.default_rng(int(seed))
    keep_lattice = ratio >= 0.5
    k = max(1, round(1 / np.sqrt(max(1 - ratio if keep_lattice else ratio, 1e-6))))
    dy, dx = int(rng.integers(0, k)), int(rng.integers(0, k))
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    on_lattice = ((rows - dy) % k == 0) & ((cols - dx) % k == 0)
    return ~on_lattice if keep_lattice else on_lattice


@dataclass(frozen=True)
class MaskChoice:
    """What the model is asked to do: hide ``mask`` (L,) via ``noise`` at ``mask_ratio``."""

    strategy: str
    mask_ratio: float  # passed to the model's random_masking
    noise: torch.Tensor  # (L,)
    hidden: np.ndarray  # (L,) bool, the patches that will be removed


def choose_mask(strategy: str, grid: Pair, ratio: float, seed: int,
                painted: tuple[int, ...] = ()) -> MaskChoice:
    """The noise and ratio that make the official masking hide the patches of ``strategy``."""
    length = grid[0] * grid[1]
    if not 0.0 <= ratio < 1.0:
        raise UserFacingError(f"The mask ratio must be at least 0 and below 1, not {ratio}.",
                              f"遮挡率必须不小于 0 且小于 1，而不是 {ratio}。")
    if strategy == "random":
        noise = random_noise(length, seed)
        hidden = np.ones(length, bool)
        hidden[torch.argsort(noise)[:kept_count(length, ratio)].numpy()] = False
        return MaskChoice(strategy, float(ratio), noise, hidden)
    if strategy == "block":
        hidden = block_mask(grid, ratio, seed).reshape(-1)
    elif strategy == "grid":
        hidden = grid_mask(grid, ratio, seed).reshape(-1)
    elif strategy == "painted":
        hidden = np.zeros(length, bool)
        picked = [i for i in painted if 0 <= int(i) < length]
        hidden[picked] = True
    else:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    mask = torch.from_numpy(hidden.astype(np.float32))
    return MaskChoice(strategy, ratio_keeping(mask), noise_keeping(mask), hidden)


@dataclass
class MAEResult:
    """One masked reconstruction of one image, in the model's normalised space and as pictures."""

    model_image: np.ndarray  # (H, W, 3) uint8, the model's input
    steps: tuple[tuple[str, str], ...]  # preprocessing, (en, zh)
    grid: Pair
    patch: int
    strategy: str
    mask_ratio: float  # the ratio given to the model
    mask: np.ndarray  # (L,) float32, 1 = removed (official convention)
    pred: np.ndarray  # (L, p·p·3) float32, the decoder's output
    reconstruction: np.ndarray  # (3, H, W) float32, unpatchify(pred) in the model's normalised space
    panels: dict[str, np.ndarray]  # name -> (H, W, 3) uint8: original, masked, reconstruction, pasted
    leak_panels: dict[str, np.ndarray]  # norm-pix models: the same with the true patch statistics
    patch_loss: np.ndarray  # (h, w) the paper's loss per patch (its target units)
    patch_mse: np.ndarray  # (h, w) pixel MSE (0..1 units) of the reconstruction shown
    loss: float  # the model's loss: mean over removed patches
    masked_mse: float  # pixel MSE over removed patches
    baseline_mse: float  # filling removed patches with the mean visible colour
    norm_pix_loss: bool

    @property
    def hidden_count(self) -> int:
        return int(self.mask.sum())

    @property
    def num_patches(self) -> int:
        return int(self.mask.size)

    @property
    def actual_ratio(self) -> float:
        return self.hidden_count / self.num_patches


def _require_mae(loaded: LoadedModel) -> MaskedAutoencoderViT:
    model = loaded.model
    if not isinstance(model, MaskedAutoencoderViT):
        raise UserFacingError(f"{loaded.shown.label_en} is not a masked autoencoder with a decoder.",
                              f"{loaded.shown.label_zh} 不是带解码器的掩码自编码器。")
    return model


def _to_uint8(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """(3, H, W) normalised -> (H, W, 3) uint8, as the official demo's show_image."""
    pixels = (x * std + mean).clamp(0, 1).mul(255).round().byte()
    return rearrange(pixels, "c h w -> h w c").cpu().numpy()


def reconstruct(loaded: LoadedModel, image: LoadedImage, strategy: str = "random", ratio: float = 0.75,
                seed: int = 0, painted: tuple[int, ...] = ()) -> MAEResult:
    """Hide patches of ``image`` by ``strategy`` and reconstruct them with one forward pass."""
    model = _require_mae(loaded)
    p, g = model.patch_size, model.grid_size
    pre = preprocess(image.image, loaded.data_config, "model", (p, p))
    x = pre.tensor.to(device_of(model))
    if tuple(x.shape[-2:]) != (g * p, g * p):
        raise UserFacingError(f"the MAE expects {g * p}×{g * p} inputs, got {x.shape[-1]}×{x.shape[-2]}",
                              f"该 MAE 需要 {g * p}×{g * p} 的输入，实际为 {x.shape[-1]}×{x.shape[-2]}")
    choice = choose_mask(strategy, (g, g), ratio, seed, painted)
    with torch.inference_mode():
        loss, pred, mask = model(x, mask_ratio=choice.mask_ratio, noise=choice.noise[None].to(x.device))
        patch_loss = model.patch_loss(x, pred)[0]
        patches = model.patchify(x)
        mean_p, var_p = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
        leaked = pred * (var_p + 1.0e-6) ** 0.5 + mean_p  # undo norm_pix with the TRUE statistics

    mean = torch.tensor(loaded.data_config["mean"], device=x.device).view(3, 1, 1)
    std = torch.tensor(loaded.data_config["std"], device=x.device).view(3, 1, 1)
    hidden_px = model.mask_pixels(mask)[0]  # (3, H, W), 1 = removed

    def pictures(prediction: torch.Tensor) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        y = model.unpatchify(prediction)[0]
        panels = {"original": _to_uint8(x[0], mean, std),
                  "masked": _to_uint8(x[0] * (1 - hidden_px), mean, std),
                  "reconstruction": _to_uint8(y, mean, std),
                  "pasted": _to_uint8(x[0] * (1 - hidden_px) + y * hidden_px, mean, std)}
        return panels, y

    panels, y = pictures(pred)
    leak_panels, y_leak = pictures(leaked) if model.norm_pix_loss else ({}, y)
    shown = y_leak if model.norm_pix_loss else y  # pixel errors need pixels: the leaked view for norm-pix

    px = x[0] * std + mean
    err = ((shown * std + mean).clamp(0, 1) - px) ** 2  # (3, H, W), 0..1 units
    patch_mse = model.patchify(err[None])[0].mean(-1).reshape(g, g)
    removed = hidden_px.bool()
    visible_colour = mean_visible_colour(px[None], removed[None])[0]
    n_removed = int(removed.sum())
    masked_mse = float(err[removed].mean()) if n_removed else float("nan")
    baseline = float(((visible_colour - px) ** 2)[removed].mean()) if n_removed else float("nan")
    steps = (*pre.steps[:-1], (f"Model input {g * p}×{g * p} px = {g}×{g} patches of {p}×{p} px",
                               f"模型输入 {g * p}×{g * p} 像素 = {g}×{g} 个 {p}×{p} 像素的 patch"))
    return MAEResult(
        model_image=pre.model_image, steps=steps, grid=(g, g), patch=p, strategy=strategy,
        mask_ratio=choice.mask_ratio, mask=mask[0].cpu().numpy().astype(np.float32),
        pred=pred[0].cpu().numpy().astype(np.float32), reconstruction=y.cpu().numpy().astype(np.float32),
        panels=panels, leak_panels=leak_panels, patch_loss=patch_loss.reshape(g, g).cpu().numpy(),
        patch_mse=patch_mse.cpu().numpy(), loss=float(loss), masked_mse=masked_mse, baseline_mse=baseline,
        norm_pix_loss=bool(model.norm_pix_loss))


def export_arrays(result: MAEResult) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez``: the official tensors (mask (L,), pred (L, p·p·3), the
    reconstruction (3, H, W) in the model's normalised space) plus the four panels and the
    per-patch errors."""
    out = {"mask": result.mask, "pred": result.pred, "reconstruction": result.reconstruction,
           "model_image": result.model_image, "grid": np.array(result.grid, dtype=np.int64),
           "patch_size": np.array(result.patch, dtype=np.int64),
           "mask_ratio": np.array(result.mask_ratio, dtype=np.float32),
           "patch_loss": result.patch_loss.astype(np.float32), "patch_mse": result.patch_mse.astype(np.float32),
           "loss": np.array(result.loss, dtype=np.float32)}
    out |= {f"panel_{name}": picture for name, picture in result.panels.items()}
    out |= {f"leak_panel_{name}": picture for name, picture in result.leak_panels.items()}
    return out
