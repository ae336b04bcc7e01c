"""Measurements written into the demo models' cards: top-1, k-NN top-1 on frozen features, and
"where the model looks" — the share of CLS attention and of attention rollout that falls on the
object, next to the share of the image the object covers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.rollout import attention_rollout
from explorer.models.mae import mean_visible_colour
from explorer.train.loop import predict, to_tensor


def top1(logits: torch.Tensor, labels: torch.Tensor | np.ndarray) -> float:
    return float((logits.argmax(-1) == torch.as_tensor(labels)).float().mean())


@torch.no_grad()
def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                k: int = 20, temperature: float = 0.07, num_classes: int | None = None,
                chunk: int = 512) -> torch.Tensor:
    """Weighted k-NN classifier of DINO's ``eval_knn``: cosine similarity to the training bank,
    the k nearest vote for their class with weight exp(sim / T); returns predicted labels."""
    train_features = F.normalize(train_features.float(), dim=1)
    test_features = F.normalize(test_features.float(), dim=1)
    train_labels = torch.as_tensor(train_labels, dtype=torch.long)
    num_classes = num_classes or int(train_labels.max()) + 1
    preds = []
    for i in range(0, len(test_features), chunk):
        sim = test_features[i:i + chunk] @ train_features.T
        top_sim, top_idx = sim.topk(min(k, sim.shape[1]), dim=1)
        votes = torch.zeros(len(sim), num_classes)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_features: torch.Tensor, train_labels, test_features: torch.Tensor, test_labels,
                 k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 of the DINO weighted k-NN classifier (k=20, T=0.07 by default)."""
    pred = knn_predict(train_features, torch.as_tensor(train_labels), test_features, k, temperature)
    return float((pred == torch.as_tensor(test_labels)).float().mean())


def features(model: nn.Module, images: np.ndarray, **kwargs) -> torch.Tensor:
    """Frozen pooled features (the CLS token for a timm ViT built with num_classes=0)."""
    return predict(model, images, **kwargs)


# ---------------------------------------------------------------------------------------------
# where the model looks


def patch_object_fraction(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(B,H,W) bool masks -> (B, rows*cols): the fraction of each patch's pixels on the object.

    The model sees only the top-left rows*p x cols*p crop when H, W are not multiples of p.
    """
    b, h, w = masks.shape
    ph, pw = h // grid[0], w // grid[1]
    m = masks[:, :grid[0] * ph, :grid[1] * pw].reshape(b, grid[0], ph, grid[1], pw)
    return m.mean((2, 4)).reshape(b, -1)


@torch.no_grad()
def attention_in_object(model: nn.Module, images: np.ndarray, masks: np.ndarray, *,
                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), batch_size: int = 50) -> dict[str, float]:
    """Share of the CLS->patch attention mass that lands on the object, averaged over images.

    Two views: the last block's CLS row over the patch tokens (mean over heads, renormalised over
    patches), and the CLS row of the attention rollout over the patch tokens (renormalised). A
    patch contributes its mass times the fraction of its pixels inside the mask. Uniform
    attention would score ``object_area_share``.
    """
    from explorer.core.capture import capture_attention

    model.eval()
    last, rolled, area = [], [], []
    for i in range(0, len(images), batch_size):
        cap = capture_attention(model, to_tensor(images[i:i + batch_size], mean, std))
        p = cap.num_prefix_tokens
        frac = patch_object_fraction(masks[i:i + batch_size], cap.grid)
        attn = torch.stack(cap.attentions, 1).cpu().numpy()  # (B, L, heads, N, N)
        cls_last = attn[:, -1, :, 0, p:].mean(1)  # CLS query over patch keys, head mean
        cls_last /= cls_last.sum(1, keepdims=True)
        cls_roll = np.stack([attention_rollout(a)[0, p:] for a in attn])
        cls_roll /= cls_roll.sum(1, keepdims=True)
        last.append((cls_last * frac).sum(1))
        rolled.append((cls_roll * frac).sum(1))
        area.append(frac.mean(1))
    return {
        "cls_attention_in_object": float(np.concatenate(last).mean()),
        "rollout_in_object": float(np.concatenate(rolled).mean()),
        "object_area_share": float(np.concatenate(area).mean()),
    }


@torch.no_grad()
def masked_reconstruction(model: nn.Module, images: np.ndarray, *, mask_ratio: float = 0.75, seed: int = 0,
                          mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), batch_size: int = 256) -> dict:
    """An MAE's mean squared error on the removed patches, in 0..1 pixel units, next to a baseline
    that fills every removed patch with the image's mean visible colour (per channel).

    Masks come from a seeded generator, so the numbers are reproducible; the model must predict
    plain pixels (not ``norm_pix_loss`` targets).
    """
    model.eval()
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    generator = torch.Generator().manual_seed(seed)
    err_model = err_base = count = 0.0
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i:i + batch_size], mean, std)
        noise = torch.rand(len(x), model.patch_embed.num_patches, generator=generator)
        _, pred, mask = model(x, mask_ratio=mask_ratio, noise=noise)
        recon = model.unpatchify(pred) * s + m
        pixels = x * s + m
        removed = model.mask_pixels(mask).bool()  # (B,3,H,W)
        visible_mean = mean_visible_colour(pixels, removed)
        err_model += float(((recon - pixels) ** 2)[removed].sum())
        err_base += float(((visible_mean - pixels) ** 2 * removed).sum())
        count += float(removed.sum())
    return {"masked_mse": err_model / count, "mean_visible_baseline_mse": err_base / count,
            "mse_vs_baseline": err_model / err_base}
