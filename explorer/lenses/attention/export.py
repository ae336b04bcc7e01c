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
    exporting.add_step_argument(parser)


def run(args: argparse.Namespace) -> int:
    from plotly.offline import get_plotlyjs

    from explorer.lenses.attention import figures
    from explorer.lenses.attention.compute import analyze, export_arrays

    loaded = exporting.load(args, verbose=True)
    image = exporting.image(args)
    analysis = analyze(loaded, image, args.geometry)
    exporting.save_npz(args.out, {**export_arrays(analysis), **exporting.step_arrays(args, loaded, image)}, loaded)
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
