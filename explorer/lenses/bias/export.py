"""``python -m explorer export bias``: every block's position-bias table and gathered bias
(for CrossFormer: DPB at several group sizes and the equivalent RPB). No image needed."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.bias.compute import analyze, export_arrays

    loaded = exporting.load(args)
    analysis = analyze(loaded.model)
    exporting.save_npz(args.out, export_arrays(analysis), loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(analysis.blocks)} blocks)")
    if analysis.family == "crossformer":
        print(f"DPB at the trained group size vs converted RPB: max |Δ| = {analysis.dpb_max_diff:.3g}")
    return 0
