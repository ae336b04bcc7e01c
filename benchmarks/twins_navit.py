"""Twins lens and NaViT packing speed, printed as measured ratios (not a test).

- Twins: one bare ``model(x)`` vs the Twins lens's full analysis (capture of every LSA/GSA
  block's probabilities, PEG norms, shapes), on the bundled demo and on Twins-SVT-S and
  Twins-PCPVT-S at 224 (their architectures; speed does not depend on the weights); and the
  time of a control change (redraw from the cache, no model run).
- NaViT: images/s for a mixed-aspect batch (64 images from 1:3 to 3:1) run packed, padded to
  squares (a plain ViT batch: every image zero-padded to one square canvas, the batch's longest
  side) and one by one, with the token utilisation (share of non-padding tokens) of each.
Run: ``.venv/bin/python benchmarks/twins_navit.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.attention_lens import architectures_without_stand_ins, median_seconds, report_lens  # noqa: E402
from explorer.core.images import load_image  # noqa: E402
from explorer.core.preprocess import preprocess  # noqa: E402
from explorer.core.weights import get_model  # noqa: E402
from explorer.core.zoo import REPO_ROOT  # noqa: E402
from explorer.lenses.twins.compute import analyze_image, total_stride  # noqa: E402
from explorer.lenses.twins.tab import TwinsView, analysis_for, render  # noqa: E402
from explorer.models.navit import NaViT  # noqa: E402

REPEATS = 5
ASPECTS = ((40, 120), (48, 96), (48, 72), (64, 64), (72, 48), (96, 48), (120, 40))  # (H, W), 1:3 ... 3:1


def bench_twins(image, key: str, name: str) -> None:
    loaded = get_model(key, allow_download=False)
    stride = total_stride(loaded.model)
    x = preprocess(image.image, loaded.data_config, "model", (stride, stride)).tensor
    _, result = analysis_for(image, key, "model", False)
    report_lens(f"{name}, Twins-{result.twins.variant}", loaded, x, "Twins-lens",
                lambda: analyze_image(loaded, image, "model"),
                lambda: render(loaded, result, TwinsView(0, 1, None, (3, 3)).clamp(result), "en"))


def mixed_batch(n: int = 64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, *ASPECTS[i % len(ASPECTS)], generator=g) for i in range(n)]


def bench_navit(model: NaViT, name: str) -> None:
    images = mixed_batch()
    p = model.patch_size
    real = sum((h // p) * (w // p) for _, h, w in (im.shape for im in images))

    def packed():
        with torch.inference_mode():
            model(model.pack(images))

    def padded():  # every image zero-padded to one square canvas: a plain ViT batch
        side = max(max(im.shape[-2:]) for im in images)
        canvas = torch.zeros(len(images), 3, side, side)
        for i, im in enumerate(images):
            canvas[i, :, :im.shape[1], :im.shape[2]] = im
        with torch.inference_mode():
            _as_batch(model, canvas)

    def one_by_one():
        with torch.inference_mode():
            for im in images:
                model([im])

    batch = model.pack(images)
    side = max(max(im.shape[-2:]) for im in images)
    padded_tokens = len(images) * (side // p) ** 2
    rows = []
    for label, fn, util in (("packed", packed, batch.utilisation),
                            ("padded to squares", padded, real / padded_tokens),
                            ("one by one", one_by_one, 1.0)):
        fn()  # warm-up
        seconds = median_seconds(fn)
        rows.append((label, seconds, util))
    print(f"{name}: {len(images)} images, aspect ratios 1:3 ... 3:1, {real} real tokens; packed into "
          f"{batch.num_sequences} sequences of <= {model.max_seq_len}")
    base = rows[1][1]
    for label, seconds, util in rows:
        print(f"  {label:18s} {len(images) / seconds:8.1f} images/s   token utilisation {util:6.1%}   "
              f"time vs padded {seconds / base:.2f}x")
    print()


def _as_batch(model: NaViT, canvas: torch.Tensor) -> torch.Tensor:
    """The padded squares as a plain batch: one image per sequence, no packing needed."""
    from explorer.models.navit import PackedBatch, patchify

    p = model.patch_size
    rows = canvas.shape[-2] // p
    patches = torch.stack([patchify(im, p) for im in canvas])
    idx = torch.arange(rows * rows)
    positions = torch.stack([idx // rows, idx % rows], -1).expand(len(canvas), -1, -1)
    batch = PackedBatch(patches, positions, torch.zeros(len(canvas), rows * rows, dtype=torch.long),
                        [(i, 0) for i in range(len(canvas))], [(rows, rows)] * len(canvas),
                        [idx] * len(canvas), rows * rows)
    return model.forward_packed(batch)


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {REPEATS} runs\n")
    star = load_image(REPO_ROOT / "assets" / "synthetic" / "star.png")
    cat = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    bench_twins(star, "demo_twins", "Demo Twins-SVT at 64")
    has_demo_navit = (REPO_ROOT / "checkpoints" / "demo_navit.json").is_file()
    demo = get_model("demo_navit", allow_download=False).model if has_demo_navit else None
    architectures_without_stand_ins()
    bench_twins(cat, "twins_svt_small.in1k", "Twins-SVT-S at 224")
    bench_twins(cat, "twins_pcpvt_small.in1k", "Twins-PCPVT-S at 224")
    if demo is not None:
        bench_navit(demo, "Demo NaViT (bundled)")
    torch.manual_seed(0)
    bench_navit(NaViT(num_classes=1000, embed_dim=384, depth=12, num_heads=6, max_seq_len=256).eval(),
                "NaViT at ViT-S width (384, depth 12, random weights)")


if __name__ == "__main__":
    main()
