"""``python -m explorer``: list models, export a lens's arrays and figures without a browser,
fetch hub weights into ``checkpoints/``, train the bundled demo models."""

from __future__ import annotations

import argparse
import os
import sys


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
    if args.all:
        _print_timm_names()
    return 0


def _print_timm_names() -> None:
    """Every timm architecture a lens reads, by lens. Which lenses read an architecture is asked
    of one weightless skeleton per timm module (its architectures share their classes)."""
    import timm
    import torch
    from timm.models import model_entrypoint

    from explorer.core.weights import local_weight_file
    from explorer.core.zoo import _TIMM_FAMILIES, get_entry
    from explorer.lenses.registry import LENSES

    by_module: dict[str, list[str]] = {}
    for name in timm.list_models():
        module = model_entrypoint(name).__module__.rsplit(".", 1)[-1]
        if module in _TIMM_FAMILIES:
            by_module.setdefault(module, []).append(name)
    readers: dict[str, list[str]] = {lens.title("en"): [] for lens in LENSES}
    for module, names in by_module.items():
        with torch.device("meta"):
            skeleton = timm.create_model(min(names, key=len), pretrained=False)
        for lens in LENSES:
            if lens.reads(skeleton):
                readers[lens.title("en")] += names
    print("\nAny timm name (with or without a pretrained tag) opens in these lenses; "
          "* = weights in checkpoints/:")
    for title, names in readers.items():
        marked = [f"{n}*" if (path := local_weight_file(get_entry(n))) is not None and path.is_file() else n
                  for n in sorted(names)] if names else []
        print(f"{title} ({len(names)}): {', '.join(marked) or '-'}")


def _cmd_fetch(args: argparse.Namespace) -> int:
    """Download weights into checkpoints/ (the one command that reaches the network): one model,
    or with --recommended a small set that covers every tab; then say what is where."""
    from explorer.core.fetching import RECOMMENDED, fetch_all
    from explorer.core.zoo import CHECKPOINT_DIR

    if args.recommended == bool(args.model):
        raise UserFacingError("fetch takes one model key or --recommended (python -m explorer models lists the keys)")
    keys = RECOMMENDED if args.recommended else (args.model,)
    if not args.recommended:  # a name no lens reads would download weights nothing can show
        from explorer.lenses.registry import model_some_lens_reads

        model_some_lens_reads(args.model)
    results = fetch_all(keys, CHECKPOINT_DIR)
    for r in results:
        if r.path is not None:
            print(f"got     {r.key:44s} {r.path} ({r.path.stat().st_size / 2**20:.0f} MB)")
        else:
            print(f"missing {r.key:44s} {r.problem}")
    missing = [r for r in results if r.path is None]
    if missing and len(keys) > 1:
        print(f"{len(results) - len(missing)} of {len(results)} fetched. Where the hub is unreachable, set "
              "HF_ENDPOINT to a mirror, or copy the files into checkpoints/ from a machine that has them "
              "(README, 'Weights').", file=sys.stderr)
    return 1 if missing else 0


def _cmd_add(args: argparse.Namespace) -> int:
    """Copy a checkpoint into checkpoints/ for good, in timm's layout (torchvision's converted),
    with a card beside it: its architecture, classes and preprocessing. It is checked by loading
    it first, and it then appears in `models`, the page's pickers and every command."""
    import re
    from pathlib import Path

    from explorer.core.checkpoints import card_beside, check_user_model_name, save_user_model
    from explorer.core.devices import resolve_device
    from explorer.core.weights import load_model
    from explorer.core.zoo import CHECKPOINT_DIR, name_taken, user_entries
    from explorer.lenses.exporting import card_from_args

    source = Path(args.file)
    name = check_user_model_name(args.name or re.sub(r"[^A-Za-z0-9_.-]+", "_", source.stem).strip("._") or "my_model")
    target = CHECKPOINT_DIR / f"{name}.safetensors"
    mine = any(e.key == name for e in user_entries())
    if name_taken(name):
        raise UserFacingError(f"{name} already names a model (of the zoo, timm or torchvision): --name picks another.")
    if target.exists() and not (mine and args.force):
        raise UserFacingError(f"{target} exists" + (" (--force replaces your model of that name)." if mine else
                                                    "; --name picks another name."))
    card = card_from_args(args)
    loaded = load_model(args.model, weights_file=source, allow_download=False, card=card,
                        device=resolve_device(args.device))
    beside = card_beside(source)  # class names only where the user gave them (a card beside the file, --labels)
    names = loaded.class_names if any(c is not None and c.class_names for c in (card, beside)) else None
    # the model as checked: its timm name with the tag (default preprocessing, family) and the
    # arguments it was built with (input size, classes), so that it reopens as the same model
    record = save_user_model(target, loaded.model.state_dict(), loaded.shown.timm_model, loaded.shown.model_kwargs,
                             int(getattr(loaded.model, "num_classes", 0)), loaded.data_config, names)
    print(loaded.banner.en if loaded.banner is not None else "")
    print(f"added {name}: {target} and {target.with_suffix('.json').name} ({record['timm_model']}, "
          f"{record['num_classes']} classes); open it with --model {name} or pick it in the page")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from explorer.lenses.registry import get_lens

    lens = get_lens(args.lens)
    if lens.inputs != "model" and not args.image:
        raise UserFacingError(f"export {lens.key} needs --image")
    if lens.inputs == "image":  # only NaViT packs several images
        if args.image and len(args.image) > 1:
            raise UserFacingError(f"export {lens.key} takes one --image")
        args.image = args.image[0] if args.image else None
    return lens.export.run(args)


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
    from explorer.core.conversions import convert_checkpoint
    from explorer.core.devices import resolve_device

    device = resolve_device(args.device)  # checked before anything is read
    images = _sample_images(args.model)
    diff = convert_checkpoint(args.input, args.output, args.model, images, device=device)
    print(f"wrote {args.output}: every DPB evaluated once at its group size -> RPB tables")
    print(f"max |Δlogit| (DPB vs converted RPB) on {len(images)} images: {diff:.3g}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Top-1/top-5 on a labelled folder (class folders or ImageNet's flat val), on any device,
    alone or under torchrun; CrossFormer also after DPB -> RPB, SwinV2 after CPB -> table."""
    from explorer.core.weights import load_model
    from explorer.lenses.exporting import card_from_args
    from explorer.train import distributed
    from explorer.train.evaluate import evaluate
    from explorer.train.folders import read_folder

    group = distributed.join(args.device)
    try:
        card = card_from_args(args)
        loaded = load_model(args.model, weights_file=args.weights, allow_download=False, card=card, device=group.device)
        data = read_folder(args.data, loaded.class_names, int(getattr(loaded.model, "num_classes", 0)),
                           loaded.shown.key, synsets=args.synsets)
        say = print if group.is_main else (lambda *a, **k: None)
        if loaded.banner is not None:
            say(loaded.banner.en, file=sys.stderr)
        report = evaluate(loaded, data, group, batch_size=args.batch_size, workers=args.workers, amp=args.amp,
                          progress=not args.no_progress, data_dir=args.data, card=card)
        say(f"{report.model} on {report.data}: {report.images} images, {report.layout}, classes {report.mapping}")
        say(f"preprocessing: {report.preprocessing}")
        say(f"device: {report.device} × {report.processes} process(es), batch {report.batch_size}"
            f"{', autocast ' + report.amp if report.amp else ''}; {report.wall_s:.1f} s, {report.images_per_s:.1f} images/s")
        say(report.table())
        if args.json and group.is_main:
            report.write_json(args.json)
            say(f"wrote {args.json}")
    finally:
        distributed.leave(group)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from explorer.train import recipes

    return recipes.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the models and where their weights go")
    models.add_argument("--all", action="store_true", help="also every timm architecture each lens reads")
    models.set_defaults(fn=_cmd_models)

    fetch = sub.add_parser("fetch", help="download a model's weights into checkpoints/ (or --recommended)")
    fetch.add_argument("model", nargs="?", help="a model key (python -m explorer models)")
    fetch.add_argument("--recommended", action="store_true",
                       help="ViT-S/16, DeiT-S, Swin-T, Twins-SVT-S, DINO S/16 and S/8, the MAE-B decoder")
    fetch.set_defaults(fn=_cmd_fetch)

    from explorer.core.devices import add_device_argument
    from explorer.lenses.exporting import add_card_arguments, add_common_arguments
    from explorer.train.distributed import default_workers

    add = sub.add_parser("add", help="copy your checkpoint (with its classes and preprocessing) into checkpoints/")
    add.add_argument("file", help="a .safetensors/.pth checkpoint (timm, timm train.py or torchvision layout)")
    add.add_argument("--model", required=True, help="its architecture: a timm name (vit_base_patch16_224) or "
                     "a torchvision one (vit_b_16)")
    add.add_argument("--name", help="the model's name in checkpoints/ (default: the file's)")
    add.add_argument("--force", action="store_true", help="replace a file of that name")
    add_device_argument(add)
    add_card_arguments(add)
    add.set_defaults(fn=_cmd_add)

    export = sub.add_parser("export", help="write a lens's arrays (.npz) (and, for attention, figures)")
    lenses = export.add_subparsers(dest="lens", required=True, metavar="LENS")
    from explorer.lenses.registry import LENSES

    for lens in LENSES:
        module = lens.export
        one = lenses.add_parser(lens.key, help=lens.summary, description=module.__doc__)
        add_common_arguments(one, lens.inputs, getattr(module, "DEFAULT_GEOMETRY", "model"))
        if hasattr(module, "add_arguments"):  # lens-specific flags, if any
            module.add_arguments(one)
        one.set_defaults(fn=_cmd_export)

    convert = sub.add_parser("convert-dpb", help="CrossFormer: replace each DPB by its RPB table")
    convert.add_argument("input", help="a CrossFormer checkpoint (official .pth or ours)")
    convert.add_argument("output", help="the converted .safetensors")
    convert.add_argument("--model", default="crossformer_tiny", help="architecture (crossformer_tiny...)")
    add_device_argument(convert)
    convert.set_defaults(fn=_cmd_convert_dpb)

    evaluate = sub.add_parser("evaluate", help="top-1/top-5 on a labelled folder, alone or under torchrun",
                              description="Top-1/top-5 of a model on a labelled image folder. Run it under "
                              "`torchrun --nproc_per_node N -m explorer evaluate ...` to split the images over N "
                              "processes (GPUs, or CPU processes with gloo).")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--weights")
    evaluate.add_argument("--data", required=True, help="one folder per class (WordNet ids or class names), or "
                          "ImageNet's flat val folder with LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt")
    evaluate.add_argument("--synsets", help="for ILSVRC2012_validation_ground_truth.txt: the devkit's data/meta.mat, "
                          "or a text file with one WordNet id per line in ILSVRC2012_ID order")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--workers", type=int, default=default_workers(),
                          help="data-loading processes per process (default: one less than the cores, at most 8)")
    evaluate.add_argument("--json", help="also write the results here")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(evaluate, amp=True)
    add_card_arguments(evaluate)
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
