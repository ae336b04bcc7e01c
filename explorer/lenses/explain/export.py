"""``python -m explorer export explain``: every method's map for one target class, and its
deletion and insertion curves with their AUCs, as .npz."""

from __future__ import annotations

import argparse

from explorer.lenses import exporting

MAX_STEPS = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="the class to explain: its index or its name (default: the top class)")
    parser.add_argument("--steps", type=int, default=10, help="deletion/insertion steps S (default 10)")


def run(args: argparse.Namespace) -> int:
    from explorer.core import arguments
    from explorer.lenses.explain.compute import analyze_image, export_arrays, faithfulness
    from explorer.lenses.explain.target import target_index

    steps = arguments.whole_number(args.steps, 1, MAX_STEPS, ("--steps", "--steps（步数）"))
    loaded = exporting.load(args, verbose=True)
    target = target_index(args.target, loaded.class_names, int(getattr(loaded.model, "num_classes", 0)))
    analysis = analyze_image(loaded, exporting.image(args), args.geometry, target)
    measured = faithfulness(loaded, analysis, steps)
    exporting.save_npz(args.out, export_arrays(analysis, measured), loaded)
    name = (loaded.class_names or ())[analysis.target] if loaded.class_names else f"class {analysis.target}"
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, target {analysis.target}: {name})")
    deletion, insertion = measured.auc("deletion"), measured.auc("insertion")
    for method in analysis.methods:
        print(f"  {method:9s} deletion AUC {deletion[method]:.3f} (lower is better) · "
              f"insertion AUC {insertion[method]:.3f} (higher is better)")
    print(f"deletes fastest: {measured.fastest_deletion}; inserts fastest: {measured.fastest_insertion}")
    return 0
