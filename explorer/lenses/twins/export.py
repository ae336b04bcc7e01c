"""``python -m explorer export twins``: LSA/GSA probabilities and geometry per block, PEG norms."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.twins.compute import analyze_image, export_arrays

    loaded = exporting.load(args)
    result = analyze_image(loaded, exporting.image(args), args.geometry)
    a = result.twins
    exporting.save_npz(args.out, export_arrays(result), loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, Twins-{a.variant}, "
          f"{len(a.blocks)} blocks: LSA/GSA probabilities and geometry, PEG norms)")
    print("PEG addition / token norm per stage: " + ", ".join(f"{p.relative:.3f}" for p in a.peg))
    return 0
