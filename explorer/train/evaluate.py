"""``python -m explorer evaluate``: top-1/top-5 of a model on a labelled folder (``folders``), at
ImageNet scale — on any device, in batches read by worker processes, under ``torchrun`` across
processes, GPUs or machines — and, in the same pass over the images, of its converted variants:
CrossFormer after DPB → RPB, SwinV2 after CPB → table (each must score what the original does).

Each process reads its exact shard (``distributed.shard``); the counts are summed with
``all_reduce`` and rank 0 prints the table (and writes ``--json``), so the totals are the
folder's own and equal a single process's.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from explorer.core.devices import amp_dtype, autocast, describe
from explorer.core.weights import LoadedModel
from explorer.train.distributed import Group, shard
from explorer.train.folders import LabelledImages


class ImageFiles(Dataset):
    """(image tensor, class index) of each file, through the model's eval transform."""

    def __init__(self, data: LabelledImages, transform) -> None:
        self.paths, self.labels, self.transform = data.paths, data.labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def variants(loaded: LoadedModel) -> dict[str, nn.Module]:
    """The model as loaded, and its exact conversions where the architecture has one."""
    from timm.models.swin_transformer_v2 import SwinTransformerV2

    from explorer.models.crossformer import CrossFormer, dpb_to_rpb
    from explorer.models.swinv2_cpb import cpb_to_table

    models = {"as loaded": loaded.model}
    if isinstance(loaded.model, CrossFormer):
        models["DPB -> RPB"] = dpb_to_rpb(loaded.model).eval()
    if isinstance(loaded.model, SwinTransformerV2):
        models["CPB -> table"] = cpb_to_table(loaded.model).eval()
    return models


def preprocessing_line(loaded: LoadedModel, card=None) -> str:
    """The eval transform in words, and where its settings came from (``card``: one given on the
    command line)."""
    from explorer.core.checkpoints import card_beside

    beside = card_beside(loaded.weights_path) if loaded.weights_path is not None and not loaded.shown.is_demo else None
    given = [c.preprocessing_source or c.source for c in (beside, card) if c is not None and c.gives_preprocessing]
    if given:
        origin = " + ".join(given)
    elif loaded.shown.is_demo:
        origin = f"the bundled {loaded.shown.key}'s recipe"
    else:
        origin = f"timm's data config of {loaded.shown.timm_model}"
    c = loaded.data_config
    size = tuple(c["input_size"][1:])
    crop = c.get("crop_pct", 1.0)
    resize = (f"resize to {size[0]}×{size[1]} ignoring the aspect ratio" if c.get("crop_mode") == "squash"
              else f"resize the short side to {math.floor(min(size) / crop)} ({c.get('interpolation', 'bicubic')}), "
                   f"centre crop {size[0]}×{size[1]} (crop_pct {crop:g})")
    mean = ", ".join(f"{m:.4g}" for m in c["mean"])
    std = ", ".join(f"{s:.4g}" for s in c["std"])
    return f"{resize}; normalise mean ({mean}), std ({std}) — from {origin}"


@dataclass
class Row:
    variant: str
    top1: float  # percent
    top5: float
    images: int
    images_per_s: float  # the variant's own forward passes (all processes)


@dataclass
class Report:
    model: str
    weights: str
    data: str
    layout: str
    mapping: str
    preprocessing: str
    device: str
    processes: int
    amp: str | None
    batch_size: int
    images: int
    wall_s: float
    images_per_s: float  # the whole run: reading, transforms and every variant
    rows: list[Row] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{'variant':14s} {'top-1':>8s} {'top-5':>8s} {'images':>8s} {'images/s':>9s}"]
        lines += [f"{r.variant:14s} {r.top1:7.2f}% {r.top5:7.2f}% {r.images:8d} {r.images_per_s:9.1f}" for r in self.rows]
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False), encoding="utf-8")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def top_k_hits(models: list[nn.Module], loader: DataLoader, device: torch.device, dtype: torch.dtype | None,
               k: int, bar=None, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per model, (top-1 hits, top-k hits) over ``loader`` (int64 on ``device``: MPS has no
    float64) and the seconds spent in its forward passes."""
    counts = torch.zeros(len(models), 2, dtype=torch.int64, device=device)
    seconds = torch.zeros(len(models), dtype=torch.float32)
    with torch.inference_mode():
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            for i, model in enumerate(models):
                _sync(device)
                tic = time.perf_counter()
                with autocast(device, dtype):
                    top = model(images).topk(k, dim=-1).indices
                _sync(device)
                seconds[i] += time.perf_counter() - tic
                counts[i, 0] += (top[:, 0] == labels).sum()
                counts[i, 1] += (top == labels[:, None]).any(-1).sum()
            if bar is not None:
                bar.update(len(labels) * world)  # this shard's progress stands for every process's
    return counts, seconds


def shard_loader(dataset: Dataset, group: Group, batch_size: int, workers: int) -> DataLoader:
    """This process's exact share of ``dataset``, in order."""
    return DataLoader(Subset(dataset, shard(len(dataset), group)), batch_size=batch_size, num_workers=workers,
                      shuffle=False, pin_memory=group.device.type == "cuda")


def evaluate(loaded: LoadedModel, data: LabelledImages, group: Group, batch_size: int = 64, workers: int = 4,
             amp: str | None = None, progress: bool = True, data_dir: str = "", card=None) -> Report:
    """Every variant of ``loaded`` on this process's shard of ``data``; counts summed over the
    group. The model must already be on ``group.device``."""
    from timm.data import create_transform

    models = variants(loaded)
    loader = shard_loader(ImageFiles(data, create_transform(**loaded.data_config)), group, batch_size, workers)
    k = min(5, int(getattr(loaded.model, "num_classes", 5)) or 5)
    bar = None
    if progress and group.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(data), unit="img", desc=loaded.shown.key, file=sys.stderr, dynamic_ncols=True)
    start = time.perf_counter()
    counts, seconds = top_k_hits(list(models.values()), loader, group.device, amp_dtype(amp), k, bar, group.world)
    wall = time.perf_counter() - start
    if bar is not None:
        bar.close()
    group.all_reduce_sum(counts)
    # each process timed its own forwards: the group's rate is the sum of theirs
    shard_size = len(loader.dataset)
    rates = torch.tensor([shard_size / max(float(s), 1e-9) for s in seconds], device=group.device)
    group.all_reduce_sum(rates)
    counts, rates, total = counts.cpu(), rates.cpu(), len(data)
    report = Report(model=loaded.shown.key, weights=str(loaded.weights_path or loaded.source), data=str(data_dir),
                    layout=data.layout, mapping=data.mapping, preprocessing=preprocessing_line(loaded, card),
                    device=describe(group.device), processes=group.world, amp=amp, batch_size=batch_size,
                    images=total, wall_s=round(wall, 3), images_per_s=round(total / max(wall, 1e-9), 2))
    for i, name in enumerate(models):
        report.rows.append(Row(name, round(100 * int(counts[i, 0]) / max(total, 1), 4),
                               round(100 * int(counts[i, 1]) / max(total, 1), 4), total, round(float(rates[i]), 2)))
    return report
