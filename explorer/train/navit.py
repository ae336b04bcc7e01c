"""Training data for NaViT: the synthetic shapes at several sizes and aspect ratios, fed to the
generic loop as packed batches (``explorer.models.navit.PackedBatch``), and accuracy per
aspect ratio.

The loop itself is ``explorer.train.loop.train`` unchanged: the sampler returns a packed
batch instead of an image tensor and NaViT's ``forward`` takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.models.navit import NaViT
from explorer.train import data
from explorer.train.loop import light_augment, to_tensor

Size = tuple[int, int]  # (height, width) in pixels


def aspect_label(size: Size) -> str:
    """"1:3" for 40×120 (height:width, reduced)."""
    h, w = size
    g = np.gcd(h, w)
    return f"{h // g}:{w // g}"


@dataclass
class SizedSets:
    """One generated set per image size: the same classes at each size."""

    sets: dict[Size, data.ShapesData]

    @classmethod
    def generate(cls, sizes: tuple[Size, ...], n_per_size: int, seed: int,
                 config: data.ShapesConfig) -> "SizedSets":
        # a distinct generator seed per size: no two sizes share an image layout
        return cls({size: data.generate(n_per_size, seed * 1000 + i, size, config=config)
                    for i, size in enumerate(sizes)})

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets.values())


class PackedSampler:
    """Each step draws ``batch_size`` images from all sizes at random, flips/shifts them,
    drops tokens at a random rate per image in ``token_dropout`` (NaViT samples a rate per
    image) and packs them into sequences of at most the model's ``max_seq_len`` tokens."""

    def __init__(self, model: NaViT, sized: SizedSets, batch_size: int,
                 token_dropout: tuple[float, float] = (0.0, 0.0), seed: int = 0,
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
        self.model, self.sized, self.batch_size = model, sized, batch_size
        self.token_dropout, self.seed, self.mean, self.std = token_dropout, seed, mean, std
        self.sizes = list(sized.sets)

    def __call__(self, step: int):
        rng = np.random.default_rng([self.seed, step])
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        which = rng.integers(0, len(self.sizes), self.batch_size)
        images, labels = [], []
        for k in np.unique(which):
            part = self.sized.sets[self.sizes[k]]
            idx = np.sort(rng.choice(len(part), int((which == k).sum()), replace=False))
            x = light_augment(to_tensor(part.images[idx], self.mean, self.std), gen)
            images += list(x)
            labels += part.labels[idx].tolist()
        order = rng.permutation(len(images))  # mix sizes inside the sequences
        rates = rng.uniform(*self.token_dropout, len(images))
        batch = self.model.pack([images[i] for i in order], token_dropout=rates.tolist(), generator=gen)
        return batch, torch.tensor([labels[i] for i in order])


@torch.no_grad()
def predict_packed(model: NaViT, images: np.ndarray, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                   batch_size: int = 256, token_dropout: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Logits (N, K) of uint8 (N, H, W, 3) images run packed, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i:i + batch_size], mean, std)
        out.append(model(model.pack(list(x), token_dropout=token_dropout, generator=generator)))
    model.train(was_training)
    return torch.cat(out).float()


def accuracy_by_aspect(model: NaViT, sized: SizedSets, **kwargs) -> dict[str, float]:
    """Top-1 per size, keyed "H×W (h:w)"."""
    out = {}
    for size, part in sized.sets.items():
        pred = predict_packed(model, part.images, **kwargs).argmax(1)
        out[f"{size[0]}×{size[1]} ({aspect_label(size)})"] = float(
            (pred == torch.as_tensor(part.labels)).float().mean())
    return out
