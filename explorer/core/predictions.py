"""Top-k predictions from logits, with the model's own class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Prediction:
    label: str
    index: int
    probability: float


def top_predictions(logits: np.ndarray, class_names: tuple[str, ...] | None,
                    k: int = 5) -> list[Prediction]:
    """Softmax top-k; empty when the model has no classifier (no names or a size mismatch)."""
    if class_names is None or len(class_names) != logits.shape[-1]:
        return []
    probs = torch.from_numpy(logits).double().softmax(-1).numpy()
    order = np.argsort(-probs)[:k]
    return [Prediction(class_names[i], int(i), float(probs[i])) for i in order]
