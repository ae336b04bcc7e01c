"""The step-through's cost, printed as measured times and ratios (not a pass/fail test).

On ViT-S/16 and Swin-T at 224 px and Twins-SVT-S (random init: weights do not change the
timings): one bare forward, the one recorded forward that keeps every block's input and output
(``stepping.record``, paid once per image and model, when the panel first draws), then per
block the server time of a step change — the hand arithmetic on the recording (``step_from``)
plus one step's figure and formula line — against the 50 ms a control may take.
Run: ``.venv/bin/python benchmarks/step_through.py``.
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

from explorer.core.cache import nbytes_of  # noqa: E402
from explorer.lenses.stepping import block_count, record, step_from  # noqa: E402
from explorer.lenses.stepping.figures import STEPS, step_figure, step_markdown  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def measure(name: str, query: int) -> float:
    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(3):
            model(x)
        bare = (time.perf_counter() - start) / 3
    record(model, x)  # the hooks are installed once per model
    start = time.perf_counter()
    recording = record(model, x)
    recorded = time.perf_counter() - start
    print(f"{name} at 224: bare forward {ms(bare)}; the recorded forward {ms(recorded)} "
          f"({recorded / bare:.2f}× a bare forward, once per image and model; "
          f"{nbytes_of(recording) / 2**20:.1f} MiB cached)")
    image = np.zeros((224, 224, 3), np.uint8)
    totals = []
    depth = block_count(model)
    for layer in sorted({0, depth // 2, depth - 1}):
        rows, cols = step_from(model, recording, layer, 1, 0).grid  # (the block's map, for a valid query)
        start = time.perf_counter()
        step = step_from(model, recording, layer, 1, min(query, rows * cols - 1))
        arithmetic = time.perf_counter() - start
        drawing = []
        for i in range(len(STEPS)):
            start = time.perf_counter()
            step_figure(step, i, image, "en").to_json()
            step_markdown(step, i, "en")
            drawing.append(time.perf_counter() - start)
        totals.append(arithmetic + statistics.median(drawing))
        print(f"  block {layer:2d} ({step.family}, {step.num_keys} keys): arithmetic {ms(arithmetic)}, one step's "
              f"figure + text {ms(statistics.median(drawing))} (slowest step {ms(max(drawing))})")
    return statistics.median(totals)


def main() -> None:
    totals = [measure(name, 50) for name in ("vit_small_patch16_224", "swin_tiny_patch4_window7_224",
                                             "twins_svt_small")]
    print(f"a step change, server side: median {ms(statistics.median(totals))} over the models "
          f"(slowest model {ms(max(totals))}; goal ≤ 50 ms; no model run)")


if __name__ == "__main__":
    main()
