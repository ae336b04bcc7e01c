"""Recipes for the bundled demo models: one small timm model per family, trained on the synthetic
shapes on a 2-core CPU, measured, and written to ``checkpoints/demo_{family}.safetensors`` with a
JSON model card the app's zoo reads (``python -m explorer train FAMILY``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import timm
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import explorer.models  # noqa: F401  (registers CrossFormer with timm)
from explorer.models.crossformer import dpb_to_rpb
from explorer.train import data, metrics
from explorer.train.dino import DINOConfig, MultiCropConfig, train_dino
from explorer.train.loop import (ArraySampler, TrainConfig, evaluate_top1, predict, seed_everything,
                                 to_tensor, train)
from explorer.train.navit import PackedSampler, SizedSets, accuracy_by_aspect, aspect_label

MEAN = STD = (0.5, 0.5, 0.5)
# Held-out data never overlaps training data: different generator seeds.
HELDOUT_SEED_OFFSET = 100_000  # test images (top-1, attention shares, k-NN queries)
BANK_SEED_OFFSET = 200_000  # the labelled k-NN bank for DINO (labels used only for evaluation)
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Recipe:
    family: str
    name: str
    name_zh: str
    timm_model: str
    model_kwargs: dict  # the architecture; written to the card
    train_kwargs: dict = field(default_factory=dict)  # training-only (e.g. drop_path_rate); not in the card
    num_classes: int = data.NUM_CLASSES
    image_size: int = 64
    data_config: dict = field(default_factory=dict)  # ShapesConfig overrides; written to the card
    train_images: int = 30_000
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 60
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    heldout_images: int = 2000
    attention_images: int = 200  # images for the attention-in-object shares (ViTs only)
    dino: DINOConfig | None = None  # set for self-supervised recipes
    knn_bank_images: int = 4000
    eval_every: int = 250  # progress print on 500 held-out images; 0: off
    # NaViT: train and test at each of these (H, W) sizes (train_images / heldout_images are
    # split evenly between them), dropping tokens at a per-image rate drawn from token_dropout
    sizes: tuple[tuple[int, int], ...] = ()
    token_dropout: tuple[float, float] = (0.0, 0.0)
    mask_ratio: float | None = None  # set for masked-autoencoder recipes (the paper's loss)


_VIT = dict(img_size=64, patch_size=8, embed_dim=96, depth=6, num_heads=3, dynamic_img_size=True)

RECIPES: dict[str, Recipe] = {
    "vit": Recipe(
        family="vit",
        name="Demo ViT — synthetic shapes, bundled",
        name_zh="演示 ViT — 合成形状数据集（内置）",
        timm_model="vit_tiny_patch16_224",
        model_kwargs=_VIT,
    ),
    "swin": Recipe(
        family="swin",
        name="Demo Swin — synthetic shapes, bundled",
        name_zh="演示 Swin — 合成形状数据集（内置）",
        timm_model="swin_tiny_patch4_window7_224",
        # 64 px / patch 8 -> 8x8 tokens with window 4: the very setting of the Swin paper's
        # Figure 2 (2x2 windows, then a cyclic shift by 2 and the masked shifted windows); the 4x4
        # stage is one window (timm drops the shift there, as the official code does)
        model_kwargs=dict(img_size=64, patch_size=8, window_size=4, embed_dim=64, depths=(2, 4),
                          num_heads=(2, 4)),
        train_kwargs=dict(drop_path_rate=0.0),  # timm's Swin default of 0.1 slows a short run down
        steps=3000,  # ~6 steps/s: 1500 steps reached only ~72% half-way, behind the ViT
        eval_every=500,
    ),
    "twins": Recipe(
        family="twins",
        name="Demo Twins-SVT — synthetic shapes, bundled",
        name_zh="演示 Twins-SVT — 合成形状数据集（内置）",
        timm_model="twins_svt_small",
        # stages at 16x16, 8x8, 4x4 tokens: 4x4 local windows (16, 4, 1 of them) alternate with global
        # attention to keys sub-sampled by sr (16x16 -> 4x4, 8x8 -> 4x4, 4x4 -> 4x4)
        model_kwargs=dict(img_size=64, patch_size=4, embed_dims=(48, 96, 144), num_heads=(2, 4, 6),
                          mlp_ratios=(4, 4, 4), depths=(2, 2, 2), wss=(4, 4, 4), sr_ratios=(4, 2, 1)),
        steps=600,  # the depthwise-conv position encoding (PEG) makes Twins learn fast: 98.6% at step 500
        eval_every=150,
    ),
    "crossformer": Recipe(
        family="crossformer",
        name="Demo CrossFormer — synthetic shapes, bundled",
        name_zh="演示 CrossFormer — 合成形状数据集（内置）",
        timm_model="crossformer_tiny",  # registered with timm by explorer.models
        # cross-scale embedding with 8 and 16 px kernels at stride 8 -> 8x8 tokens; groups of 4x4:
        # SDA takes 4 adjacent squares, LDA 4 groups of tokens 2 apart (crs_interval); the 4x4 stage
        # is one group. Dynamic position bias (DPB) throughout, exactly convertible to RPB tables.
        model_kwargs=dict(img_size=64, patch_size=(8, 16), embed_dim=64, depths=(2, 4), num_heads=(2, 4),
                          group_size=(4, 4), crs_interval=(2, 1), merge_size=((2, 4),)),
        train_kwargs=dict(drop_path_rate=0.0),
        steps=3000,  # as the Swin demo; measured 97% at step 1000 (the cross-scale embedding's convs
        eval_every=500,  # learn fast), so fewer steps would do: kept for the margin
    ),
    "navit": Recipe(
        family="navit",
        name="Demo NaViT — synthetic shapes at any aspect ratio, bundled",
        name_zh="演示 NaViT — 任意宽高比的合成形状（内置）",
        timm_model="navit",  # explorer.models.navit, registered with timm
        # patch 8, the demo ViT's depth at width 64 (at 96 a 2-core step took 0.38 s: over the
        # 15-minute budget); position tables for grids up to 16x16 (128 px a side); 192-token
        # sequences hold 2-4 of the training images (attention cost grows with the length)
        model_kwargs=dict(patch_size=8, max_grid=16, embed_dim=64, depth=6, num_heads=2, max_seq_len=192),
        # each shape at 7 aspect ratios from 1:3 to 3:1, 54-75 tokens an image
        sizes=((40, 120), (48, 96), (48, 72), (64, 64), (72, 48), (96, 48), (120, 40)),
        token_dropout=(0.0, 0.3),
        train_images=28_000,
        heldout_images=2800,
        batch_size=96,
        # measured: 2400 steps with token dropout up to 0.4 gave 85.5% at 1:3 (89.2% mean); ~4 steps/s
        steps=3200,
        eval_every=800,
    ),
    "dino": Recipe(
        family="dino",
        name="Demo DINO ViT — self-supervised on synthetic shapes, bundled",
        name_zh="演示 DINO ViT — 合成形状数据集上的自监督训练（内置）",
        timm_model="vit_tiny_patch16_224",
        # patch 8 at 64 px as the demo ViT, narrower (dim 64, 4 heads), depth 6: ~1.9 DINO steps/s
        # on 2 cores (dynamic_img_size: local crops are 32 px)
        model_kwargs=dict(img_size=64, patch_size=8, embed_dim=64, depth=6, num_heads=4, dynamic_img_size=True),
        num_classes=0,
        # DINO learns what the views of one image share. On the cluttered scenes that was the
        # background, the object's size, brightness and angle: k-NN stayed at 0.12-0.22 in every
        # run (random init 0.13-0.18; details in the README). Here the shape is all the views
        # share: one flat background, no clutter, objects of one size (radius 26-30% of the
        # side) and well lighter than the background; every view is turned by a random angle.
        # Measured: a 900-step schedule reached 0.60 (random init 0.24); a 4200-step one 0.67 at
        # step 500 and 0.84 at step 1000, but would have taken ~30 minutes: 2000 steps.
        # Depth: with 4 blocks (2.7 steps/s, 780 s) k-NN reached 0.88 but the last block's CLS
        # attention sat on the flat background (6% on the object, 17% of the image; blocks 1-2
        # ~55%), and four register tokens only lifted it to 17%. With 6 blocks: k-NN 0.91 and
        # 48% of the last block's CLS attention on the object, in 1077 s.
        data_config=dict(backgrounds=("flat",), clutter=(0, 1), scale=(0.26, 0.30), min_luma_gap=120.0),
        dino=DINOConfig(steps=2000, batch_size=64, lr=1e-3, warmup_steps=100, momentum_teacher=0.99,
                        # a sharp teacher over few prototypes: at 0.04 over 1024 the teacher went
                        # uniform (collapse) within 100 steps on these images
                        teacher_temp=0.02, warmup_teacher_temp=0.02, out_dim=256,
                        freeze_last_layer_steps=100,
                        use_bn_in_head=True,  # main_dino.py's --use_bn_in_head
                        # colour is the easiest shortcut between two views of a synthetic image:
                        # mostly grey views, hue turned anywhere; crops large enough to hold the object
                        crops=MultiCropConfig(n_local=4, global_scale=(0.6, 1.0), local_scale=(0.3, 0.6),
                                              saturation=0.8, grayscale=0.8, rotate_any=True),
                        eval_every=500),
    ),
    "mae": Recipe(
        family="mae",
        name="Demo MAE — masked autoencoder on synthetic shapes, bundled",
        name_zh="演示 MAE — 合成形状数据集上的掩码自编码器（内置）",
        timm_model="mae_vit",  # explorer.models.mae, registered with timm
        # 8x8 patches of 8 px; the encoder sees the 16 visible ones at ratio 0.75, the narrow
        # decoder all 64 (the paper's asymmetric design); plain-pixel targets as the official
        # mae_visualize checkpoints
        model_kwargs=dict(img_size=64, patch_size=8, embed_dim=96, depth=4, num_heads=3, decoder_embed_dim=64,
                          decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0, norm_pix_loss=False),
        num_classes=0,
        mask_ratio=0.75,
        steps=3500,  # measured 0.19 s a step of 128 images on 2 cores: ~11 minutes
        lr=1.5e-3,
        warmup_steps=200,
        label_smoothing=0.0,
        eval_every=700,
    ),
}


# ---------------------------------------------------------------------------------------------


def _generate(recipe: Recipe, n: int, seed: int) -> data.ShapesData:
    return data.generate(n, seed, recipe.image_size, config=data.ShapesConfig(**recipe.data_config))


def build_model(recipe: Recipe) -> nn.Module:
    return timm.create_model(recipe.timm_model, pretrained=False, num_classes=recipe.num_classes,
                             **recipe.model_kwargs, **recipe.train_kwargs)


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, timm {timm.__version__}")


def quick_recipe(recipe: Recipe) -> Recipe:
    """A smoke-test version: a handful of steps on a handful of images."""
    small = dict(train_images=64, steps=3, batch_size=8, warmup_steps=1, heldout_images=16,
                 attention_images=8, knn_bank_images=32)
    if recipe.dino is not None:
        crops = replace(recipe.dino.crops, n_local=2)
        small["dino"] = replace(recipe.dino, steps=3, batch_size=8, warmup_steps=1, warmup_teacher_temp_steps=1,
                                freeze_last_layer_steps=1, crops=crops, progress=False, eval_every=0)
    return replace(recipe, **small)


def save_checkpoint(model: nn.Module, path: Path) -> int:
    """Write the state dict as float32 safetensors; returns the file size in bytes."""
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return path.stat().st_size


def load_demo(family: str, out_dir: str | Path = "checkpoints") -> tuple[nn.Module, dict]:
    """Rebuild a demo model from its card and weights (strict), in eval mode."""
    out_dir = Path(out_dir)
    card = json.loads((out_dir / f"demo_{family}.json").read_text(encoding="utf-8"))
    model = timm.create_model(card["timm_model"], pretrained=False, num_classes=card["num_classes"],
                              **card["model_kwargs"])
    model.load_state_dict(load_file(str(out_dir / card["weights_file"])), strict=True)
    return model.eval(), card


def _supervised(recipe: Recipe, model: nn.Module, train_set: data.ShapesData, seed: int, quick: bool):
    config = TrainConfig(steps=recipe.steps, lr=recipe.lr, warmup_steps=recipe.warmup_steps,
                         weight_decay=recipe.weight_decay, label_smoothing=recipe.label_smoothing, seed=seed,
                         progress=not quick, eval_every=0 if quick else recipe.eval_every)
    sampler = ArraySampler(train_set.images, train_set.labels, recipe.batch_size, mean=MEAN, std=STD, seed=seed)
    probe = _generate(recipe, 500, seed + HELDOUT_SEED_OFFSET + 1)
    return train(model, sampler, config, eval_fn=None if quick else
                 lambda m: round(evaluate_top1(m, probe.images, probe.labels, mean=MEAN, std=STD), 4))


def _dpb_rpb_check(model: nn.Module, heldout: data.ShapesData) -> dict:
    """CrossFormer's DPB turned into fixed RPB tables must classify exactly as before."""
    dpb = predict(model, heldout.images, mean=MEAN, std=STD)
    rpb = predict(dpb_to_rpb(model), heldout.images, mean=MEAN, std=STD)
    labels = torch.as_tensor(heldout.labels)
    return {"heldout_top1_after_dpb_to_rpb": metrics.top1(rpb, labels),
            "dpb_vs_rpb_max_abs_logit_diff": float((dpb - rpb).abs().max()),
            "dpb_vs_rpb_same_predictions": bool(torch.equal(dpb.argmax(1), rpb.argmax(1)))}


def _knn_eval(recipe: Recipe, seed: int):
    """A closure: k-NN top-1 of a backbone's frozen features (bank and queries are held out)."""
    bank = _generate(recipe, recipe.knn_bank_images, seed + BANK_SEED_OFFSET)
    test = _generate(recipe, recipe.heldout_images, seed + HELDOUT_SEED_OFFSET)

    def evaluate(backbone: nn.Module) -> float:
        train_f = metrics.features(backbone, bank.images, mean=MEAN, std=STD)
        test_f = metrics.features(backbone, test.images, mean=MEAN, std=STD)
        return metrics.knn_accuracy(train_f, bank.labels, test_f, test.labels, k=20, temperature=0.07)

    return evaluate


def _train_navit(recipe: Recipe, seed: int, quick: bool):
    """NaViT on packed batches of every size; accuracy measured per aspect ratio, unpacked vs
    packed checked equal. Returns (model, wall time, data time, metrics)."""
    config = data.ShapesConfig(**recipe.data_config)
    t0 = time.perf_counter()
    per_size = max(recipe.train_images // len(recipe.sizes), 1)
    train_sets = SizedSets.generate(recipe.sizes, per_size, seed, config)
    data_time = time.perf_counter() - t0
    heldout = SizedSets.generate(recipe.sizes, max(recipe.heldout_images // len(recipe.sizes), 1),
                                 seed + HELDOUT_SEED_OFFSET, config)
    probe = SizedSets({k: v.subset(slice(0, 70)) for k, v in heldout.sets.items()})
    seed_everything(seed)
    model = build_model(recipe)
    sampler = PackedSampler(model, train_sets, recipe.batch_size, recipe.token_dropout, seed, MEAN, STD)
    train_config = TrainConfig(steps=recipe.steps, lr=recipe.lr, warmup_steps=recipe.warmup_steps,
                               weight_decay=recipe.weight_decay, label_smoothing=recipe.label_smoothing,
                               seed=seed, progress=not quick, eval_every=0 if quick else recipe.eval_every)

    def probe_accuracy(m: nn.Module) -> float:
        return round(min(accuracy_by_aspect(m, probe, mean=MEAN, std=STD).values()), 4)

    result = train(model, sampler, train_config, eval_fn=None if quick else probe_accuracy)
    by_aspect = accuracy_by_aspect(model, heldout, mean=MEAN, std=STD)
    measured = {"heldout_top1_by_size": by_aspect, "heldout_top1_min": min(by_aspect.values()),
                "heldout_top1": float(np.mean(list(by_aspect.values()))),
                "heldout_images": len(heldout), "aspect_ratios": [aspect_label(s) for s in recipe.sizes],
                "packed_vs_separate_max_abs_logit_diff": _packed_vs_separate(model, heldout),
                "final_train_loss": float(np.mean(result.losses[-20:]))}
    return model, result.wall_time_s, data_time, measured


@torch.no_grad()
def _packed_vs_separate(model: nn.Module, sized: SizedSets, per_size: int = 4) -> float:
    """Max |logit difference| between one packed forward of images of every size and running
    each image alone."""
    images = [x for part in sized.sets.values() for x in to_tensor(part.images[:per_size], MEAN, STD)]
    packed = model(model.pack(images, token_dropout=0.0))
    alone = torch.cat([model(model.pack([x], token_dropout=0.0)) for x in images])
    return float((packed - alone).abs().max())


def _train_mae(recipe: Recipe, seed: int, quick: bool):
    """An MAE pretrained with the paper's loss (MSE on the removed patches only), measured
    against filling the removed patches with the mean visible colour. Returns (model, wall time,
    data time, metrics)."""
    t0 = time.perf_counter()
    train_set = _generate(recipe, recipe.train_images, seed)
    data_time = time.perf_counter() - t0
    heldout = _generate(recipe, recipe.heldout_images, seed + HELDOUT_SEED_OFFSET)
    probe = heldout.subset(slice(0, 500))
    seed_everything(seed)
    model = build_model(recipe)
    config = TrainConfig(steps=recipe.steps, lr=recipe.lr, warmup_steps=recipe.warmup_steps,
                         weight_decay=recipe.weight_decay, seed=seed, progress=not quick,
                         eval_every=0 if quick else recipe.eval_every)
    sampler = ArraySampler(train_set.images, train_set.labels, recipe.batch_size, mean=MEAN, std=STD, seed=seed)

    def probe_ratio(m: nn.Module) -> float:
        return round(metrics.masked_reconstruction(m, probe.images, mask_ratio=recipe.mask_ratio, seed=seed,
                                                   mean=MEAN, std=STD)["mse_vs_baseline"], 4)

    # the model returns (loss, pred, mask) with the loss already restricted to removed patches
    result = train(model, sampler, config, eval_fn=None if quick else probe_ratio,
                   loss_fn=lambda out, _labels: out[0])
    measured = metrics.masked_reconstruction(model, heldout.images, mask_ratio=recipe.mask_ratio,
                                             seed=seed + HELDOUT_SEED_OFFSET, mean=MEAN, std=STD)
    measured |= {"mask_ratio": recipe.mask_ratio, "heldout_images": len(heldout),
                 "pixel_units": "0..1 per channel", "final_train_loss": float(np.mean(result.losses[-20:]))}
    return model, result.wall_time_s, data_time, measured


def train_family(family: str, out_dir: str | Path = "checkpoints", quick: bool = False, seed: int = 0,
                 threads: int = 2) -> dict:
    """Build, train, measure and save the demo model of ``family``; returns its model card."""
    recipe = RECIPES[family]
    if quick:
        recipe = quick_recipe(recipe)
    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    if recipe.sizes:
        return _save(recipe, seed, out_dir, *_train_navit(recipe, seed, quick))
    if recipe.mask_ratio is not None:
        return _save(recipe, seed, out_dir, *_train_mae(recipe, seed, quick))
    t0 = time.perf_counter()
    train_set = _generate(recipe, recipe.train_images, seed)
    data_time = time.perf_counter() - t0
    seed_everything(seed)
    model = build_model(recipe)
    heldout = _generate(recipe, recipe.heldout_images, seed + HELDOUT_SEED_OFFSET)
    attn_set = heldout.subset(slice(0, recipe.attention_images))

    if recipe.dino is None:
        result = _supervised(recipe, model, train_set, seed, quick)
        measured = {"heldout_top1": evaluate_top1(model, heldout.images, heldout.labels, mean=MEAN, std=STD),
                    "heldout_images": len(heldout)}
        if recipe.family == "crossformer":
            measured |= _dpb_rpb_check(model, heldout)
        final_loss = float(np.mean(result.losses[-20:]))
        wall = result.wall_time_s
    else:
        knn = _knn_eval(recipe, seed)
        random_init = knn(copy.deepcopy(model))  # the very weights DINO starts from
        dino_cfg = replace(recipe.dino, seed=seed, progress=not quick,
                           eval_every=0 if quick else recipe.dino.eval_every)
        result = train_dino(model, train_set.images, dino_cfg, eval_fn=knn, mean=MEAN, std=STD)
        model = result.teacher
        measured = {"knn_top1": result.evals[-1][1], "knn_top1_random_init": random_init, "knn_k": 20,
                    "knn_temperature": 0.07, "knn_bank_images": recipe.knn_bank_images,
                    "heldout_images": len(heldout), "knn_features": "teacher CLS token (after the final norm)"}
        final_loss = float(np.mean(result.losses[-20:]))
        wall = result.wall_time_s
    if recipe.family in ("vit", "dino"):
        measured |= metrics.attention_in_object(model, attn_set.images, attn_set.masks, mean=MEAN, std=STD)
        measured["attention_images"] = len(attn_set)
    measured["final_train_loss"] = final_loss
    return _save(recipe, seed, out_dir, model, wall, data_time, measured)


def _save(recipe: Recipe, seed: int, out_dir: Path, model: nn.Module, wall: float, data_time: float,
          measured: dict) -> dict:
    family = recipe.family
    weights = out_dir / f"demo_{family}.safetensors"
    size = save_checkpoint(model, weights)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{weights} is {size / 1e6:.1f} MB, over the 5 MB budget")
    card = _card(recipe, seed, wall, data_time, size, measured)
    (out_dir / f"demo_{family}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
    return card


def missed_targets(card: dict) -> list[str]:
    """The quality bars of the demo models (issue 3) that this card's metrics miss."""
    m, misses = card["metrics"], []
    if "heldout_top1_min" in m:  # NaViT: every aspect ratio from 1:3 to 3:1
        if m["heldout_top1_min"] < 0.90:
            misses.append(f"held-out top-1 {m['heldout_top1_min']:.3f} at its worst aspect ratio < 0.90")
    elif "heldout_top1" in m and m["heldout_top1"] < 0.95:
        misses.append(f"held-out top-1 {m['heldout_top1']:.3f} < 0.95")
    if "mse_vs_baseline" in m and m["mse_vs_baseline"] > 0.5:
        misses.append(f"masked-patch MSE {m['mse_vs_baseline']:.3f} of the mean-visible-colour baseline > 0.5")
    if "knn_top1" in m and (m["knn_top1"] < 0.80 or m["knn_top1"] < m["knn_top1_random_init"] + 0.25):
        misses.append(f"k-NN top-1 {m['knn_top1']:.3f}: needs >= 0.80 and >= random init "
                      f"({m['knn_top1_random_init']:.3f}) + 0.25")
    return misses


def _card(recipe: Recipe, seed: int, wall: float, data_time: float, size: int, measured: dict) -> dict:
    train_info = {
        "recipe": f"explorer.train.recipes:RECIPES['{recipe.family}']",
        "steps": recipe.dino.steps if recipe.dino else recipe.steps,
        "batch_size": recipe.dino.batch_size if recipe.dino else recipe.batch_size,
        "lr": recipe.dino.lr if recipe.dino else recipe.lr,
        "wall_time_s": round(wall, 1),
        "data_time_s": round(data_time, 1),
        "machine": machine(),
        "command": f"python -m explorer train {recipe.family}" + (f" --seed {seed}" if seed else ""),
    }
    if recipe.dino:
        d = recipe.dino
        train_info |= {"method": "DINO self-distillation, no labels", "optimizer": "AdamW",
                       "teacher_momentum": [d.momentum_teacher, 1.0], "teacher_temp": [d.warmup_teacher_temp,
                       d.teacher_temp], "student_temp": d.student_temp, "out_dim": d.out_dim,
                       "crops": {"global": [2, d.crops.global_size, list(d.crops.global_scale)],
                                 "local": [d.crops.n_local, d.crops.local_size, list(d.crops.local_scale)]}}
    elif recipe.mask_ratio is not None:
        train_info |= {"method": "MAE: MSE on the removed patches only, no labels", "optimizer": "AdamW",
                       "schedule": "linear warmup + cosine", "warmup_steps": recipe.warmup_steps,
                       "weight_decay": recipe.weight_decay, "mask_ratio": recipe.mask_ratio,
                       "augmentation": "h/v flips, translation up to 8%"}
    else:
        train_info |= {"optimizer": "AdamW", "schedule": "linear warmup + cosine", "warmup_steps": recipe.warmup_steps,
                       "weight_decay": recipe.weight_decay, "label_smoothing": recipe.label_smoothing,
                       "augmentation": "h/v flips, translation up to 8%"}
    def rounded4(v):
        return {k: rounded4(x) for k, x in v.items()} if isinstance(v, dict) else (
            round(v, 4) if isinstance(v, float) else v)

    # differences stay unrounded: their size (e.g. 2e-6) is the point
    rounded = {k: v if k.endswith("_diff") else rounded4(v) for k, v in measured.items()}
    return {
        "name": recipe.name,
        "name_zh": recipe.name_zh,
        "family": recipe.family,
        "timm_model": recipe.timm_model,
        "model_kwargs": _jsonable(recipe.model_kwargs),
        "num_classes": recipe.num_classes,
        "class_names": list(data.CLASS_NAMES),
        # NaViT takes any size; its card lists the training sizes under data.sizes
        "input_size": [3, recipe.image_size, recipe.image_size],
        "mean": list(MEAN),
        "std": list(STD),
        "interpolation": "bicubic",
        "weights_file": f"demo_{recipe.family}.safetensors",
        "weights_bytes": size,
        "data": {"generator": "explorer.train.data", "seed": seed, "train_images": recipe.train_images,
                 "image_size": recipe.image_size, "heldout_seed": seed + HELDOUT_SEED_OFFSET,
                 "config": _jsonable(recipe.data_config),
                 **({"sizes": _jsonable(recipe.sizes), "token_dropout": list(recipe.token_dropout)}
                    if recipe.sizes else {})},
        "train": train_info,
        "metrics": rounded,
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_jsonable(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["finetune"]:  # the user's model on the user's folder (train/finetune.py)
        from explorer.train import finetune

        return finetune.run(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m explorer train",
                                     description="Train a bundled demo model on the synthetic shapes "
                                     "(or fine-tune any model on your folder: train finetune --help).")
    parser.add_argument("family", choices=[*RECIPES, "all"])
    parser.add_argument("--out", default="checkpoints", help="output folder (default: checkpoints)")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2, the budget)")
    args = parser.parse_args(argv)
    for family in RECIPES if args.family == "all" else [args.family]:
        card = train_family(family, args.out, quick=args.quick, seed=args.seed, threads=args.threads)
        print(f"{family}: {card['weights_file']} {card['weights_bytes'] / 1e6:.2f} MB, "
              f"trained {card['train']['wall_time_s']:.0f} s on {card['train']['machine']}")
        for key, value in card["metrics"].items():
            print(f"  {key}: {value}")
        for miss in missed_targets(card):
            print(f"  WARNING: {miss}: the app will show this model, but it is not good enough to teach with")
    return 0


if __name__ == "__main__":
    sys.exit(main())
