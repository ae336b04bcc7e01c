"""``python -m explorer export navit``: the packing of several images (ids, positions, masks),
each image's grid and kept tokens, and the logits packed and alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.core.images import load_image
from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens", type=int, default=64, help="about this many patches per image")
    parser.add_argument("--token-dropout", type=float, default=0.0, help="token dropout rate")
    parser.add_argument("--seed", type=int, default=0, help="token dropout seed")


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.navit.compute import analyze_images, export_arrays

    loaded = exporting.load(args)
    pictures = [(Path(p).name, load_image(p)) for p in args.image]
    a = analyze_images(loaded, pictures, tokens=args.tokens, token_dropout=args.token_dropout, seed=args.seed)
    exporting.save_npz(args.out, export_arrays(a), loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}): {len(a.images)} images "
          f"-> {a.num_sequences} sequence(s), {a.utilisation:.0%} of token slots used")
    for im in a.images:
        top = f"{im.predictions[0].label} {im.predictions[0].probability:.3f}" if im.predictions else "-"
        print(f"  {im.name}: {im.grid[0]}x{im.grid[1]} patches, {len(im.kept)} kept, sequence {im.sequence} "
              f"slot {im.slot}, top-1 {top}")
    print(f"packed vs each image alone: max |dlogit| = {a.max_abs_diff:.2e}")
    return 0
