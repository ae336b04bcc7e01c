"""What every lens's ``export`` subcommand shares: the common arguments, loading the model the
way the page does (with its banner on stderr), and writing the arrays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from explorer.core.images import LoadedImage, load_image
from explorer.core.weights import LoadedModel, load_model


def add_common_arguments(parser: argparse.ArgumentParser, inputs: str, default_geometry: str = "model") -> None:
    parser.add_argument("--model", required=True, help="a key from `python -m explorer models`")
    parser.add_argument("--weights", help="a .safetensors/.pth file (default: checkpoints/, hub cache, demo)")
    if inputs != "model":
        parser.add_argument("--image", nargs="+", required=False,
                            help="input images (packed together)" if inputs == "images" else "input image")
    else:
        parser.add_argument("--image", nargs="+", help=argparse.SUPPRESS)  # accepted, not needed
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--geometry", choices=("model", "native"), default=default_geometry,
                        help=f"model: resize + centre crop; native: keep the aspect ratio (default: {default_geometry})")
    parser.add_argument("--allow-download", action="store_true", help="fetch missing weights from the hub")


def load(args: argparse.Namespace, verbose: bool = False) -> LoadedModel:
    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    if verbose and loaded.banner is not None:
        print(loaded.banner.en, file=sys.stderr)
    return loaded


def image(args: argparse.Namespace) -> LoadedImage:
    return load_image(args.image)


def save_npz(out: str, arrays: dict[str, np.ndarray]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
