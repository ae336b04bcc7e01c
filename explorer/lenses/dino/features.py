"""What the DINO lens shows of the last block's tokens themselves, beside the attention: the
DINOv2 paper's PCA of the patch features (Oquab et al. 2023, Fig. 1/9) and the token norms of
"Vision Transformers Need Registers" (Darcet et al. 2024). numpy only.

PCA, as the DINOv2 figure makes it: the patch features (after the final LayerNorm) projected on
their first principal component, scaled to 0–1 and thresholded to split foreground from
background; then a second PCA fitted on the foreground patches alone, whose first three
components, each scaled to 0–1 over the foreground, are the red, green and blue of each patch
(background black). A principal component's sign is arbitrary: the first one is oriented so that
the image border, mostly background in such pictures, scores low (the paper chose by eye); each
colour component so that its largest loading is positive (scikit-learn's rule), so the colours
are the same on every run. The threshold is applied to the stored projection: moving it
re-fits only the small foreground PCA, never the model.

Token norms: the L2 norm of each token at the last block's output (before the final LayerNorm,
which would make them all alike). Darcet et al. found a few patch tokens with norms far above the
rest, where the model stores global information (and its attention goes); a token is marked here
when its norm is above ``HIGH_NORM_FACTOR`` × the median patch norm.
"""

from __future__ import annotations

import numpy as np

DEFAULT_PCA_THRESHOLD = 0.5
HIGH_NORM_FACTOR = 2.0


def principal_components(features: np.ndarray, k: int) -> np.ndarray:
    """(n, D) -> (n, k): the centred features projected on their first ``k`` principal axes,
    each axis signed so that its largest-magnitude loading is positive. float64. The axes come
    from the eigenvectors of the smaller of X·Xᵀ and Xᵀ·X (the SVD's, for a few of them, at a
    fraction of a full SVD's cost: a threshold change re-fits within the 50 ms budget)."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(0, keepdims=True)
    if x.shape[0] < x.shape[1]:  # few patches, wide features: the n×n Gram matrix
        values, vectors = np.linalg.eigh(x @ x.T)
        order = np.argsort(values)[::-1][:k]
        axes = (x.T @ vectors[:, order] / np.sqrt(np.maximum(values[order], 1e-300))).T
    else:
        values, vectors = np.linalg.eigh(x.T @ x)
        axes = vectors[:, np.argsort(values)[::-1][:k]].T
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    return x @ axes.T


def _scaled(values: np.ndarray) -> np.ndarray:
    span = np.ptp(values)
    return np.zeros_like(values) if span == 0 else (values - values.min()) / span


def first_component(features: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(rows, cols) in 0–1: the first principal component of the patch features, oriented so
    that the border patches score lower on average than the inner ones."""
    first = _scaled(principal_components(features, 1)[:, 0]).reshape(grid)
    border = np.ones(grid, bool)
    if grid[0] > 2 and grid[1] > 2:
        border[1:-1, 1:-1] = False
        if first[border].mean() > first[~border].mean():
            first = 1.0 - first
    return first


def pca_rgb(features: np.ndarray, first: np.ndarray, threshold: float = DEFAULT_PCA_THRESHOLD) -> np.ndarray:
    """(rows, cols, 3) float32 in 0–1: the foreground's first three principal components as RGB
    (a PCA of the foreground patches only); the background (first component ≤ threshold) black."""
    grid = first.shape
    foreground = first.ravel() > threshold
    rgb = np.zeros((foreground.size, 3), np.float64)
    if foreground.sum() > 3:  # three components need more than three points
        parts = principal_components(np.asarray(features)[foreground], 3)
        rgb[foreground, :parts.shape[1]] = np.stack([_scaled(c) for c in parts.T], 1)
    return rgb.reshape(*grid, 3).astype(np.float32)


def high_norm(norms: np.ndarray, factor: float = HIGH_NORM_FACTOR) -> np.ndarray:
    """Boolean map of the patch tokens whose norm is above ``factor`` × the median patch norm."""
    norms = np.asarray(norms, dtype=np.float64)
    return norms > factor * np.median(norms)
