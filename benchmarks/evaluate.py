"""``evaluate`` and ``train finetune``, measured on this machine: evaluate's images/s at batch
1/32/128 (files decoded and transformed by DataLoader workers) against a bare batched loop over
the same tensors already in memory (the data pipeline must not be the bottleneck: target ≥ 90%),
two torchrun processes against one, and fine-tuning's steps/s. Printed, not asserted.

Run: ``.venv/bin/python benchmarks/evaluate.py [--images 256]``. The model is a ViT-S/16 at 224 px
with random weights (nothing is downloaded; the arithmetic is the same); the images are
generated 375×500 JPEGs, ImageNet's usual size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explorer.core.devices import resolve_device  # noqa: E402
from explorer.core.weights import load_model  # noqa: E402
from explorer.train.data import CLASS_NAMES, generate  # noqa: E402
from explorer.train.distributed import Group, default_workers  # noqa: E402
from explorer.train.evaluate import ImageFiles, evaluate  # noqa: E402
from explorer.train.folders import read_folder  # noqa: E402

MODEL = "vit_small_patch16_224"


def write_jpegs(root: Path, count: int) -> None:
    shapes = generate(count, 99, (375, 500))
    for i, (img, label) in enumerate(zip(shapes.images, shapes.labels)):
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=90)


def run(args: list[str], torchrun: int = 0, threads: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(torchrun)] \
        if torchrun else [sys.executable]
    done = subprocess.run([*launcher, "-m", "explorer", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jpegs(tmp / "data", args.images)
        empty = tmp / "none"
        empty.mkdir()
        loaded = load_model(MODEL, allow_download=False, checkpoint_dir=empty, device=resolve_device("cpu"))
        weights = tmp / "vit_s_random.safetensors"
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in loaded.model.state_dict().items()}, weights)
        # the folders are the first 8 of its 1000 classes (random weights: only the speed counts)
        labels = tmp / "labels.txt"
        labels.write_text("\n".join([*CLASS_NAMES, *(f"other {i}" for i in range(1000 - len(CLASS_NAMES)))]))
        data = read_folder(tmp / "data", (*CLASS_NAMES, *(f"other {i}" for i in range(992))), 1000)
        group = Group(0, 1, 0, torch.device("cpu"))
        from timm.data import create_transform

        tensors = torch.stack([ImageFiles(data, create_transform(**loaded.data_config))[i][0] for i in range(len(data))])
        print(f"evaluate, {MODEL} (random weights) at 224 px, {len(data)} generated 375×500 JPEGs, CPU, 2 threads:")
        for batch in (1, 32, 128):
            report = evaluate(loaded, data, group, batch_size=batch, workers=default_workers(), progress=False)
            with torch.inference_mode():
                loaded.model(tensors[:batch])  # warm
                tic = time.perf_counter()
                for start in range(0, len(tensors), batch):
                    loaded.model(tensors[start:start + batch])
                bare = len(tensors) / (time.perf_counter() - tic)
            print(f"  batch {batch:3d}: evaluate {report.images_per_s:6.1f} images/s ({default_workers()} loader worker(s)), bare loop over "
                  f"the same tensors {bare:6.1f} images/s: {report.images_per_s / bare:.0%}")
        common = ["evaluate", "--model", MODEL, "--weights", str(weights), "--data", str(tmp / "data"), "--batch-size",
                  "32", "--device", "cpu", "--no-progress", "--labels", str(labels)]
        run([*common, "--json", str(tmp / "one.json")], threads=2)
        run([*common, "--json", str(tmp / "two.json")], torchrun=2, threads=1)
        one, two = (json.loads((tmp / f"{n}.json").read_text()) for n in ("one", "two"))
        print(f"  torchrun, batch 32: 1 process × 2 threads {one['images_per_s']:.1f} images/s ({one['wall_s']:.1f} s), "
              f"2 processes × 1 thread {two['images_per_s']:.1f} images/s ({two['wall_s']:.1f} s): "
              f"{two['images_per_s'] / one['images_per_s']:.2f}x; top-1 {one['rows'][0]['top1']} vs "
              f"{two['rows'][0]['top1']}, {one['images']} vs {two['images']} images")
        for model, size, batch in (("demo_vit", 64, 32), ("vit_tiny_patch16_224", 224, 16)):
            extra = [] if model == "demo_vit" else ["--from-scratch"]
            tic = time.perf_counter()
            done = run(["train", "finetune", "--model", model, "--data", str(tmp / "data"), "--epochs", "1",
                        "--batch-size", str(batch), "--device", "cpu", "--no-progress",
                        "--out", str(tmp / f"ft_{model}.safetensors"), *extra])
            card = json.loads((tmp / f"ft_{model}.json").read_text())
            steps = -(-len(data) // batch)
            wall = card["finetune"]["wall_time_s"]
            print(f"  fine-tune {model} at {size} px, batch {batch}: {steps} steps in {wall:.1f} s = {steps / wall:.2f} "
                  f"steps/s ({len(data) / wall:.1f} images/s; whole command {time.perf_counter() - tic:.0f} s)")
            assert "wrote" in done.stdout


if __name__ == "__main__":
    main()
