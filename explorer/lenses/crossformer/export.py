"""``python -m explorer export crossformer``: SDA/LDA group maps, probabilities, content and
bias logits per block."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    exporting.add_step_argument(parser)


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.crossformer.compute import analyze_image, export_arrays

    loaded = exporting.load(args)
    image = exporting.image(args)
    result = analyze_image(loaded, image, args.geometry)
    exporting.save_npz(args.out, {**export_arrays(result), **exporting.step_arrays(args, loaded, image)}, loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.cross.blocks)} blocks: SDA/LDA group maps, probabilities, content, bias)")
    return 0
