"""What every lens's ``export`` subcommand shares: the common arguments, loading the model the
way the page does (with its banner on stderr), and writing the arrays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from explorer.core.checkpoints import Card, card_from_dict, read_labels
from explorer.core.devices import add_device_argument, resolve_device
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
    add_device_argument(parser)
    add_card_arguments(parser)


def add_card_arguments(parser: argparse.ArgumentParser) -> None:
    """What a checkpoint's card says, given on the command line (over the card beside the file)."""
    group = parser.add_argument_group("your checkpoint's classes and preprocessing (default: its card "
                                      "<weights>.json, else the architecture's)")
    group.add_argument("--labels", help="class names: one per line, or a JSON list")
    group.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
    group.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"))
    group.add_argument("--input-size", type=int, nargs="+", metavar="PX",
                       help="the model's input: one size (square) or H W")
    group.add_argument("--interpolation", choices=("bicubic", "bilinear", "nearest"))
    group.add_argument("--crop-pct", type=float, help="the share of the resized image the crop keeps")
    group.add_argument("--crop-mode", choices=("center", "squash", "border"),
                       help="squash: resize ignoring the aspect ratio; alone (crop-pct 1) it is transforms.Resize((H, W))")


def card_from_args(args: argparse.Namespace) -> Card | None:
    """The card the flags make, validated like a card file; None when none is given."""
    fields = {}
    if getattr(args, "labels", None):
        fields["class_names"] = list(read_labels(args.labels))
    for name in ("mean", "std", "interpolation", "crop_pct", "crop_mode"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    size = getattr(args, "input_size", None)
    if size:
        fields["input_size"] = [3, size[0], size[-1]] if len(size) <= 2 else size
    return card_from_dict(fields, "the command line") if fields else None


def load(args: argparse.Namespace, verbose: bool = False) -> LoadedModel:
    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download,
                        card=card_from_args(args), device=resolve_device(getattr(args, "device", "auto")))
    if verbose and loaded.banner is not None:
        print(loaded.banner.en, file=sys.stderr)
    return loaded


def image(args: argparse.Namespace) -> LoadedImage:
    return load_image(args.image)


def save_npz(out: str, arrays: dict[str, np.ndarray], loaded: LoadedModel) -> None:
    """The lens's arrays and the model's ``class_names`` (empty when it has no classifier)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    names = np.array(loaded.class_names or (), dtype=str)
    np.savez_compressed(out, **{"class_names": names, **arrays})


def add_step_argument(parser: argparse.ArgumentParser) -> None:
    """``--step LAYER HEAD QUERY`` of the lenses with attention (``lenses/stepping``)."""
    parser.add_argument("--step", type=int, nargs=3, metavar=("LAYER", "HEAD", "QUERY"),
                        help="also write one head's arithmetic for one query token (LAYER: block over all stages; "
                             "QUERY: row·cols + col on the block's map): step_x, step_q, step_k, step_v, "
                             "step_logits, step_bias, step_mask, step_probs, step_out (+ step_bias_index, "
                             "step_key_positions)")


def step_arrays(args: argparse.Namespace, loaded: LoadedModel, image: LoadedImage,
                multiple: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The ``--step`` arrays (none without the flag), from one more captured forward of the image
    preprocessed as the lens does (``multiple``: what its native geometry cuts the size to)."""
    if not getattr(args, "step", None):
        return {}
    from explorer.core.preprocess import preprocess
    from explorer.lenses.stepping import step_through

    pre = preprocess(image.image, loaded.data_config, args.geometry, multiple or loaded.patch_size)
    try:
        step = step_through(loaded.model, pre.tensor, *args.step)
    except ValueError as err:
        raise SystemExit(f"--step: {err}") from None
    gap = max(float(np.abs(step.projected - step.model_projected).max()),
              float(np.abs(step.residual - step.model_residual).max()))
    print(f"step ({step.family}): block {step.layer}, head {step.head}, query {step.query} "
          f"{step.query_position}: {step.num_keys} keys; stepped = the block's own values to {gap:.1e}")
    arrays = {"step_x": step.x, "step_q": step.q, "step_k": step.k, "step_v": step.v, "step_logits": step.logits,
              "step_bias": step.bias, "step_mask": step.mask, "step_probs": step.probs, "step_out": step.out,
              "step_key_positions": step.key_positions}
    if step.bias_index is not None:
        arrays["step_bias_index"] = step.bias_index
    return {k: np.asarray(v) for k, v in arrays.items()}
