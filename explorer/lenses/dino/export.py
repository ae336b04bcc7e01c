"""``python -m explorer export dino``: the last block's CLS attention per head at the image's
aspect ratio, the DINOv2 PCA colours (``pca_rgb``) and the token norms (``token_norms``) and,
with ``--threshold``, the official masks."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting

DEFAULT_GEOMETRY = "native"  # as visualize_attention.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, default=None,
                        help="also write the masks that keep, per head, the fewest patches holding "
                             "this share of the CLS attention (e.g. 0.6)")
    parser.add_argument("--pca-threshold", type=float, default=0.5,
                        help="the first principal component's cut between background and foreground (0-1) "
                             "for pca_rgb (default 0.5)")


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.dino.compute import analyze_image, check_threshold, export_arrays

    threshold = None if args.threshold is None else check_threshold(args.threshold)
    pca_threshold = check_threshold(args.pca_threshold)
    loaded = exporting.load(args, verbose=True)
    a = analyze_image(loaded, exporting.image(args), args.geometry)
    arrays = export_arrays(a, threshold, pca_threshold)
    exporting.save_npz(args.out, arrays, loaded)
    kept = "" if threshold is None else (
        f"; t = {threshold:g} keeps {arrays['patch_masks'].sum(axis=(1, 2)).mean():.1f} patches per head on average")
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, block {a.block} CLS attention: "
          f"{a.num_heads} heads over {a.grid[0]}x{a.grid[1]} patches of {a.patch_size[0]} px{kept})")
    return 0
