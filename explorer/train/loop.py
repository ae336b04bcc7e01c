"""A small, generic supervised training loop: AdamW, warmup + cosine, label smoothing, light aug.

The model is any ``nn.Module`` mapping images to logits and the data is any batch sampler (a
callable ``step -> (images, labels)``), so later recipes (CrossFormer, MAE fine-tunes, NaViT
packs with mixed sizes) reuse it unchanged.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a timm dependency, this is belt and braces
    tqdm = None


class BatchSampler(Protocol):
    """Anything that returns the ``step``-th training batch as (images (B,3,H,W) float, labels (B,))."""

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class TrainConfig:
    steps: int
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 0
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    grad_clip: float | None = 1.0
    seed: int = 0
    progress: bool = True
    eval_every: int = 0  # 0: only evaluate at the end (if an eval_fn is given)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, metric)
    wall_time_s: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_schedule(step: int, total: int, base: float, final: float, warmup: int = 0, start: float = 0.0) -> float:
    """Linear warmup from ``start`` to ``base`` over ``warmup`` steps, then cosine to ``final``."""
    if step < warmup:
        return start + (base - start) * step / max(warmup, 1)
    t = (step - warmup) / max(total - warmup, 1)
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * min(t, 1.0)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms, tokens and position embeddings (as timm/DeiT/DINO do)."""
    skip = set(getattr(model, "no_weight_decay", lambda: set())())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name in skip or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ---------------------------------------------------------------------------------------------
# data


def to_tensor(images: np.ndarray, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> torch.Tensor:
    """uint8 (B,H,W,3) -> normalised float (B,3,H,W)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


def light_augment(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.08) -> torch.Tensor:
    """Random h/v flips and a small random translation (reflect-padded), per sample."""
    b, _, h, w = x.shape
    flip_h = torch.rand(b, generator=generator) < 0.5
    flip_v = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip_h.view(b, 1, 1, 1), x.flip(3), x)
    x = torch.where(flip_v.view(b, 1, 1, 1), x.flip(2), x)
    ph, pw = round(max_shift * h), round(max_shift * w)
    if ph == 0 and pw == 0:
        return x
    padded = F.pad(x, (pw, pw, ph, ph), mode="reflect")
    dy = torch.randint(0, 2 * ph + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pw + 1, (b,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


class ArraySampler:
    """Shuffled epochs over an in-memory uint8 image array, normalised, optionally augmented.

    Deterministic for a given seed: batch ``step`` is always the same images with the same aug.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, *,
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), augment: bool = True, seed: int = 0):
        self.images, self.labels = images, torch.as_tensor(labels, dtype=torch.long)
        self.batch_size, self.mean, self.std, self.augment, self.seed = batch_size, mean, std, augment, seed
        self.per_epoch = max(len(images) // batch_size, 1)
        self._order: tuple[int, np.ndarray] | None = None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.images)))
        return self._order[1]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(step, self.per_epoch)
        idx = np.sort(self._epoch_order(epoch)[i * self.batch_size:(i + 1) * self.batch_size])
        x = to_tensor(self.images[idx], self.mean, self.std)
        if self.augment:
            x = light_augment(x, torch.Generator().manual_seed(self.seed * 1_000_003 + step))
        return x, self.labels[idx]


class MixedSampler:
    """Each step draws its whole batch from one of several samplers, chosen at random with
    step-dependent weights: a curriculum (easy data first) or a mix of sizes/aspect ratios."""

    def __init__(self, samplers: list[BatchSampler], weights: Callable[[int], list[float]], seed: int = 0):
        self.samplers, self.weights, self.seed = samplers, weights, seed

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = np.asarray(self.weights(step), dtype=float)
        i = np.random.default_rng([self.seed, step]).choice(len(self.samplers), p=w / w.sum())
        return self.samplers[i](step)


def linear_ramp(step: int, start: int, end: int) -> float:
    """0 before ``start``, 1 after ``end``, linear in between."""
    return float(np.clip((step - start) / max(end - start, 1), 0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# train / evaluate


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            batch_size: int = 256) -> torch.Tensor:
    """Logits (N,K) of an eval-mode pass over uint8 (N,H,W,3) images."""
    was_training = model.training
    model.eval()
    out = [model(to_tensor(images[i:i + batch_size], mean, std)) for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out).float()


def evaluate_top1(model: nn.Module, images: np.ndarray, labels: np.ndarray, **kwargs) -> float:
    """Top-1 accuracy on held-out uint8 images."""
    logits = predict(model, images, **kwargs)
    return float((logits.argmax(1) == torch.as_tensor(labels)).float().mean())


def train(model: nn.Module, sampler: BatchSampler, config: TrainConfig,
          eval_fn: Callable[[nn.Module], float] | None = None,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> TrainResult:
    """Train ``model`` for ``config.steps`` steps on batches from ``sampler``.

    ``loss_fn(logits, labels)`` defaults to cross-entropy with ``config.label_smoothing``;
    ``eval_fn(model) -> metric`` runs every ``eval_every`` steps and at the end.
    """
    seed_everything(config.seed)
    loss_fn = loss_fn or (lambda logits, y: F.cross_entropy(logits, y, label_smoothing=config.label_smoothing))
    opt = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    result = TrainResult()
    steps = range(config.steps)
    bar = tqdm(steps, desc="train", disable=not config.progress) if tqdm is not None else steps
    start = time.perf_counter()
    model.train()
    for step in bar:
        lr = cosine_schedule(step, config.steps, config.lr, config.min_lr, config.warmup_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = sampler(step)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        result.losses.append(loss.item())
        if hasattr(bar, "set_postfix") and step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(result.losses[-20:]):.3f}", lr=f"{lr:.2e}")
        if eval_fn and config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            result.evals.append((step + 1, eval_fn(model)))
            model.train()
            if hasattr(bar, "write"):
                bar.write(f"step {step + 1}: loss {np.mean(result.losses[-50:]):.3f}, eval {result.evals[-1][1]}")
    result.wall_time_s = time.perf_counter() - start
    if eval_fn:
        result.evals.append((config.steps, eval_fn(model)))
    model.eval()
    return result
