"""``python -m explorer export twins``: LSA/GSA probabilities and geometry per block, PEG norms."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    exporting.add_step_argument(parser)


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.twins.compute import analyze_image, export_arrays, total_stride

    loaded = exporting.load(args)
    image = exporting.image(args)
    stride = total_stride(loaded.model)
    result = analyze_image(loaded, image, args.geometry)
    a = result.twins
    exporting.save_npz(args.out, {**export_arrays(result), **exporting.step_arrays(args, loaded, image, (stride, stride))}, loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, Twins-{a.variant}, "
          f"{len(a.blocks)} blocks: LSA/GSA probabilities and geometry, PEG norms)")
    print("PEG addition / token norm per stage: " + ", ".join(f"{p.relative:.3f}" for p in a.peg))
    return 0
