"""``python -m explorer export swin``: per block the window probabilities, content and bias
logits, window ids, masks and region ids, and each block's geometry."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    exporting.add_step_argument(parser)


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.swin.compute import analyze_image, export_arrays

    loaded = exporting.load(args)
    image = exporting.image(args)
    result = analyze_image(loaded, image, args.geometry)
    arrays = export_arrays(result)
    arrays.update(exporting.step_arrays(args, loaded, image))
    exporting.save_npz(args.out, arrays, loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.swin.blocks)} blocks; geometry = H, W, window h/w, shift h/w, pad h/w)")
    return 0
