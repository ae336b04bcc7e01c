"""The explanation lens, measured: its speed against one bare forward, the faithfulness run
batched against one input at a time, and the maps against ground truth on held-out generated
images whose object masks the generator knows (share of relevance inside the object, and the
pointing game: does the most relevant patch touch the object?). Printed, not asserted.

Run: ``.venv/bin/python benchmarks/explain.py [--images 200]``. The ground truth uses the bundled
demo ViT (trained on these shapes) and images from a seed no training run used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.attention_lens import median_seconds, paired_medians  # noqa: E402
from explorer.core.images import load_image  # noqa: E402
from explorer.core.weights import get_model  # noqa: E402
from explorer.core.zoo import REPO_ROOT  # noqa: E402
from explorer.lenses.explain import attnlrp  # noqa: E402
from explorer.lenses.explain.compute import (METHODS, analyze_image, faithfulness, perturbation_curves, private_copy,  # noqa: E402
                                             sanity)

GROUND_TRUTH_SEED = 424_242  # far from the recipes' training (0 …) and held-out (100 000 …) seeds


def speed(key: str) -> None:
    loaded = get_model(key, allow_download=False)
    if loaded.shown.key != key:  # offline, a demo stands in: time the architecture itself, random weights
        import tempfile

        from explorer.core.weights import load_model

        with tempfile.TemporaryDirectory() as empty:
            loaded = load_model(key, allow_download=False, checkpoint_dir=Path(empty))
    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    analysis = analyze_image(loaded, image)
    x = analysis.x

    def bare():
        with torch.inference_mode():
            loaded.model(x)

    forward, explain = paired_medians(bare, lambda: analyze_image(loaded, image, target=analysis.target))
    lrp = median_seconds(lambda: attnlrp.relevance(private_copy(loaded.model), x, analysis.target))
    steps = 10
    batched = median_seconds(lambda: faithfulness(loaded, analysis, steps), repeats=3)
    one_by_one = median_seconds(lambda: perturbation_curves(loaded.model, x, analysis.maps, analysis.target, steps,
                                                     batch_size=1), repeats=3)
    check = median_seconds(lambda: sanity(loaded, analysis), repeats=2)
    inputs = len(METHODS) * 2 * (steps + 1)
    print(f"{key} ({loaded.source} weights), {tuple(x.shape[-2:])} px:")
    print(f"  one bare forward {forward * 1e3:7.1f} ms; every method's map (one forward on a private copy, then "
          f"a gradient backward for GAE and Grad-CAM and a relevance backward for AttnLRP) {explain * 1e3:7.1f} ms "
          f"= {explain / forward:.1f}x (the goal, <= 4x, is set on ViT-S/16 at 224 px)")
    print(f"  for comparison, AttnLRP alone (its own forward and relevance backward) {lrp * 1e3:7.1f} ms "
          f"= {lrp / forward:.1f}x")
    print(f"  deletion + insertion, {inputs} inputs: batched by 16 {batched:.2f} s = {batched / forward:.0f} bare "
          f"forwards, one by one {one_by_one:.2f} s = {one_by_one / forward:.0f} ({one_by_one / batched:.2f}x faster batched)")
    print(f"  sanity check ({len(loaded.model.blocks)} randomised blocks) {check:.2f} s\n")


def ground_truth(images: int) -> None:
    from explorer.train import data
    from explorer.train.recipes import RECIPES

    loaded = get_model("demo_vit", allow_download=False)
    recipe = RECIPES["vit"]
    shapes = data.generate(images, GROUND_TRUTH_SEED, recipe.image_size, config=data.ShapesConfig(**recipe.data_config))
    ph, pw = loaded.patch_size
    inside = {m: [] for m in METHODS}
    hits = {m: [] for m in METHODS}
    from PIL import Image

    from explorer.core.images import LoadedImage

    for i in range(images):
        picture = Image.fromarray(shapes.images[i])
        image = LoadedImage(image=picture, digest=f"gt{i}", source_size=picture.size, source_format="PNG",
                            source_mode="RGB", notes=())
        analysis = analyze_image(loaded, image, target=int(shapes.labels[i]))
        mask = shapes.masks[i]
        h, w = analysis.grid
        # each patch's share of object pixels (the model input is the generated image itself)
        share = mask[:h * ph, :w * pw].reshape(h, ph, w, pw).mean(axis=(1, 3))
        for method in METHODS:
            relevance = np.clip(analysis.maps[method].astype(np.float64), 0, None)  # AttnLRP's positive part
            total = relevance.sum()
            inside[method].append(float((relevance * share).sum() / total) if total > 0 else 0.0)
            hits[method].append(bool(share.ravel()[int(relevance.argmax())] > 0))
    object_share = float(shapes.masks.mean())
    print(f"ground truth, demo ViT on {images} held-out generated images (target = the true class; the "
          f"objects cover {object_share:.1%} of the pixels):")
    print(f"  {'method':10s} {'relevance inside the object':>28s} {'pointing game':>14s}")
    for method in METHODS:
        print(f"  {method:10s} {statistics.mean(inside[method]):28.1%} {statistics.mean(hits[method]):14.1%}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for key in ("demo_vit", "vit_small_patch16_224.augreg_in21k_ft_in1k"):
        speed(key)
    ground_truth(args.images)


if __name__ == "__main__":
    main()
