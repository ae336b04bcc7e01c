"""``python -m explorer export crossformer``: SDA/LDA group maps, probabilities, content and
bias logits per block."""

from __future__ import annotations

import argparse

import numpy as np

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def arrays_of(result) -> dict[str, np.ndarray]:
    from explorer.lenses.crossformer.compute import export_arrays

    return export_arrays(result)


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.crossformer.compute import analyze_image

    loaded = exporting.load(args)
    result = analyze_image(loaded, exporting.image(args), args.geometry)
    exporting.save_npz(args.out, arrays_of(result))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.cross.blocks)} blocks: SDA/LDA group maps, probabilities, content, bias)")
    return 0
