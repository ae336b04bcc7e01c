"""``python -m explorer export mae``: the official tensors (mask, pred, reconstruction), the four
panels and the per-patch errors."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mask-ratio", type=float, default=0.75, help="share of patches hidden")
    parser.add_argument("--mask-strategy", choices=("random", "block", "grid"), default="random",
                        help="random (the paper's), block-wise or grid masking")
    parser.add_argument("--seed", type=int, default=0, help="mask seed")


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.mae.compute import export_arrays, reconstruct

    loaded = exporting.load(args)
    r = reconstruct(loaded, exporting.image(args), args.mask_strategy, args.mask_ratio, args.seed)
    exporting.save_npz(args.out, export_arrays(r), loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}): {r.strategy} mask, "
          f"{r.hidden_count} of {r.num_patches} patches hidden, loss {r.loss:.4f}")
    if not r.norm_pix_loss and r.hidden_count:
        print(f"pixel MSE on hidden patches {r.masked_mse:.4f} vs {r.baseline_mse:.4f} for the mean visible colour")
    return 0
