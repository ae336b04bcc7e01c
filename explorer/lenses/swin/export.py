"""``python -m explorer export swin``: per block the window probabilities, content and bias
logits, window ids, masks and region ids, and each block's geometry."""

from __future__ import annotations

import argparse

import numpy as np

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass  # the common arguments say it all


def arrays_of(result) -> dict[str, np.ndarray]:
    from explorer.lenses.swin.compute import shift_region_ids

    arrays: dict[str, np.ndarray] = {"logits": result.swin.logits, "model_image": result.model_image}
    for item in result.swin.blocks:
        geo = item.geometry
        prefix = f"stage{geo.stage}_block{geo.block}"
        arrays[f"{prefix}_probs"] = item.probs
        arrays[f"{prefix}_content"] = item.content
        arrays[f"{prefix}_bias"] = item.bias
        arrays[f"{prefix}_window_ids"] = result.swin.window_id_map(geo.stage, geo.block)
        arrays[f"{prefix}_geometry"] = np.array([*geo.resolution, *geo.window, *geo.shift, *geo.pad])
        if item.mask is not None:
            arrays[f"{prefix}_mask"] = item.mask
            arrays[f"{prefix}_region_ids"] = shift_region_ids(*geo.padded, geo.window, geo.shift)
    return arrays


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.swin.compute import analyze_image

    loaded = exporting.load(args)
    result = analyze_image(loaded, exporting.image(args), args.geometry)
    exporting.save_npz(args.out, arrays_of(result))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.swin.blocks)} blocks; geometry = H, W, window h/w, shift h/w, pad h/w)")
    return 0
