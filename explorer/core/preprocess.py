"""Turn an upright RGB image into the tensor a model sees, and say what was done to it.

Two geometries: ``"model"`` is timm's own evaluation transform for the model
(``resolve_data_config`` + ``create_transform``: resize, centre crop, normalise); ``"native"``
keeps the aspect ratio and resizes to a patch grid with about the model's usual number of
tokens (ViTs are built with ``dynamic_img_size``, so their position embedding is resampled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from torchvision import transforms as T

GEOMETRIES = ("model", "native")


def check_geometry(value: object) -> str:
    """``value`` if it names a geometry; otherwise the one message that lists them (public APIs)."""
    from explorer.core.arguments import choice

    return choice(value, GEOMETRIES, ("geometry", "geometry（输入几何）"))
MAX_NATIVE_SIDE_PATCHES = 64  # a 1:20 panorama must not explode into thousands of tokens


@dataclass(frozen=True)
class Preprocessed:
    tensor: torch.Tensor  # (1, 3, H, W), normalised
    model_image: np.ndarray  # (H, W, 3) uint8: exactly the pixels the model sees, for overlays
    steps: tuple[tuple[str, str], ...]  # (english, chinese) description of each step
    geometry: str


def _interp(name: str) -> T.InterpolationMode:
    return T.InterpolationMode(name if name != "random" else "bicubic")


def native_grid(width: int, height: int, base_tokens: int) -> tuple[int, int]:
    """(rows, cols) keeping the aspect ratio with rows·cols close to ``base_tokens``."""
    aspect = width / height
    rows = max(1, round(math.sqrt(base_tokens / aspect)))
    cols = max(1, round(rows * aspect))
    return min(rows, MAX_NATIVE_SIDE_PATCHES), min(cols, MAX_NATIVE_SIDE_PATCHES)


def _describe(step: Any, before: tuple[int, int], after: tuple[int, int]) -> tuple[str, str]:
    (w0, h0), (w1, h1) = before, after
    name = type(step).__name__
    if isinstance(step, T.Resize):
        interp = step.interpolation.value
        return (f"Resize {w0}×{h0} → {w1}×{h1} ({interp})", f"缩放 {w0}×{h0} → {w1}×{h1}（{interp}）")
    if isinstance(step, T.CenterCrop):
        return (f"Centre-crop {w0}×{h0} → {w1}×{h1}", f"中心裁剪 {w0}×{h0} → {w1}×{h1}")
    return (f"{name} {w0}×{h0} → {w1}×{h1}", f"{name} {w0}×{h0} → {w1}×{h1}")


def build_transform(config: dict[str, Any], geometry: str, image_size: tuple[int, int],
                    patch_size: tuple[int, int]) -> T.Compose:
    """The torchvision pipeline for ``geometry`` (``image_size`` is (width, height))."""
    if geometry == "model":
        return create_transform(**config)
    if geometry != "native":
        raise ValueError(f"geometry must be one of {GEOMETRIES}, not {geometry!r}")
    _, height, width = config["input_size"]
    ph, pw = patch_size
    rows, cols = native_grid(*image_size, base_tokens=(height // ph) * (width // pw))
    return T.Compose([
        T.Resize((rows * ph, cols * pw), interpolation=_interp(config["interpolation"])),
        T.ToTensor(),
        T.Normalize(config["mean"], config["std"]),
    ])


def preprocess(image: Image.Image, config: dict[str, Any], geometry: str = "model",
               patch_size: tuple[int, int] = (16, 16)) -> Preprocessed:
    """Apply the pipeline step by step so that each geometric step can be reported."""
    pipeline = build_transform(config, geometry, image.size, patch_size)
    steps, current = [], image
    for step in pipeline.transforms:
        if isinstance(current, Image.Image) and not isinstance(step, T.Normalize):
            result = step(current)
            if isinstance(result, Image.Image) and result.size != current.size:
                steps.append(_describe(step, current.size, result.size))
            current = result
        else:
            current = step(current)
    tensor = current.unsqueeze(0)
    mean = torch.tensor(config["mean"]).view(3, 1, 1)
    std = torch.tensor(config["std"]).view(3, 1, 1)
    pixels = (tensor[0] * std + mean).clamp(0, 1).mul(255).round().byte()
    h, w = tensor.shape[-2:]
    ph, pw = patch_size
    steps.append((f"Model input {w}×{h} px = {h // ph}×{w // pw} patches of {ph}×{pw} px",
                  f"模型输入 {w}×{h} 像素 = {h // ph}×{w // pw} 个 {ph}×{pw} 像素的 patch"))
    return Preprocessed(tensor=tensor, model_image=pixels.permute(1, 2, 0).numpy(),
                        steps=tuple(steps), geometry=geometry)
