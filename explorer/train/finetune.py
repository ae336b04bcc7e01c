"""``python -m explorer train finetune``: fine-tune a model on the user's folder of labelled
images — the source notes' exercise (``model.heads = nn.Linear(768, 10)`` on CIFAR-10) — and
write it into ``checkpoints/`` with its card, so the app opens it with its class names at once.

What it does is timm's fine-tuning recipe, with timm's parts: the classifier replaced for the
folder's classes (``reset_classifier``), training augmentation from
``create_transform(is_training=True)``, AdamW with layer-wise lr decay
(``create_optimizer_v2(layer_decay=…)``), warmup then cosine per step (``CosineLRScheduler``),
label smoothing 0.1. Alone or under ``torchrun`` (DDP: gloo on the CPU, nccl on CUDA); a resumable
checkpoint after every epoch (``<out>.resume.pt``, read back with ``weights_only``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from explorer.core.checkpoints import check_user_model_name, save_user_model
from explorer.core.devices import add_device_argument, amp_dtype, autocast, describe
from explorer.core.errors import UserFacingError
from explorer.train import distributed
from explorer.train.evaluate import ImageFiles, shard_loader, top_k_hits
from explorer.train.folders import LabelledImages, class_folders, read_folder


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explorer train finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="what to start from: a model key or timm/torchvision name")
    p.add_argument("--weights", help="its weights file (default: checkpoints/, the hub cache)")
    p.add_argument("--data", required=True, help="training images, one folder per class")
    p.add_argument("--val", help="validation images, the same class folders (or a subset)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    p.add_argument("--min-lr", type=float, default=1e-6)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--layer-decay", type=float, help="layer-wise lr decay, e.g. 0.75 (default: none)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--workers", type=int, default=distributed.default_workers(), help="data-loading processes")
    add_device_argument(p, amp=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the fine-tuned weights, e.g. checkpoints/my_vit.safetensors")
    p.add_argument("--resume", action="store_true", help="go on from <out>.resume.pt")
    p.add_argument("--from-scratch", action="store_true", help="allow random initial weights (no pretrained file)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _loader(data: LabelledImages, transform, args, group: distributed.Group, epoch_seed: int):
    dataset = ImageFiles(data, transform)
    if group.distributed:
        sampler = DistributedSampler(dataset, num_replicas=group.world, rank=group.rank, shuffle=True,
                                     seed=epoch_seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(epoch_seed))
    return DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers, drop_last=False,
                      pin_memory=group.device.type == "cuda"), sampler


def _start(args, group):
    """The model to fine-tune (its classifier replaced), its data and preprocessing."""
    from explorer.core.weights import load_model

    loaded = load_model(args.model, weights_file=args.weights, allow_download=False, device=torch.device("cpu"))
    if loaded.shown.key != loaded.entry.key and args.from_scratch and not args.weights:
        import tempfile

        with tempfile.TemporaryDirectory() as nothing:  # no stand-in demo: the architecture itself, random
            loaded = load_model(args.model, allow_download=False, checkpoint_dir=Path(nothing), device=torch.device("cpu"))
    if loaded.shown.key != loaded.entry.key:
        raise UserFacingError(f"No weights for {args.model} on this machine (the app would show "
                              f"{loaded.shown.key} instead): `python -m explorer fetch {args.model}` first, "
                              "or give --weights (or --from-scratch).",
                              f"本机没有 {args.model} 的权重（应用会改为显示 {loaded.shown.key}）：请先运行 "
                              f"`python -m explorer fetch {args.model}`，或给出 --weights（或 --from-scratch）。")
    if loaded.source == "random" and not args.from_scratch:
        raise UserFacingError(f"{args.model} has no pretrained weights here: fine-tuning would start from random "
                              "ones. Give --weights, fetch them, or say --from-scratch.",
                              f"这里没有 {args.model} 的预训练权重：微调会从随机权重开始。请给出 --weights、先下载，"
                              "或注明 --from-scratch。")
    classes = class_folders(args.data)
    if len(classes) < 2:
        raise UserFacingError(f"--data {args.data}: fine-tuning reads one folder of images per class, at least two.",
                              f"--data {args.data}：微调需要每个类别一个图片文件夹，至少两个。")
    train = read_folder(args.data, classes, len(classes), "the training folder")
    val = read_folder(args.val, classes, len(classes), "the training folder's classes") if args.val else None
    model = loaded.model
    model.reset_classifier(len(classes))  # as the notes do: model.heads = nn.Linear(768, 10)
    return loaded, model.to(group.device), classes, train, val


def run(argv: list[str]) -> int:
    from timm.data import create_transform
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    args = parser().parse_args(argv)
    out = Path(args.out)
    check_user_model_name(out.stem)
    if out.suffix != ".safetensors":
        raise UserFacingError("--out: a .safetensors file (its card is written beside it).",
                              "--out：应为 .safetensors 文件（它的 card 写在旁边）。")
    from explorer.core.zoo import name_taken

    if name_taken(out.stem):  # in checkpoints/ it would pass for that model's own weights
        raise UserFacingError(f"--out {out.name}: {out.stem} already names a model (of the zoo, timm or torchvision); "
                              "pick another name.", f"--out {out.name}：{out.stem} 已是某个模型（模型库、timm 或 "
                              "torchvision）的名字；请换一个名字。")
    group = distributed.join(args.device)
    try:
        if group.is_main:
            out.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(args.seed)
        loaded, model, classes, train, val = _start(args, group)
        config = loaded.data_config
        train_transform = create_transform(**config, is_training=True)
        steps_per_epoch = math.ceil(len(train) / (args.batch_size * group.world))
        total = args.epochs * steps_per_epoch
        optimizer = create_optimizer_v2(model, opt="adamw", lr=args.lr, weight_decay=args.weight_decay,
                                        layer_decay=args.layer_decay)
        scheduler = CosineLRScheduler(optimizer, t_initial=total, lr_min=args.min_lr, warmup_lr_init=args.lr * 0.01,
                                      warmup_t=round(args.warmup_epochs * steps_per_epoch), t_in_epochs=False)
        dtype = amp_dtype(args.amp)
        scaler = torch.amp.GradScaler(group.device.type, enabled=dtype == torch.float16 and group.device.type == "cuda")
        net = model
        if group.distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[group.device.index]
                                                      if group.device.type == "cuda" else None)
        resume_path = out.with_suffix(".resume.pt")
        first_epoch, history = 0, []
        if args.resume:
            first_epoch, history = _resume(resume_path, model, optimizer, scaler, classes, args, group)
        criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        say = print if group.is_main else (lambda *a, **k: None)
        say(f"fine-tuning {loaded.shown.key} ({loaded.banner.en if loaded.banner else loaded.source}) for "
            f"{len(classes)} classes ({', '.join(classes[:10])}{' …' if len(classes) > 10 else ''}): "
            f"{len(train)} training images{f', {len(val)} validation' if val else ''}; {args.epochs} epochs × "
            f"{steps_per_epoch} steps on {describe(group.device)} × {group.world} process(es)")
        start = time.perf_counter()
        step = first_epoch * steps_per_epoch
        scheduler.step_update(step)
        for epoch in range(first_epoch, args.epochs):
            loader, sampler = _loader(train, train_transform, args, group, args.seed + epoch)
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            net.train()
            sums = torch.zeros(3, device=group.device)  # loss · n, hits, n
            first_lr = max(g["lr"] for g in optimizer.param_groups)  # the peak group (layer decay lowers the others)
            bar = _bar(args, group, steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}")
            for images, labels in loader:
                images = images.to(group.device, non_blocking=True)
                labels = labels.to(group.device, non_blocking=True)
                with autocast(group.device, dtype):
                    logits = net(images)
                    loss = criterion(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                scheduler.step_update(step)
                sums += torch.stack([loss.detach() * len(labels), (logits.argmax(-1) == labels).sum().float(),
                                     torch.tensor(float(len(labels)), device=group.device)])
                if bar is not None:
                    bar.set_postfix(loss=f"{float(sums[0] / sums[2]):.3f}", acc=f"{float(sums[1] / sums[2]):.1%}",
                                    lr=f"{max(g['lr'] for g in optimizer.param_groups):.2e}")
                    bar.update(1)
            if bar is not None:
                bar.close()
            group.all_reduce_sum(sums)
            record = {"epoch": epoch + 1, "lr_start": float(f"{first_lr:.4g}"), "train_loss": round(float(sums[0] / sums[2]), 4),
                      "train_top1": round(100 * float(sums[1] / sums[2]), 2)}
            if val is not None:
                record.update(_validate(model, val, config, args, group))
            history.append(record)
            say("  " + ", ".join(f"{k} {v}" for k, v in record.items()))
            if group.is_main:
                _save_resume(resume_path, model, optimizer, scaler, classes, epoch + 1, history, args.amp)
            group.barrier()
        wall = time.perf_counter() - start
        if group.is_main:
            extra = {"finetune": {"from": loaded.shown.key, "weights": str(loaded.weights_path or loaded.source),
                                  "data": str(args.data), "val": args.val, "epochs": args.epochs, "lr": args.lr,
                                  "layer_decay": args.layer_decay, "batch_size": args.batch_size, "amp": args.amp,
                                  "device": describe(group.device), "processes": group.world,
                                  "wall_time_s": round(wall, 1), "history": history}}
            kwargs = {**loaded.shown.model_kwargs, "num_classes": len(classes)}  # rebuilt with the new head
            save_user_model(out, model.state_dict(), loaded.shown.timm_model, kwargs, len(classes), config, classes, extra)
            listed = out.parent.resolve() == _checkpoints().resolve()
            say(f"wrote {out} and {out.with_suffix('.json').name} ({len(classes)} classes) in {wall:.0f} s; "
                + (f"the app lists it; commands open it with --model {out.stem}" if listed else
                   "copy both files into checkpoints/ for the app to list it"))
    finally:
        distributed.leave(group)
    return 0


def _checkpoints() -> Path:
    from explorer.core.zoo import CHECKPOINT_DIR

    return CHECKPOINT_DIR


def _bar(args, group, total: int, desc: str):
    if args.no_progress or not group.is_main:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc=desc, file=sys.stderr, dynamic_ncols=True)


def _validate(model: nn.Module, val: LabelledImages, config: dict, args, group) -> dict:
    from timm.data import create_transform

    model.eval()
    loader = shard_loader(ImageFiles(val, create_transform(**config)), group, args.batch_size, args.workers)
    counts, _ = top_k_hits([model], loader, group.device, amp_dtype(args.amp), min(5, model.num_classes))
    group.all_reduce_sum(counts)
    scores = {"val_top1": round(100 * int(counts[0, 0]) / len(val), 2)}
    if model.num_classes > 5:
        scores["val_top5"] = round(100 * int(counts[0, 1]) / len(val), 2)
    return scores


def _save_resume(path: Path, model, optimizer, scaler, classes, epochs_done: int, history, amp) -> None:
    part = path.with_name(path.name + ".part")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "classes": list(classes), "epochs_done": epochs_done, "history": history, "amp": amp}, part)
    part.replace(path)


def _resume(path: Path, model, optimizer, scaler, classes, args, group) -> tuple[int, list]:
    if not path.is_file():
        raise UserFacingError(f"--resume: {path} is not there (it is written after each epoch).",
                              f"--resume：{path} 不存在（它在每个 epoch 之后写入）。")
    state = torch.load(path, map_location=group.device, weights_only=True)
    if tuple(state["classes"]) != tuple(classes):
        raise UserFacingError(f"--resume: {path.name} was trained on other classes ({', '.join(state['classes'][:5])} …).",
                              f"--resume：{path.name} 是在其他类别上训练的（{', '.join(state['classes'][:5])} …）。")
    if state.get("amp") != args.amp:
        raise UserFacingError(f"--resume: {path.name} was trained with --amp {state.get('amp')}: resume with the same.",
                              f"--resume：{path.name} 训练时使用 --amp {state.get('amp')}：请用相同的设置继续。")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    # the schedule is not restored: it is rebuilt from this run's arguments and follows the step
    # count, so a resume with more epochs goes on along the new cosine instead of the old one's end
    return int(state["epochs_done"]), list(state["history"])
