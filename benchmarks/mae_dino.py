"""MAE lab and DINO lens speed, printed as measured ratios (not a pass/fail test).

MAE: one masked reconstruction (encoder on the visible patches + decoder on all) against one
bare encoder forward on the whole, unmasked image — at ratio 0.75 the encoder sees a quarter of
the tokens, which is why MAE pre-training is cheap — and the lab's full step (preprocess, mask,
forward, pictures), and a redraw (leak toggle, language) with the model runs it caused.
DINO: the lens's full analysis against one bare forward, and a threshold change (no model run),
and a PCA threshold change (the foreground's PCA re-fitted for both models, no model run).
Architectures without their weights on disk run with random weights (timings do not depend on
them). Run: ``.venv/bin/python benchmarks/mae_dino.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # forward_counter

import torch  # noqa: E402

from benchmarks.attention_lens import (architectures_without_stand_ins, median_seconds, paired_medians,  # noqa: E402
                                      report_lens)
from forward_counter import counting, forward_count  # noqa: E402
from explorer.core.images import load_image  # noqa: E402
from explorer.core.preprocess import preprocess  # noqa: E402
from explorer.core.weights import get_model  # noqa: E402
from explorer.core.zoo import REPO_ROOT  # noqa: E402
from explorer.lenses.mae import compute as mae  # noqa: E402
from explorer.lenses.dino import tab as dino_tab  # noqa: E402
from explorer.lenses.dino.compute import analyze_image  # noqa: E402
from explorer.lenses.mae.tab import Controls, refresh  # noqa: E402

MAE_MODELS = (("demo_mae", "synthetic/star.png"), ("mae_visualize_vit_base", "examples/chelsea.jpg"),
              ("mae_visualize_vit_large", "examples/chelsea.jpg"))


def report_mae(key: str, picture: str) -> None:
    image = load_image(REPO_ROOT / "assets" / picture)
    loaded = get_model(key, allow_download=False)
    model = loaded.model
    x = preprocess(image.image, loaded.data_config, "model", loaded.patch_size).tensor
    length = model.patch_embed.num_patches
    identity = torch.arange(float(length))[None]  # ratio 0 keeps every patch, in order

    def encoder_unmasked():
        with torch.inference_mode():
            model.forward_encoder(x, 0.0, identity)

    def reconstruction():
        with torch.inference_mode():
            model(x, 0.75, mae.random_noise(length, 0)[None])

    def encoder_masked():
        with torch.inference_mode():
            model.forward_encoder(x, 0.75, mae.random_noise(length, 0)[None])

    t_encoder, t_recon = paired_medians(encoder_unmasked, reconstruction)
    t_encoder_masked = median_seconds(encoder_masked)
    t_lab = median_seconds(lambda: mae.reconstruct(loaded, image, "random", 0.75, 0))
    controls = dict(image=image, model_key=key, allow_download=False, strategy="random", ratio=0.75, seed=0,
                    painted=[], lang="en")
    refresh(Controls(leak=False, **controls))
    flips = iter(range(10**6))
    with counting():  # counted only here: the counting hook must not weigh on the timed passes
        before = forward_count()
        t_redraw = median_seconds(lambda: refresh(Controls(leak=next(flips) % 2 == 1, **controls)))
        reruns = forward_count() - before
    print(f"{loaded.shown.label_en} [{loaded.source} weights] input {tuple(x.shape)}, {length} patches")
    print(f"  encoder, unmasked image          {t_encoder * 1e3:8.1f} ms")
    print(f"  encoder, ratio 0.75 (visible)    {t_encoder_masked * 1e3:8.1f} ms   ratio {t_encoder_masked / t_encoder:.2f}x")
    print(f"  reconstruction at ratio 0.75     {t_recon * 1e3:8.1f} ms   ratio {t_recon / t_encoder:.2f}x "
          f"(encoder on {mae.kept_count(length, 0.75)} of {length} patches + decoder)")
    print(f"  lab step (preprocess..pictures)  {t_lab * 1e3:8.1f} ms")
    print(f"  redraw (leak toggle + figures)   {t_redraw * 1e3:8.1f} ms   model re-runs: {reruns}\n")


DINO_MODELS = (("demo_dino", "synthetic/star.png"), ("vit_small_patch16_224.dino", "examples/chelsea.jpg"),
               ("vit_small_patch8_224.dino", "examples/chelsea.jpg"))


def report_dino(key: str, picture: str) -> None:
    """Full analysis (last-block CLS attention, preprocessing included) vs a bare forward, and a
    threshold change: the tab's handler and the figure JSON Gradio sends (target <= 50 ms)."""
    image = load_image(REPO_ROOT / "assets" / picture)
    loaded = get_model(key, allow_download=False)
    x = preprocess(image.image, loaded.data_config, "native", loaded.patch_size).tensor
    controls = dict(image=image, model_key=key, geometry="native", allow_download=False, compare_key="demo_vit",
                    head=None, n_local=8, seed=0, pca_threshold=None, lang="en")
    dino_tab.render(dino_tab.Controls(threshold=0.6, **controls))  # both models analysed once
    thresholds = iter(range(10**6))

    def threshold_change():
        outputs = dino_tab.change_threshold(dino_tab.Controls(threshold=0.3 + 0.05 * (next(thresholds) % 8),
                                                              **controls))
        return [outputs[name].to_json() for name in ("masks_plot", "compare_plot")]

    report_lens(f"{loaded.shown.label_en} (aspect ratio kept)", loaded, x, "dino",
                lambda: analyze_image(loaded, image, "native"), threshold_change)

    def pca_change():  # the foreground PCA re-fitted for both models, and the figure JSON
        values = {**controls, "pca_threshold": 0.3 + 0.05 * (next(thresholds) % 8)}
        return dino_tab.change_pca_threshold(dino_tab.Controls(threshold=0.6, **values))["features_plot"].to_json()

    from benchmarks.attention_lens import median_seconds

    print(f"  PCA threshold change (2 models)  {median_seconds(pca_change) * 1e3:8.1f} ms   model re-runs: none\n")


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    architectures_without_stand_ins()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians (paired ones timed alternately)\n")
    for key, picture in MAE_MODELS:
        report_mae(key, picture)
    for key, picture in DINO_MODELS:
        report_dino(key, picture)


if __name__ == "__main__":
    main()
