"""Swin lens and CrossFormer conversion speed, printed as measured ratios (not a test).

- Swin-T at 224: one bare ``model(x)`` vs the Swin lens's full analysis (capture of every
  block's probabilities, content logits, bias and mask, geometry, layouts), and the time of a
  control change (redraw from the cache).
- CrossFormer-T at 224: forward time of the DPB model vs the converted RPB model (the
  conversion should not be slower: it replaces an MLP per block by a table lookup).
Run: ``.venv/bin/python benchmarks/swin_crossformer.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.core.images import load_image  # noqa: E402
from explorer.core.preprocess import preprocess  # noqa: E402
from explorer.core.weights import get_model  # noqa: E402
from explorer.core.zoo import REPO_ROOT  # noqa: E402
from explorer.lenses.swin.compute import analyze_image  # noqa: E402
from explorer.lenses.swin.tab import SwinView, analysis_for, render  # noqa: E402
from benchmarks.attention_lens import architectures_without_stand_ins, paired_medians, report_lens  # noqa: E402
from explorer.models.crossformer import crossformer_tiny, dpb_to_rpb  # noqa: E402

REPEATS = 5


def bench_swin(image, key: str, name: str) -> None:
    loaded = get_model(key, allow_download=False)
    x = preprocess(image.image, loaded.data_config, "model", (4, 4)).tensor
    _, result = analysis_for(image, key, "model", False)
    report_lens(name, loaded, x, "Swin-lens", lambda: analyze_image(loaded, image, "model"),
                lambda: render(loaded, result, SwinView(0, 1, None, (50, 50)).clamp(result), "en"))


def bench_crossformer() -> None:
    torch.manual_seed(0)
    dpb = crossformer_tiny().eval()
    rpb = dpb_to_rpb(dpb).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        diff = float((dpb(x) - rpb(x)).abs().max())

    def run(model):
        def forward():
            with torch.inference_mode():
                model(x)
        return forward

    t_dpb, t_rpb = paired_medians(run(dpb), run(rpb))
    n_dpb = sum(p.numel() for n, p in dpb.named_parameters() if ".pos." in n)
    print("CrossFormer-T at 224 (random weights; speed does not depend on them)")
    print(f"  DPB forward             {t_dpb * 1e3:8.1f} ms   ({n_dpb} DPB MLP parameters)")
    print(f"  converted RPB forward   {t_rpb * 1e3:8.1f} ms   ratio RPB/DPB {t_rpb / t_dpb:.2f}x (target <= 1.0x)")
    print(f"  max |Δlogit|            {diff:.2g}")


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {REPEATS} runs\n")
    bench_swin(load_image(REPO_ROOT / "assets" / "synthetic" / "star.png"), "demo_swin", "Demo Swin at 64")
    architectures_without_stand_ins()
    bench_swin(load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg"),
               "swin_tiny_patch4_window7_224.ms_in1k", "Swin-T at 224")
    bench_crossformer()


if __name__ == "__main__":
    main()
