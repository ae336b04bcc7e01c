"""The step-through's cost, printed as measured times and ratios (not a pass/fail test).

On ViT-S/16 at 224 px (random init: weights do not change the timings): one bare forward, the
one captured forward that keeps every block's input (paid once per image and model, when the
panel opens), then per layer the server time of a step change — the block's own layers on the
cached inputs (``step_at``) plus one step's figure and formula line — against the 50 ms a control
may take. Run: ``.venv/bin/python benchmarks/step_through.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from explorer.lenses.attention.step import STEPS, block_inputs, step_at  # noqa: E402
from explorer.lenses.attention.step_view import step_figure, step_markdown  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    model = timm.create_model("vit_small_patch16_224", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(3):
            model(x)
        bare = (time.perf_counter() - start) / 3
    start = time.perf_counter()
    inputs = block_inputs(model, x)
    captured = time.perf_counter() - start
    print(f"ViT-S/16 at 224: bare forward {ms(bare)}; the capture keeping every block's input "
          f"{ms(captured)} ({captured / bare:.2f}× a bare forward, once per image and model)")
    image = np.zeros((224, 224, 3), np.uint8)
    totals = []
    for layer in range(0, len(model.blocks), 3):
        start = time.perf_counter()
        step = step_at(model, inputs, layer, 1, 50)
        arithmetic = time.perf_counter() - start
        drawing = []
        for i in range(len(STEPS)):
            start = time.perf_counter()
            step_figure(step, i, image, (16, 16), "en").to_json()
            step_markdown(step, i, "en")
            drawing.append(time.perf_counter() - start)
        totals.append(arithmetic + statistics.median(drawing))
        print(f"  layer {layer:2d}: block arithmetic {ms(arithmetic)}, one step's figure + text "
              f"{ms(statistics.median(drawing))} (slowest step {ms(max(drawing))})")
    print(f"a step change, server side: median {ms(statistics.median(totals))} (goal ≤ 50 ms; no model run)")


if __name__ == "__main__":
    main()
