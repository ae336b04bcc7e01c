"""``python -m explorer export swin``: per block the window probabilities, content and bias
logits, window ids, masks and region ids, and each block's geometry."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--step", type=int, nargs=3, metavar=("LAYER", "HEAD", "QUERY"),
                        help="also write one head's arithmetic for one token (LAYER: block over all stages; "
                             "QUERY: row·cols + col on its map): step_x, step_q, step_k, step_v, step_logits, "
                             "step_bias (+ step_bias_index, step_bias_offset), step_mask, step_probs, step_out")


def run(args: argparse.Namespace) -> int:
    from explorer.lenses.swin.compute import analyze_image, export_arrays

    loaded = exporting.load(args)
    image = exporting.image(args)
    result = analyze_image(loaded, image, args.geometry)
    arrays = export_arrays(result)
    if getattr(args, "step", None):
        from explorer.core.preprocess import preprocess
        from explorer.lenses.swin.step import step_through

        pre = preprocess(image.image, loaded.data_config, args.geometry, loaded.patch_size)
        try:
            step = step_through(loaded.model, pre.tensor, *args.step)
        except ValueError as err:
            raise SystemExit(f"--step: {err}") from None
        arrays.update(step.arrays())
        gap = float(abs(step.projected - step.model_projected).max())
        print(f"step: block {step.layer} (stage {step.stage}, block {step.block}), head {step.head}, token "
              f"{step.query_position} in window {step.window}: {step.num_keys} keys, stepped output = the block's "
              f"window attention to {gap:.1e}")
    exporting.save_npz(args.out, arrays, loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.swin.blocks)} blocks; geometry = H, W, window h/w, shift h/w, pad h/w)")
    return 0
