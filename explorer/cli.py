"""``python -m explorer``: list models, export a lens's arrays and figures without a browser,
fetch hub weights into ``checkpoints/``, train the bundled demo models."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from explorer.core.errors import UserFacingError


def _cmd_models(args: argparse.Namespace) -> int:
    """Every model, and where its weights are: each file on disk is checked (header, key names
    and shapes against the architecture, no tensors loaded) and a broken one is marked."""
    from explorer.core.weights import check_weight_file, download_instructions, local_weight_file
    from explorer.core.zoo import all_entries

    broken = 0
    for entry in all_entries():
        path = local_weight_file(entry)
        if path and path.is_file():
            problem = check_weight_file(entry, path)
            broken += problem is not None
            where = f"on disk: {path}" if problem is None else (
                f"BROKEN: {path}: {problem.message_en} The app skips it (as if it were missing). "
                f"{download_instructions(entry)[0] if not entry.is_demo else ''}".rstrip())
        else:
            where = download_instructions(entry)[0]
        print(f"{entry.key:48s} {entry.label_en}\n{'':48s} {where}")
    if broken:
        print(f"{broken} weight file(s) on disk cannot be used; see BROKEN above.", file=sys.stderr)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    """Download hub weights into checkpoints/ (the one command that reaches the network)."""
    from explorer.core.weights import download_instructions, hub_file
    from explorer.core.zoo import CHECKPOINT_DIR, get_entry

    entry = get_entry(args.model)
    if entry.is_demo:
        print(f"{entry.key} is bundled; nothing to fetch.")
        return 0
    if entry.hf_hub_id is None:
        print(download_instructions(entry)[0])
        return 1
    path, _ = hub_file(entry, allow_download=True)
    target = CHECKPOINT_DIR / f"{entry.local_weight_stem}.safetensors"
    shutil.copyfile(path, target)
    print(f"saved {target}")
    return 0


def _export_attention(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.attention import figures
    from explorer.lenses.attention.compute import HEAD_FUSIONS, analyze
    from plotly.offline import get_plotlyjs

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    if loaded.banner is not None:
        print(loaded.banner.en, file=sys.stderr)
    analysis = analyze(loaded, load_image(args.image), args.geometry)
    arrays = dict(
        logits=analysis.logits.astype(np.float32),
        attention=analysis.attention.astype(np.float32),
        grid=np.array(analysis.grid),
        patch_size=np.array(analysis.patch_size),
        num_prefix_tokens=np.array(analysis.num_prefix_tokens),
        mean_distance=analysis.mean_distance,
        model_image=analysis.model_image,
        **{f"rollout_{f}": analysis.rollout[f] for f in HEAD_FUSIONS},
    )
    if analysis.pos_similarity is not None:
        arrays["pos_similarity"] = analysis.pos_similarity
    _save_npz(args.out, arrays)
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


def _export_swin(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.swin.compute import analyze_image, shift_region_ids

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    result = analyze_image(loaded, load_image(args.image), args.geometry)
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
    _save_npz(args.out, arrays)
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.swin.blocks)} blocks; geometry = H, W, window h/w, shift h/w, pad h/w)")
    return 0


def _save_npz(out: str, arrays: dict[str, np.ndarray]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


def _export_bias(args: argparse.Namespace) -> int:
    from explorer.core.weights import load_model
    from explorer.lenses.bias.compute import analyze, export_arrays

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    analysis = analyze(loaded.model)
    _save_npz(args.out, export_arrays(analysis))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(analysis.blocks)} blocks)")
    if analysis.family == "crossformer":
        print(f"DPB at the trained group size vs converted RPB: max |Δ| = {analysis.dpb_max_diff:.3g}")
    return 0


def _export_crossformer(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.crossformer.compute import analyze_image, export_arrays

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    result = analyze_image(loaded, load_image(args.image), args.geometry)
    _save_npz(args.out, export_arrays(result))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, "
          f"{len(result.cross.blocks)} blocks: SDA/LDA group maps, probabilities, content, bias)")
    return 0


def _export_twins(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.twins.compute import analyze_image, export_arrays

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    result = analyze_image(loaded, load_image(args.image), args.geometry)
    a = result.twins
    _save_npz(args.out, export_arrays(result))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, Twins-{a.variant}, "
          f"{len(a.blocks)} blocks: LSA/GSA probabilities and geometry, PEG norms)")
    print("PEG addition / token norm per stage: " + ", ".join(f"{p.relative:.3f}" for p in a.peg))
    return 0


def _export_navit(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.navit.compute import analyze_images, export_arrays

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    pictures = [(Path(p).name, load_image(p)) for p in args.image]
    a = analyze_images(loaded, pictures, tokens=args.tokens, token_dropout=args.token_dropout, seed=args.seed)
    _save_npz(args.out, export_arrays(a))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}): {len(a.images)} images "
          f"-> {a.num_sequences} sequence(s), {a.utilisation:.0%} of token slots used")
    for im in a.images:
        top = f"{im.predictions[0].label} {im.predictions[0].probability:.3f}" if im.predictions else "-"
        print(f"  {im.name}: {im.grid[0]}x{im.grid[1]} patches, {len(im.kept)} kept, sequence {im.sequence} "
              f"slot {im.slot}, top-1 {top}")
    print(f"packed vs each image alone: max |dlogit| = {a.max_abs_diff:.2e}")
    return 0


def _export_mae(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.mae.compute import export_arrays, reconstruct

    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    r = reconstruct(loaded, load_image(args.image), args.mask_strategy, args.mask_ratio, args.seed)
    _save_npz(args.out, export_arrays(r))
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}): {r.strategy} mask, "
          f"{r.hidden_count} of {r.num_patches} patches hidden, loss {r.loss:.4f}")
    if not r.norm_pix_loss and r.hidden_count:
        print(f"pixel MSE on hidden patches {r.masked_mse:.4f} vs {r.baseline_mse:.4f} for the mean visible colour")
    return 0


def _export_dino(args: argparse.Namespace) -> int:
    from explorer.core.images import load_image
    from explorer.core.weights import load_model
    from explorer.lenses.dino.compute import analyze_image, check_threshold, export_arrays

    threshold = None if args.threshold is None else check_threshold(args.threshold)
    loaded = load_model(args.model, weights_file=args.weights, allow_download=args.allow_download)
    if loaded.banner is not None:
        print(loaded.banner.en, file=sys.stderr)
    a = analyze_image(loaded, load_image(args.image), args.geometry)
    arrays = export_arrays(a, threshold)
    _save_npz(args.out, arrays)
    kept = "" if threshold is None else (
        f"; t = {threshold:g} keeps {arrays['patch_masks'].sum(axis=(1, 2)).mean():.1f} patches per head on average")
    print(f"wrote {args.out} (model {loaded.shown.key}, weights: {loaded.source}, block {a.block} CLS attention: "
          f"{a.num_heads} heads over {a.grid[0]}x{a.grid[1]} patches of {a.patch_size[0]} px{kept})")
    return 0


EXPORTERS = {"attention": _export_attention, "swin": _export_swin, "bias": _export_bias,
             "crossformer": _export_crossformer, "twins": _export_twins, "navit": _export_navit,
             "dino": _export_dino, "mae": _export_mae}


def _cmd_export(args: argparse.Namespace) -> int:
    args.geometry = args.geometry or ("native" if args.lens == "dino" else "model")
    if args.lens != "bias" and not args.image:
        raise UserFacingError(f"export {args.lens} needs --image")
    if args.lens != "navit":  # only NaViT packs several images
        if args.image and len(args.image) > 1:
            raise UserFacingError(f"export {args.lens} takes one --image")
        args.image = args.image[0] if args.image else None
    return EXPORTERS[args.lens](args)


def _sample_images(model_key: str, count: int = 8):
    """The example photos, preprocessed for the model: inputs for conversion checks."""
    import torch

    from explorer.core.images import load_image
    from explorer.core.preprocess import preprocess
    from explorer.core.weights import get_model
    from explorer.core.zoo import REPO_ROOT

    loaded = get_model(model_key, allow_download=False)
    paths = sorted((REPO_ROOT / "assets" / "examples").glob("*.jpg"))[:count]
    tensors = [preprocess(load_image(p).image, loaded.data_config, "model").tensor for p in paths]
    return torch.cat(tensors)


def _cmd_convert_dpb(args: argparse.Namespace) -> int:
    """CrossFormer DPB -> fixed RPB tables, saved as safetensors; prints max |Δlogit|."""
    from explorer.models.crossformer import convert_checkpoint

    images = _sample_images(args.model)
    diff = convert_checkpoint(args.input, args.output, args.model, images)
    print(f"wrote {args.output}: every DPB evaluated once at its group size -> RPB tables")
    print(f"max |Δlogit| (DPB vs converted RPB) on {len(images)} images: {diff:.3g}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Top-1/top-5 on an ImageFolder (e.g. ImageNet val), for CrossFormer also after DPB -> RPB."""
    import torch
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    from explorer.core.weights import load_model
    from explorer.models.crossformer import dpb_to_rpb

    loaded = load_model(args.model, weights_file=args.weights, allow_download=False)
    if loaded.banner is not None:
        print(loaded.banner.en, file=sys.stderr)
    dataset = ImageFolder(args.data, transform=create_transform(**loaded.data_config))
    names = loaded.class_names or ()
    # Folders named after the model's classes map by name; otherwise sorted order = index.
    by_name = all(c in names for c in dataset.classes)
    target_of = [names.index(c) if by_name else i for i, c in enumerate(dataset.classes)]
    models = {"as loaded": loaded.model}
    if loaded.shown.family == "crossformer":
        models["DPB -> RPB"] = dpb_to_rpb(loaded.model).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers)
    counts = {name: [0, 0] for name in models}
    total = 0
    with torch.inference_mode():
        for images, labels in loader:
            targets = torch.tensor([target_of[i] for i in labels])
            total += len(targets)
            for name, model in models.items():
                top5 = model(images).topk(min(5, len(names) or 5), dim=-1).indices
                counts[name][0] += int((top5[:, 0] == targets).sum())
                counts[name][1] += int((top5 == targets[:, None]).any(-1).sum())
    for name, (top1, top5) in counts.items():
        print(f"{loaded.shown.key} [{name}]: top-1 {100 * top1 / total:.2f}%  "
              f"top-5 {100 * top5 / total:.2f}%  ({total} images)")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from explorer.train import recipes

    return recipes.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list the models and where their weights go").set_defaults(fn=_cmd_models)

    fetch = sub.add_parser("fetch", help="download a hub model's weights into checkpoints/")
    fetch.add_argument("model")
    fetch.set_defaults(fn=_cmd_fetch)

    export = sub.add_parser("export", help="write a lens's arrays (.npz) and figures (.png/.html)")
    export.add_argument("lens", choices=sorted(EXPORTERS))
    export.add_argument("--model", required=True, help="a key from `python -m explorer models`")
    export.add_argument("--weights", help="a .safetensors/.pth file (default: checkpoints/, hub cache, demo)")
    export.add_argument("--image", nargs="+", help="input image (bias needs none; navit packs several)")
    export.add_argument("--out", required=True, help="output .npz")
    export.add_argument("--geometry", choices=("model", "native"),
                        help="model: resize + centre crop (default); native: keep the aspect ratio (dino's default, "
                             "as the official visualize_attention.py)")
    export.add_argument("--figures", help="folder for .png and .html figures")
    export.add_argument("--layer", type=int, default=-1, help="layer for the figures (-1 = last)")
    export.add_argument("--head", type=int, default=-1, help="head for the figures (-1 = mean)")
    export.add_argument("--query", type=int, default=0, help="query token (0 = CLS)")
    export.add_argument("--fusion", choices=("mean", "max", "min"), default="mean")
    export.add_argument("--tokens", type=int, default=64, help="navit: about this many patches per image")
    export.add_argument("--token-dropout", type=float, default=0.0, help="navit: token dropout rate")
    export.add_argument("--seed", type=int, default=0, help="navit: token dropout seed; mae: mask seed")
    export.add_argument("--mask-ratio", type=float, default=0.75, help="mae: share of patches hidden")
    export.add_argument("--mask-strategy", choices=("random", "block", "grid"), default="random",
                        help="mae: random (the paper's), block-wise or grid masking")
    export.add_argument("--threshold", type=float, default=None,
                        help="dino: also write the masks that keep, per head, the fewest patches holding "
                             "this share of the CLS attention (e.g. 0.6)")
    export.add_argument("--allow-download", action="store_true", help="fetch missing weights from the hub")
    export.set_defaults(fn=_cmd_export)

    convert = sub.add_parser("convert-dpb", help="CrossFormer: replace each DPB by its RPB table")
    convert.add_argument("input", help="a CrossFormer checkpoint (official .pth or ours)")
    convert.add_argument("output", help="the converted .safetensors")
    convert.add_argument("--model", default="crossformer_tiny", help="architecture (crossformer_tiny...)")
    convert.set_defaults(fn=_cmd_convert_dpb)

    evaluate = sub.add_parser("evaluate", help="top-1/top-5 on an ImageFolder directory")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--weights")
    evaluate.add_argument("--data", required=True, help="ImageFolder root (one folder per class)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--workers", type=int, default=2)
    evaluate.set_defaults(fn=_cmd_evaluate)

    train = sub.add_parser("train", help="train a bundled demo model: train FAMILY [--quick] [--out DIR]",
                           add_help=False)
    train.add_argument("rest", nargs=argparse.REMAINDER)
    train.set_defaults(fn=_cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (UserFacingError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
