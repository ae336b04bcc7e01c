"""``python -m explorer export attention``: the attention tensor, rollouts, distances and
position similarities as .npz, and the figures as .png and self-contained .html."""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.lenses import exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figures", help="folder for .png and .html figures")
    parser.add_argument("--layer", type=int, default=-1, help="layer for the figures (-1 = last)")
    parser.add_argument("--head", type=int, default=-1, help="head for the figures (-1 = mean)")
    parser.add_argument("--query", type=int, default=0, help="query token (0 = CLS)")
    parser.add_argument("--fusion", choices=("mean", "max", "min"), default="mean")
    parser.add_argument("--step", type=int, nargs=3, metavar=("LAYER", "HEAD", "QUERY"),
                        help="also write one head's arithmetic for one query token (step_x, step_q, step_k, "
                             "step_v, step_logits, step_bias, step_mask, step_probs, step_out)")


def run(args: argparse.Namespace) -> int:
    from plotly.offline import get_plotlyjs

    from explorer.lenses.attention import figures
    from explorer.lenses.attention.compute import analyze, export_arrays

    loaded = exporting.load(args, verbose=True)
    analysis = analyze(loaded, exporting.image(args), args.geometry)
    arrays = export_arrays(analysis)
    if args.step:
        from explorer.lenses.attention.step import step_for

        layer, head, query = args.step
        try:
            step = step_for(loaded, exporting.image(args), args.geometry, layer, head, query)
        except ValueError as err:
            raise SystemExit(f"--step: {err}") from None
        arrays.update(step.arrays())
        gap = float(abs(step.projected - step.model_projected).max())
        print(f"step: layer {layer}, head {head}, query {query} ({step.key_labels[query]}): {step.num_keys} keys, "
              f"stepped output = the block's attention output to {gap:.1e}")
    exporting.save_npz(args.out, arrays, loaded)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, grid {analysis.grid})")
    if analysis.predictions:
        print("top-5: " + "; ".join(f"{p.label} {p.probability:.3f}" for p in analysis.predictions))
    if args.figures:
        layer = analysis.num_layers - 1 if args.layer < 0 else args.layer
        head = None if args.head < 0 else args.head
        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        for name, picture in figures.export_pngs(analysis, layer, head, args.query, args.fusion).items():
            picture.save(folder / f"{name}.png")
        pages = {
            "attention": figures.query_attention_figure(analysis, layer, head, args.query),
            "rollout": figures.rollout_figure(analysis, args.fusion, args.query),
            "matrix": figures.attention_matrix_figure(analysis, layer, head),
            "mean_distance": figures.mean_distance_figure(analysis),
            "pos_similarity": figures.position_similarity_figure(analysis),
        }
        # One copy of plotly.js beside the pages, so they open offline without a CDN.
        (folder / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
        for name, fig in pages.items():
            if fig is not None:
                fig.write_html(folder / f"{name}.html", include_plotlyjs="directory")
        print(f"wrote figures to {folder}/ (.png and self-contained .html)")
    return 0
