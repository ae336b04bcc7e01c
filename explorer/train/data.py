"""Synthetic labelled shapes: the offline dataset the bundled demo models are trained on.

One object per image (8 classes) with random colour, size, position and rotation, on a flat,
gradient, noise or stripes background with thin distractor clutter. The generator also returns the
object's mask and box, so tests can check *where* a model looks. Pure numpy, vectorised per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond")
BACKGROUNDS = ("flat", "gradient", "noise", "stripes")
NUM_CLASSES = len(CLASS_NAMES)


@dataclass(frozen=True)
class ShapesConfig:
    """Knobs of the generator; lengths are fractions of the image's shorter side so any size works."""

    scale: tuple[float, float] = (0.17, 0.32)  # object radius / min(H, W)
    clutter: tuple[int, int] = (2, 7)  # distractors per image, [low, high)
    clutter_length: float = 0.22  # max distractor line length / min(H, W)
    min_contrast: float = 100.0  # RGB distance between object colour and the background's colours
    background_contrast: float = 80.0  # max per-channel difference of a background's two colours
    pixel_noise: float = 5.0  # std of per-pixel noise, in 0..255 units
    backgrounds: tuple[str, ...] = BACKGROUNDS  # kinds to draw from, uniformly
    # Light objects (any hue) on darker backgrounds. Why not any colour on any background: with
    # both contrast polarities and random background colours, the object is no longer a linear
    # function of the pixels, and small ViT/Swin/Twins trained from scratch stay at chance for
    # over 1000 steps (measured); with this setting they pass 95% in ~1000 steps on 2 cores.
    lighter_object: float | None = 1.0  # P(object lighter than background); None: unconstrained
    min_luma_gap: float = 60.0  # luma difference enforced when lighter_object is set
    background_max: float = 100.0  # background colours have every channel <= this


@dataclass
class ShapesData:
    """A generated set: images (N,H,W,3) uint8, labels (N,), masks (N,H,W) bool, boxes (N,4) x0,y0,x1,y1 (end exclusive)."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ShapesData":
        return ShapesData(self.images[index], self.labels[index], self.masks[index], self.boxes[index])


def generate(
    n: int,
    seed: int = 0,
    size: int | tuple[int, int] = 64,
    *,
    labels: np.ndarray | list[int] | None = None,
    config: ShapesConfig = ShapesConfig(),
    chunk: int = 512,
) -> ShapesData:
    """Generate ``n`` images of ``size`` (int or (H, W)). Same arguments -> identical bytes.

    Classes are balanced (``arange(n) % 8``, shuffled) unless ``labels`` forces them.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if labels is None:
        labels = np.random.default_rng([seed, 0]).permutation(np.arange(n) % NUM_CLASSES)
    labels = np.asarray(labels, dtype=np.int64)
    assert labels.shape == (n,) and labels.min(initial=0) >= 0 and labels.max(initial=0) < NUM_CLASSES
    out = ShapesData(
        images=np.empty((n, h, w, 3), np.uint8),
        labels=labels,
        masks=np.empty((n, h, w), bool),
        boxes=np.empty((n, 4), np.int32),
    )
    for i, start in enumerate(range(0, n, chunk)):
        # one generator per chunk: the data does not depend on how it is consumed
        rng = np.random.default_rng([seed, 1, i])
        sl = slice(start, min(start + chunk, n))
        out.images[sl], out.masks[sl] = _draw_chunk(rng, labels[sl], h, w, config)
    out.boxes[:] = mask_boxes(out.masks)
    return out


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes (x0, y0, x1, y1), end exclusive, of (N,H,W) boolean masks; empty masks give zeros."""
    rows, cols = masks.any(2), masks.any(1)
    h, w = rows.shape[1], cols.shape[1]
    y0, x0 = rows.argmax(1), cols.argmax(1)
    y1, x1 = h - rows[:, ::-1].argmax(1), w - cols[:, ::-1].argmax(1)
    boxes = np.stack([x0, y0, x1, y1], 1).astype(np.int32)
    boxes[~rows.any(1)] = 0
    return boxes


# ---------------------------------------------------------------------------------------------
# drawing


def _draw_chunk(rng: np.random.Generator, labels: np.ndarray, h: int, w: int, cfg: ShapesConfig):
    b, side = len(labels), min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
    c0, c1, colour = _palette(rng, b, cfg)
    kind = np.array([BACKGROUNDS.index(k) for k in cfg.backgrounds])[rng.integers(0, len(cfg.backgrounds), b)]
    img = _background(kind, rng, h, w, side, c0, c1, xx, yy)
    _clutter(rng, img, side, cfg)

    radius = rng.uniform(*cfg.scale, b).astype(np.float32) * side
    margin = _EXTENT[labels] * radius  # the whole object stays inside the frame
    cx = rng.uniform(margin, w - margin).astype(np.float32)
    cy = rng.uniform(margin, h - margin).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, b).astype(np.float32)

    # signed distance (pixels, < 0 inside) in the object's rotated frame, one class at a time
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    dist = np.empty((b, h, w), np.float32)
    for k, name in enumerate(CLASS_NAMES):
        idx = np.flatnonzero(labels == k)
        if len(idx):
            dist[idx] = _SDF[name](u[idx], v[idx], radius[idx, None, None])

    cover = np.clip(0.5 - dist, 0.0, 1.0)[..., None]  # 1-pixel anti-aliased edge
    img = img * (1 - cover) + colour[:, None, None, :] * cover
    img += rng.standard_normal(img.shape, dtype=np.float32) * cfg.pixel_noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), dist <= 0


def _colours(rng: np.random.Generator, b: int) -> np.ndarray:
    return rng.uniform(0, 255, (b, 3)).astype(np.float32)


def _segment_distance(p: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Distance from colours p (B,3) to the RGB segments a..c (B,3): backgrounds are mixes of a and c."""
    ac, ap = c - a, p - a
    t = np.clip((ap * ac).sum(1) / np.maximum((ac * ac).sum(1), 1e-6), 0, 1)
    return np.linalg.norm(ap - t[:, None] * ac, axis=1)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _palette(rng: np.random.Generator, b: int, cfg: ShapesConfig, tries: int = 100):
    """Background colours c0, c1 and an object colour far (in RGB) from every mix of c0 and c1.

    The background's second colour stays near the first, so the object is the salient thing.
    With ``cfg.lighter_object`` = p the object is also lighter (luma) than the background with
    probability p and darker otherwise.
    """
    def background(n):
        c0 = _colours(rng, n) * (cfg.background_max / 255)
        c1 = c0 + rng.uniform(-1, 1, (n, 3)).astype(np.float32) * cfg.background_contrast
        return c0, np.clip(c1, 0, cfg.background_max)

    c0, c1 = background(b)
    colour = _colours(rng, b)
    lighter = None if cfg.lighter_object is None else rng.uniform(0, 1, b) < cfg.lighter_object
    for _ in range(tries):
        ok = _segment_distance(colour, c0, c1) >= cfg.min_contrast
        if lighter is not None:
            y, y0, y1 = colour @ _LUMA, c0 @ _LUMA, c1 @ _LUMA
            ok &= np.where(lighter, y - np.maximum(y0, y1), np.minimum(y0, y1) - y) >= cfg.min_luma_gap
        bad = np.flatnonzero(~ok)
        if not len(bad):
            return c0, c1, colour
        c0[bad], c1[bad] = background(len(bad))
        colour[bad] = _colours(rng, len(bad))
    # rare fallback: the RGB cube corner farthest from the background's colours
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.float32)
    far = np.stack([_segment_distance(np.broadcast_to(k, c0.shape), c0, c1) for k in corners], 1)
    colour[bad] = corners[far[bad].argmax(1)]
    return c0, c1, colour


def _background(kind, rng, h, w, side, c0, c1, xx, yy) -> np.ndarray:
    t = np.zeros((len(kind), h, w), np.float32)  # 0 -> c0, 1 -> c1

    g = np.flatnonzero(kind == 1)  # gradient along a random direction
    phi = rng.uniform(0, 2 * np.pi, len(g)).astype(np.float32)
    proj = np.cos(phi)[:, None, None] * xx + np.sin(phi)[:, None, None] * yy
    lo, hi = proj.min((1, 2), keepdims=True), proj.max((1, 2), keepdims=True)
    t[g] = (proj - lo) / np.maximum(hi - lo, 1e-6)

    nz = np.flatnonzero(kind == 2)  # smooth value noise: two octaves, bilinearly upsampled
    for cells, weight in ((4, 0.7), (9, 0.3)):
        grid = rng.uniform(0, 1, (len(nz), cells, cells)).astype(np.float32)
        ry, rx = _bilinear_matrix(h, cells), _bilinear_matrix(w, cells)
        t[nz] += weight * (ry @ grid @ rx.T)

    s = np.flatnonzero(kind == 3)  # stripes, soft-edged, random period/angle/phase
    phi = rng.uniform(0, np.pi, len(s)).astype(np.float32)[:, None, None]
    period = (rng.uniform(0.08, 0.25, len(s)) * side).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, len(s)).astype(np.float32)[:, None, None]
    wave = np.sin(2 * np.pi * (np.cos(phi) * xx + np.sin(phi) * yy) / period + phase)
    t[s] = np.clip(wave * 3 + 0.5, 0, 1)

    return c0[:, None, None, :] + t[..., None] * (c1 - c0)[:, None, None, :]


def _bilinear_matrix(n: int, cells: int) -> np.ndarray:
    """(n, cells) weights that bilinearly resample ``cells`` samples to ``n`` pixels (edges clamped)."""
    pos = (np.arange(n, dtype=np.float32) + 0.5) * cells / n - 0.5
    i0 = np.clip(np.floor(pos).astype(int), 0, cells - 1)
    i1 = np.clip(i0 + 1, 0, cells - 1)
    frac = np.clip(pos - np.floor(pos), 0, 1)
    frac = frac * frac * (3 - 2 * frac)  # smoothstep: hides the grid's cell edges
    m = np.zeros((n, cells), np.float32)
    np.add.at(m, (np.arange(n), i0), 1 - frac)
    np.add.at(m, (np.arange(n), i1), frac)
    return m


def _clutter(rng, img, side, cfg: ShapesConfig) -> None:
    """Thin short lines and small dots (capsules) in random colours, drawn under the object."""
    b, h, w, _ = img.shape
    count = rng.integers(cfg.clutter[0], cfg.clutter[1], b)
    scale = side / 64  # geometry was tuned at 64 px
    max_len, max_rad = cfg.clutter_length * side, 1.6 * scale
    # distractors are small: rasterise each in a local p x p window, not the whole frame
    p = int(np.ceil(max_len + 2 * max_rad + 3))
    ly, lx = np.mgrid[0:p, 0:p]
    for j in range(cfg.clutter[1] - 1):
        # every image draws its numbers, so the random stream does not depend on the counts
        x0, y0 = rng.uniform(0, w, b).astype(np.float32), rng.uniform(0, h, b).astype(np.float32)
        is_dot = rng.uniform(0, 1, b) < 0.4
        length = np.where(is_dot, 0.0, rng.uniform(0.08, cfg.clutter_length, b) * side).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi, b).astype(np.float32)
        x1, y1 = x0 + length * np.cos(ang), y0 + length * np.sin(ang)
        rad = (np.where(is_dot, rng.uniform(0.9, 1.6, b), rng.uniform(0.35, 0.7, b)) * scale).astype(np.float32)
        colour = _colours(rng, b)

        on = np.flatnonzero(j < count)
        ox = np.floor(np.minimum(x0, x1) - max_rad - 1).astype(int)[on, None, None]
        oy = np.floor(np.minimum(y0, y1) - max_rad - 1).astype(int)[on, None, None]
        gx, gy = lx + ox, ly + oy  # (n, p, p) absolute pixel indices
        d = _capsule(gx + 0.5, gy + 0.5, x0[on], y0[on], x1[on], y1[on]) - rad[on, None, None]
        cover = np.clip(0.5 - d, 0, 1) * ((gx >= 0) & (gx < w) & (gy >= 0) & (gy < h))
        i, yi, xi = np.nonzero(cover)
        a = cover[i, yi, xi][:, None]
        n, y, x = on[i], gy[i, yi, xi], gx[i, yi, xi]
        img[n, y, x] = img[n, y, x] * (1 - a) + colour[n] * a


def _capsule(xx, yy, x0, y0, x1, y1) -> np.ndarray:
    """Distance from pixel centres (xx, yy) to the segments (x0,y0)-(x1,y1), batched: (B,H,W)."""
    e = lambda a: a[:, None, None]  # noqa: E731
    ex, ey = e(x1 - x0), e(y1 - y0)
    px, py = xx - e(x0), yy - e(y0)
    t = np.clip((px * ex + py * ey) / np.maximum(ex * ex + ey * ey, 1e-6), 0, 1)
    return np.hypot(px - t * ex, py - t * ey)


# ---------------------------------------------------------------------------------------------
# shapes as signed distances (pixels; < 0 inside), in the object's own rotated frame (u, v).
# Sizes are chosen so the 8 classes have comparable areas for the same radius r.


def _box(u, v, a, b):
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _regular_polygon(u, v, apothem, sides: int, offset: float = 0.0):
    """Intersection of ``sides`` half-planes: max_k (n_k . p) - apothem."""
    angles = offset + 2 * np.pi * np.arange(sides) / sides
    return np.max([np.cos(a) * u + np.sin(a) * v for a in angles], axis=0) - apothem


def _star(u, v, r, points: int = 5, inner: float = 0.45):
    # fold the plane into one half-spoke: angle psi in [0, pi/points], outer tip at psi = 0
    outer = 1.2 * r
    sector = 2 * np.pi / points
    psi = np.mod(np.arctan2(v, u), sector)
    psi = np.minimum(psi, sector - psi)
    rho = np.hypot(u, v)
    pu, pv = rho * np.cos(psi), rho * np.sin(psi)
    # edge from the tip (outer, 0) to the inner vertex at angle sector/2
    iu, iv = inner * outer * np.cos(sector / 2), inner * outer * np.sin(sector / 2)
    nu, nv = iv - 0.0, outer - iu  # outward normal of the edge (tip -> inner vertex, rotated)
    norm = np.hypot(nu, nv)
    return ((pu - outer) * nu + pv * nv) / norm


def _diamond(u, v, r):
    a, b = 1.15 * r, 0.62 * r  # elongated, so it is never a rotated square
    return (np.abs(u) * b + np.abs(v) * a - a * b) / np.hypot(a, b)


# farthest point of each shape from its centre, in units of r (for placement)
_EXTENT = np.array([0.9, 1.14, 1.2, 1.2, 1.06, 1.0, 0.95, 1.15], np.float32)

_SDF = {
    "circle": lambda u, v, r: np.hypot(u, v) - 0.9 * r,
    "square": lambda u, v, r: _box(u, v, 0.8 * r, 0.8 * r),
    "triangle": lambda u, v, r: _regular_polygon(u, v, 0.6 * r, 3, np.pi / 2),
    "star": _star,
    "cross": lambda u, v, r: np.minimum(_box(u, v, r, 0.32 * r), _box(u, v, 0.32 * r, r)),
    "ring": lambda u, v, r: np.abs(np.hypot(u, v) - 0.75 * r) - 0.25 * r,
    "hexagon": lambda u, v, r: _regular_polygon(u, v, 0.82 * r, 6),
    "diamond": _diamond,
}


# ---------------------------------------------------------------------------------------------
# gallery


def write_gallery(out_dir: str | Path = "assets/synthetic", seed: int = 12345) -> list[Path]:
    """Write one 224x224 PNG per class plus two non-square samples; returns the paths."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    square = generate(NUM_CLASSES, seed, 224, labels=np.arange(NUM_CLASSES))
    paths = []
    for img, label in zip(square.images, square.labels):
        paths.append(out_dir / f"{CLASS_NAMES[label]}.png")
        Image.fromarray(img).save(paths[-1])
    for i, (name, size, label) in enumerate((("wide_star", (192, 320), 3), ("tall_hexagon", (320, 192), 6))):
        img = generate(1, seed + 1 + i, size, labels=[label]).images[0]
        paths.append(out_dir / f"{name}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


# (name, (H, W), class): one picture per aspect ratio from 1:3 to 3:1, for the NaViT lens
ASPECT_GALLERY = (("ring_1x3", (96, 288), 5), ("star_1x2", (128, 256), 3), ("triangle_2x3", (160, 240), 2),
                  ("hexagon_1x1", (192, 192), 6), ("cross_2x1", (256, 128), 4), ("square_3x1", (288, 96), 1))


def write_aspect_gallery(out_dir: str | Path = "assets/navit", seed: int = 23456) -> list[Path]:
    """Write the NaViT lens's examples: shapes at aspect ratios 1:3 ... 3:1; returns the paths."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, size, label) in enumerate(ASPECT_GALLERY):
        img = generate(1, seed + i, size, labels=[label]).images[0]
        paths.append(out_dir / f"{name}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


if __name__ == "__main__":
    for p in write_gallery() + write_aspect_gallery():
        print(p)


def write_class_folders(out_dir: str | Path, per_class: int, seed: int, size: int | tuple[int, int] = 64,
                        classes: tuple[int, ...] | None = None) -> list[Path]:
    """A labelled folder as ``evaluate`` and ``train finetune`` read it: ``<class name>/<i>.png``,
    ``per_class`` generated images of each class in ``classes`` (default: all)."""
    from PIL import Image

    out_dir = Path(out_dir)
    classes = tuple(range(NUM_CLASSES)) if classes is None else tuple(classes)
    labels = np.repeat(np.array(classes), per_class)
    shapes = generate(len(labels), seed, size, labels=labels)
    paths = []
    for i, (img, label) in enumerate(zip(shapes.images, shapes.labels)):
        folder = out_dir / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{i:05d}.png")
        Image.fromarray(img).save(paths[-1])
    return paths
