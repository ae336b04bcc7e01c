"""DINO (Caron et al. 2021): self-distillation with no labels, sized for the synthetic shapes.

A student and an EMA teacher (timm ViT backbone + DINO projection head) see multi-crop views;
the teacher's output is centred and sharpened, and the student learns to match it across
different views. Follows facebookresearch/dino's ``main_dino.py``; every crop size and blur
radius is scaled from 224 px to our image size.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from explorer.train.loop import cosine_schedule, param_groups, seed_everything

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


# ---------------------------------------------------------------------------------------------
# model


class DINOHead(nn.Module):
    """MLP -> L2-normalised bottleneck -> weight-normalised last layer (DINO's ``DINOHead``)."""

    def __init__(self, in_dim: int, out_dim: int = 1024, hidden_dim: int = 512, bottleneck_dim: int = 128,
                 nlayers: int = 3, norm_last_layer: bool = True, use_bn: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (nlayers - 1)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), *([nn.BatchNorm1d(b)] if use_bn else []), nn.GELU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(dims[-1], bottleneck_dim))
        self.apply(self._init_weights)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        g = self.last_layer.parametrizations.weight.original0
        g.data.fill_(1.0)
        # a fixed norm g=1 keeps the last layer from collapsing early (paper, Appendix)
        g.requires_grad = not norm_last_layer

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class MultiCropWrapper(nn.Module):
    """Backbone + head over a list of crops: one backbone pass per run of same-size crops."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        feats, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            feats.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(feats))


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over different views."""

    def __init__(self, out_dim: int, n_global: int = 2, student_temp: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        self.n_global, self.student_temp, self.center_momentum = n_global, student_temp, center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_out: torch.Tensor, teacher_out: torch.Tensor, teacher_temp: float,
                n_crops: int) -> torch.Tensor:
        student = (student_out / self.student_temp).log_softmax(-1).chunk(n_crops)
        teacher = ((teacher_out - self.center) / teacher_temp).softmax(-1).detach().chunk(self.n_global)
        total, pairs = 0.0, 0
        for iq, q in enumerate(teacher):
            for v, log_p in enumerate(student):
                if v == iq:  # same view: nothing to learn
                    continue
                total = total + (-q * log_p).sum(-1).mean()
                pairs += 1
        self.update_center(teacher_out)
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_out: torch.Tensor) -> None:
        batch_center = teacher_out.mean(0, keepdim=True)
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


# ---------------------------------------------------------------------------------------------
# multi-crop augmentation, vectorised over the batch (torchvision's per-image transforms are
# far too slow for a CPU budget)


@dataclass(frozen=True)
class MultiCropConfig:
    global_size: int = 64
    local_size: int = 32  # 96/224 of the global size, rounded to a multiple of the patch
    n_local: int = 6
    global_scale: tuple[float, float] = (0.4, 1.0)  # main_dino.py defaults
    local_scale: tuple[float, float] = (0.05, 0.4)
    hue: float = 0.5  # paper: 0.1; colour is the easiest shortcut between two synthetic views
    saturation: float = 0.4  # paper: 0.2
    brightness: float = 0.4
    contrast: float = 0.4
    grayscale: float = 0.2
    blur_sigma: tuple[float, float] = (0.1 * 64 / 224, 2.0 * 64 / 224)
    # not in the paper: also turn each view by a random multiple of 90 degrees. The shapes come at
    # any rotation, so orientation carries no class; it stops "where is the object" from being a
    # cue the teacher's views share
    rotate90: bool = False
    # not in the paper either: turn each view by any angle. A shape's own angle is random, yet
    # shared by two views of one image, so without this it is a cue the teacher can cluster on
    rotate_any: bool = False


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], g: torch.Generator,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), rotate90: bool = False,
                        rotate_any: bool = False) -> torch.Tensor:
    """Per-sample RandomResizedCrop + horizontal flip (+ a random turn: a multiple of 90 degrees,
    or any angle) via one ``grid_sample``."""
    b = x.shape[0]
    area = torch.empty(b).uniform_(*scale, generator=g)
    log_r = torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    w = (area * log_r.exp()).sqrt().clamp(max=1.0)  # crop width / image width
    h = (area / log_r.exp()).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, generator=g) * 2 - 1) * (1 - w)  # normalised centre keeps the crop inside
    cy = (torch.rand(b, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    if rotate90 or rotate_any:  # output -> input coordinates: scale . rotation . flip
        if rotate_any:
            angle = torch.rand(b, generator=g) * (2 * math.pi)
            cos, sin = angle.cos(), angle.sin()
        else:
            angle = torch.randint(0, 4, (b,), generator=g).float() * (math.pi / 2)
            cos, sin = angle.cos().round(), angle.sin().round()
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (b, 2, 2)
        theta[:, :, :2] = torch.diag_embed(torch.stack([w, h], -1)) @ rot @ torch.diag_embed(
            torch.stack([flip, torch.ones_like(flip)], -1))
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def colour_jitter(x: torch.Tensor, cfg: MultiCropConfig, g: torch.Generator, p: float = 0.8) -> torch.Tensor:
    """ColorJitter(brightness, contrast, saturation, hue) applied with probability p; hue rotates in YIQ."""
    b = x.shape[0]
    on = (torch.rand(b, generator=g) < p).float().view(b, 1, 1, 1)

    def factor(strength: float) -> torch.Tensor:
        return 1 + on * torch.empty(b, 1, 1, 1).uniform_(-strength, strength, generator=g)

    y = x * factor(cfg.brightness)
    gray_mean = (y * _LUMA).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = (y - gray_mean) * factor(cfg.contrast) + gray_mean
    gray = (y * _LUMA).sum(1, keepdim=True)
    y = (y - gray) * factor(cfg.saturation) + gray
    angle = on.view(b) * torch.empty(b).uniform_(-cfg.hue, cfg.hue, generator=g) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(b, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    mat = _YIQ2RGB @ rot @ _RGB2YIQ  # (b, 3, 3)
    y = torch.einsum("bij,bjhw->bihw", mat, y)
    return y.clamp(0, 1)


def random_grayscale(x: torch.Tensor, g: torch.Generator, p: float = 0.2) -> torch.Tensor:
    on = (torch.rand(x.shape[0], generator=g) < p).view(-1, 1, 1, 1)
    return torch.where(on, (x * _LUMA).sum(1, keepdim=True).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, sigma: tuple[float, float], g: torch.Generator, p: float) -> torch.Tensor:
    """Per-sample separable Gaussian blur with sigma ~ U(sigma), applied with probability p."""
    b, c, h, w = x.shape
    s = torch.empty(b).uniform_(*sigma, generator=g)
    s = torch.where(torch.rand(b, generator=g) < p, s, torch.full_like(s, 1e-3))  # 1e-3: identity
    radius = max(1, math.ceil(3 * sigma[1]))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None] / s[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b*c, K)
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    return y.view(b, c, h, w)


def solarize(x: torch.Tensor, g: torch.Generator, p: float = 0.2) -> torch.Tensor:
    on = (torch.rand(x.shape[0], generator=g) < p).view(-1, 1, 1, 1)
    return torch.where(on & (x >= 0.5), 1 - x, x)


def multi_crop(images: np.ndarray, cfg: MultiCropConfig, g: torch.Generator,
               mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> list[torch.Tensor]:
    """DINO's DataAugmentationDINO on a uint8 batch: [global1, global2, local1..localN], normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    def view(size, scale, blur_p, solarize_p):
        y = random_resized_crop(x, size, scale, g, rotate90=cfg.rotate90, rotate_any=cfg.rotate_any)
        y = random_grayscale(colour_jitter(y, cfg, g), g, cfg.grayscale)
        y = gaussian_blur(y, cfg.blur_sigma, g, blur_p)
        if solarize_p:
            y = solarize(y, g, solarize_p)
        return (y - m) / s

    crops = [view(cfg.global_size, cfg.global_scale, 1.0, 0.0), view(cfg.global_size, cfg.global_scale, 0.1, 0.2)]
    crops += [view(cfg.local_size, cfg.local_scale, 0.5, 0.0) for _ in range(cfg.n_local)]
    return crops


# ---------------------------------------------------------------------------------------------
# training


@dataclass
class DINOConfig:
    steps: int
    batch_size: int = 64
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_steps: int = 0
    weight_decay: float = 0.04  # cosine to weight_decay_end, as in main_dino.py
    weight_decay_end: float = 0.4
    momentum_teacher: float = 0.996  # cosine to 1
    teacher_temp: float = 0.07
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_steps: int = 0
    student_temp: float = 0.1
    center_momentum: float = 0.9
    out_dim: int = 1024
    hidden_dim: int = 512
    bottleneck_dim: int = 128
    use_bn_in_head: bool = False  # main_dino.py's --use_bn_in_head
    clip_grad: float | None = 3.0
    freeze_last_layer_steps: int = 0
    crops: MultiCropConfig = field(default_factory=MultiCropConfig)
    seed: int = 0
    progress: bool = True
    eval_every: int = 0


@dataclass
class DINOResult:
    teacher: nn.Module  # the teacher backbone: DINO evaluates and ships the teacher
    student: nn.Module
    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)
    wall_time_s: float = 0.0


def teacher_temperature(step: int, config: DINOConfig) -> float:
    """Linear warmup of the teacher temperature, then constant (main_dino.py)."""
    if step >= config.warmup_teacher_temp_steps:
        return config.teacher_temp
    t = step / config.warmup_teacher_temp_steps
    return config.warmup_teacher_temp + t * (config.teacher_temp - config.warmup_teacher_temp)


def train_dino(backbone: nn.Module, images: np.ndarray, config: DINOConfig,
               eval_fn: Callable[[nn.Module], float] | None = None, mean=(0.5, 0.5, 0.5),
               std=(0.5, 0.5, 0.5)) -> DINOResult:
    """Train ``backbone`` (pooled-feature output, e.g. a timm ViT with num_classes=0) with DINO on
    unlabelled uint8 images. ``eval_fn(teacher_backbone)`` is called every ``eval_every`` steps."""
    seed_everything(config.seed)
    embed_dim = backbone.num_features
    head = DINOHead(embed_dim, config.out_dim, config.hidden_dim, config.bottleneck_dim,
                    use_bn=config.use_bn_in_head)
    student = MultiCropWrapper(backbone, head)
    teacher = copy.deepcopy(student)  # same init: the paper starts both from the student's weights
    for p in teacher.parameters():
        p.requires_grad = False
    # train mode, as in main_dino.py: a BatchNorm head normalises with the batch's statistics (the
    # EMA covers parameters, not running stats); the backbone has no dropout/drop-path to switch off
    teacher.train()
    n_crops = 2 + config.crops.n_local
    loss_fn = DINOLoss(config.out_dim, 2, config.student_temp, config.center_momentum)
    groups = param_groups(student, config.weight_decay)
    opt = torch.optim.AdamW(groups, lr=config.lr)
    s_params = [p for p in student.parameters()]
    t_params = [p for p in teacher.parameters()]
    last_layer = list(student.head.last_layer.parameters())

    rng = np.random.default_rng([config.seed, 7])
    g = torch.Generator().manual_seed(config.seed)
    result = DINOResult(teacher=teacher.backbone, student=student.backbone)
    steps = range(config.steps)
    bar = tqdm(steps, desc="dino", disable=not config.progress) if tqdm is not None else steps
    start = time.perf_counter()
    student.train()
    for step in bar:
        lr = cosine_schedule(step, config.steps, config.lr, config.min_lr, config.warmup_steps)
        wd = cosine_schedule(step, config.steps, config.weight_decay, config.weight_decay_end)
        momentum = cosine_schedule(step, config.steps, config.momentum_teacher, 1.0)
        t_temp = teacher_temperature(step, config)
        for group in opt.param_groups:
            group["lr"] = lr
            if group["weight_decay"] > 0:
                group["weight_decay"] = wd

        idx = np.sort(rng.choice(len(images), config.batch_size, replace=False))
        crops = multi_crop(images[idx], config.crops, g, mean, std)
        with torch.no_grad():
            teacher_out = teacher(crops[:2])  # only the global views reach the teacher
        loss = loss_fn(student(crops), teacher_out, t_temp, n_crops)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"DINO loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_grad:
            nn.utils.clip_grad_norm_(student.parameters(), config.clip_grad)
        if step < config.freeze_last_layer_steps:
            for p in last_layer:  # the paper freezes the last layer during the first epoch
                p.grad = None
        opt.step()
        with torch.no_grad():  # EMA teacher
            torch._foreach_mul_(t_params, momentum)
            torch._foreach_add_(t_params, s_params, alpha=1 - momentum)

        result.losses.append(loss.item())
        if hasattr(bar, "set_postfix") and step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(result.losses[-20:]):.3f}", lr=f"{lr:.1e}", m=f"{momentum:.4f}")
        if eval_fn and config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            result.evals.append((step + 1, eval_fn(teacher.backbone)))
            if hasattr(bar, "write"):
                bar.write(f"step {step + 1}: loss {np.mean(result.losses[-50:]):.3f} eval {result.evals[-1][1]:.4f}")
    result.wall_time_s = time.perf_counter() - start
    if eval_fn:
        result.evals.append((config.steps, eval_fn(teacher.backbone)))
    teacher.eval()
    student.eval()
    return result
