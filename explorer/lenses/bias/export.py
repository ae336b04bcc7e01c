"""``python -m explorer export bias``: every block's position-bias table and gathered bias
(for CrossFormer: DPB at several group sizes and the equivalent RPB). No image needed."""

from __future__ import annotations

import argparse

import numpy as np

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def arrays_of(analysis) -> dict[str, np.ndarray]:
    from explorer.lenses.bias.compute import export_arrays

    return export_arrays(analysis)


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.bias.compute import analyze

    loaded = exporting.load(args)
    analysis = analyze(loaded.model)
    exporting.save_npz(args.out, arrays_of(analysis))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(analysis.blocks)} blocks)")
    if analysis.family == "crossformer":
        print(f"DPB at the trained group size vs converted RPB: max |Δ| = {analysis.dpb_max_diff:.3g}")
    return 0
