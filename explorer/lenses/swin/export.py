"""``python -m explorer export swin``: per block the window probabilities, content and bias
logits, window ids, masks and region ids, and each block's geometry."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.swin.compute import analyze_image, export_arrays

    loaded = exporting.load(args)
    result = analyze_image(loaded, exporting.image(args), args.geometry)
    exporting.save_npz(args.out, export_arrays(result), loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.swin.blocks)} blocks; geometry = H, W, window h/w, shift h/w, pad h/w)")
    return 0
