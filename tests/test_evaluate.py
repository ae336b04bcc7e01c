"""``evaluate`` at scale: the folder layouts and how their names map to a model's classes, the
device choice (availability patched: no test needs a GPU), and real ``torchrun`` processes (gloo
on the CPU) whose totals equal one process's exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.core import devices
from explorer.core.errors import UserFacingError
from explorer.core.zoo import REPO_ROOT
from explorer.train.data import CLASS_NAMES, write_class_folders
from explorer.train.folders import class_mapping, read_folder


def imagenet_names() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


def wnids() -> list[str]:
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_names())


def tiny_png(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path)


# --------------------------------------------------------------------------- layouts and mapping

def test_class_folders_map_by_name_whatever_the_case_or_separators(tmp_path):
    for folder in ("Square", "circle", "hexagon"):
        tiny_png(tmp_path / folder / "a.png")
    tiny_png(tmp_path / "circle" / "b.jpeg")
    data = read_folder(tmp_path, CLASS_NAMES, 8)
    assert data.mapping == "by class name" and len(data) == 4
    by_file = {p.relative_to(tmp_path).as_posix(): label for p, label in zip(data.paths, data.labels)}
    assert by_file == {"Square/a.png": 1, "circle/a.png": 0, "circle/b.jpeg": 0, "hexagon/a.png": 6}
    # ImageNet's descriptions: a comma-separated synonym names the class where only one class has it;
    # an exact name wins over another class's synonym ("harp" is 594, not 593 "harmonica, …, harp")
    mapping, _ = class_mapping(["tench", "goldfish", "great_white_shark", "harp", "cardigan"], imagenet_names(), 1000)
    assert mapping == {"tench": 0, "goldfish": 1, "great_white_shark": 2, "harp": 594, "cardigan": 474}
    with pytest.raises(UserFacingError, match="crane name several classes"):  # 134 the bird, 517 the machine
        class_mapping(["crane"], imagenet_names(), 1000)
    with pytest.raises(UserFacingError, match="Folders Circle, circle name the same class"):
        class_mapping(["circle", "Circle"], CLASS_NAMES, 8)


def test_wordnet_folders_map_to_imagenet_order_and_a_stray_folder_is_named(tmp_path):
    ids = wnids()
    for wnid in (ids[0], ids[999], ids[500]):
        tiny_png(tmp_path / wnid / "x.JPEG")
    data = read_folder(tmp_path, imagenet_names(), 1000)
    assert data.mapping.startswith("by WordNet id") and sorted(data.labels) == [0, 500, 999]
    tiny_png(tmp_path / "giraffes" / "y.png")
    with pytest.raises(UserFacingError, match="giraffes"):
        read_folder(tmp_path, imagenet_names(), 1000)


def test_unnamed_classes_take_the_sorted_folder_order_only_when_the_counts_match(tmp_path):
    for folder in ("b", "a", "c"):
        tiny_png(tmp_path / folder / "x.png")
    data = read_folder(tmp_path, tuple(f"class {i}" for i in range(3)), 3)
    assert data.mapping.startswith("by sorted folder order")
    assert dict(zip((p.parent.name for p in data.paths), data.labels)) == {"a": 0, "b": 1, "c": 2}
    with pytest.raises(UserFacingError, match="4 unnamed classes and the data 3 folders"):
        read_folder(tmp_path, tuple(f"class {i}" for i in range(4)), 4)


def flat_val(tmp_path, labels: list[int]) -> list[str]:
    """A flat ImageNet val folder: ILSVRC2012_val_<n>.JPEG, n from 1; returns their WordNet ids."""
    ids = wnids()
    for n in range(1, len(labels) + 1):
        tiny_png(tmp_path / "val" / f"ILSVRC2012_val_{n:08d}.JPEG")
    return [ids[label] for label in labels]


def test_flat_val_with_kaggles_solution_file(tmp_path):
    truth = flat_val(tmp_path, [3, 7, 3])
    rows = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{n:08d},{w} 1 2 30 40 {w} 5 6 7 8"
                                           for n, w in enumerate(truth, 1)]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")  # in the parent: found there
    data = read_folder(tmp_path / "val", imagenet_names(), 1000)
    assert data.labels == (3, 7, 3) and "LOC_val_solution.csv" in data.layout


def test_flat_val_with_the_devkits_ids_and_its_synset_order(tmp_path):
    """The devkit numbers classes in its own order (ILSVRC2012_ID), not the sorted one models use."""
    ids = wnids()
    devkit_order = list(np.random.default_rng(0).permutation(ids))  # ID i+1 is devkit_order[i]
    flat_val(tmp_path, [0, 0, 0])  # images written; their labels come from the devkit file below
    want = [5, 999, 0]  # sorted-order indices of the classes we give them
    gt = [devkit_order.index(ids[k]) + 1 for k in want]
    (tmp_path / "val" / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(map(str, gt)) + "\n")
    with pytest.raises(UserFacingError, match="synset list"):
        read_folder(tmp_path / "val", imagenet_names(), 1000)
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("\n".join(f"{w} some name" for w in ids) + "\n")  # Caffe's sorted list: not the devkit's
    with pytest.raises(UserFacingError, match="sorted order"):
        read_folder(tmp_path / "val", imagenet_names(), 1000, synsets=synsets)
    synsets.write_text("\n".join(f"{w} some name" for w in devkit_order) + "\n")
    assert read_folder(tmp_path / "val", imagenet_names(), 1000, synsets=synsets).labels == tuple(want)
    from scipy.io import savemat  # the devkit's own data/meta.mat, found beside the images

    records = np.array([(i + 1, w) for i, w in enumerate(devkit_order)], dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    synsets.unlink()
    savemat(tmp_path / "meta.mat", {"synsets": records})
    assert read_folder(tmp_path / "val", imagenet_names(), 1000).labels == tuple(want)


def test_images_without_ground_truth_get_one_message(tmp_path):
    flat_val(tmp_path, [1])
    with pytest.raises(UserFacingError, match="no class folders"):
        read_folder(tmp_path / "val", imagenet_names(), 1000)


# --------------------------------------------------------------------------- devices

def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps") == devices.resolve_device("MPS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve_device(None) == torch.device("cuda", 0)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UserFacingError, match="2 CUDA device"):
        devices.resolve_device("cuda:2")
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert devices.app_device() == torch.device("cpu")


def test_a_device_that_is_not_there_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    for spec, words in (("cuda", "no usable CUDA"), ("cuda:0", "no usable CUDA"), ("mps", "no usable Apple MPS"),
                        ("tpu", "not one of"), ("cuda:x", "not one of")):
        with pytest.raises(UserFacingError, match=words):
            devices.resolve_device(spec)
    with pytest.raises(UserFacingError, match="bf16 or fp16"):
        devices.amp_dtype("fp8")
    from explorer.ui.page import prepare_server  # the app stops at start, with the one message

    monkeypatch.setenv("EXPLORER_DEVICE", "cuda:1")
    with pytest.raises(SystemExit, match="EXPLORER_DEVICE=cuda:1: this machine has no usable CUDA"):
        prepare_server()


# --------------------------------------------------------------------------- the command, alone and under torchrun

def run_explorer(args: list[str], torchrun: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(torchrun),
                 "--standalone"] if torchrun else [sys.executable])  # standalone: a free port of its own
    return subprocess.run([*launcher, "-m", "explorer", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    """35 generated images of 7 classes (an odd count: two processes cannot split it evenly)."""
    root = tmp_path_factory.mktemp("shapes")
    write_class_folders(root, per_class=5, seed=31337, size=64, classes=(0, 1, 2, 3, 4, 5, 7))
    return root


@pytest.mark.slow
def test_two_torchrun_processes_give_exactly_one_processs_results(shapes_folder, tmp_path):
    common = ["evaluate", "--model", "demo_vit", "--data", str(shapes_folder), "--workers", "0", "--batch-size", "8",
              "--device", "cpu", "--no-progress"]
    alone = run_explorer([*common, "--json", str(tmp_path / "one.json")])
    assert alone.returncode == 0, alone.stderr
    two = run_explorer([*common, "--json", str(tmp_path / "two.json")], torchrun=2)
    assert two.returncode == 0, two.stderr
    one, both = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert one["processes"] == 1 and both["processes"] == 2
    assert one["images"] == both["images"] == 35  # no padding duplicates: the folder's size exactly
    strip = [{k: r[k] for k in ("variant", "top1", "top5", "images")} for r in one["rows"]]
    assert strip == [{k: r[k] for k in ("variant", "top1", "top5", "images")} for r in both["rows"]]
    assert one["rows"][0]["top1"] > 80  # the demo ViT knows these shapes
    assert two.stdout.count("variant") == 1  # printed once, by rank 0
    assert "preprocessing: resize the short side to 64" in alone.stdout


@pytest.mark.slow
def test_the_flat_imagenet_layout_end_to_end_through_wordnet_ids(tmp_path):
    """A 1000-class timm ViT whose head always says class 500: top-1 is the share of images the
    ground truth labels 500, so the WordNet-id mapping is checked through the whole command."""
    import timm
    from safetensors.torch import save_file

    model = timm.create_model("vit_tiny_patch16_224", num_classes=1000)
    with torch.no_grad():
        model.head.bias[500] = 1e4
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "always500.safetensors")
    truth = flat_val(tmp_path, [500, 3, 500, 500])
    rows = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{n:08d},{w} 1 2 3 4" for n, w in enumerate(truth, 1)]
    (tmp_path / "val" / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    done = run_explorer(["evaluate", "--model", "vit_tiny_patch16_224", "--weights", str(tmp_path / "always500.safetensors"),
                         "--data", str(tmp_path / "val"), "--workers", "0", "--device", "cpu", "--no-progress",
                         "--json", str(tmp_path / "r.json")])
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 4 and report["rows"][0]["top1"] == 75.0 and "WordNet" in report["mapping"]


def test_a_bad_device_or_folder_is_one_line_not_a_traceback(tmp_path):
    done = run_explorer(["evaluate", "--model", "demo_vit", "--data", str(tmp_path / "nowhere"), "--device", "cpu"])
    assert done.returncode == 2 and "no such folder" in done.stderr and "Traceback" not in done.stderr
    done = run_explorer(["evaluate", "--model", "demo_vit", "--data", str(tmp_path), "--device", "tpu"])
    assert done.returncode == 2 and "not one of" in done.stderr and "Traceback" not in done.stderr


def test_bf16_autocast_on_the_cpu_keeps_the_demo_models_answers(shapes_folder):
    from explorer.core.weights import get_model
    from explorer.train.distributed import Group
    from explorer.train.evaluate import evaluate

    loaded = get_model("demo_vit", allow_download=False)
    data = read_folder(shapes_folder, loaded.class_names, 8)
    alone = Group(0, 1, 0, torch.device("cpu"))
    full, half = (evaluate(loaded, data, alone, batch_size=16, workers=0, amp=amp, progress=False) for amp in (None, "bf16"))
    assert half.amp == "bf16" and abs(half.rows[0].top1 - full.rows[0].top1) <= 100 * 2 / 35  # ≤ 2 answers differ


def test_converted_variants_score_in_the_same_pass_and_equal_the_original(shapes_folder, tmp_path):
    """CrossFormer's DPB -> RPB and SwinV2's CPB -> table are exact: same top-1 and top-5 rows."""
    from explorer.core.weights import get_model, load_model
    from explorer.train.distributed import Group
    from explorer.train.evaluate import evaluate

    alone = Group(0, 1, 0, torch.device("cpu"))
    crossformer = get_model("demo_crossformer", allow_download=False)
    data = read_folder(shapes_folder, crossformer.class_names, 8)
    report = evaluate(crossformer, data, alone, batch_size=16, workers=0, progress=False)
    assert [r.variant for r in report.rows] == ["as loaded", "DPB -> RPB"]
    assert (report.rows[0].top1, report.rows[0].top5) == (report.rows[1].top1, report.rows[1].top5)
    assert report.rows[0].top1 > 80 and report.images == 35
    (tmp_path / "none").mkdir()  # no checkpoints: SwinV2-T with random weights, 4 of the images
    swinv2 = load_model("swinv2_tiny_window8_256", allow_download=False, checkpoint_dir=tmp_path / "none",
                        device=torch.device("cpu"))
    some = read_folder(shapes_folder, (*CLASS_NAMES, *(f"other {i}" for i in range(992))), 1000)
    some = type(some)(some.paths[::9], some.labels[::9], some.layout, some.mapping, some.class_names)
    report = evaluate(swinv2, some, alone, batch_size=4, workers=0, progress=False)
    assert [r.variant for r in report.rows] == ["as loaded", "CPB -> table"] and report.images == 4
    assert (report.rows[0].top1, report.rows[0].top5) == (report.rows[1].top1, report.rows[1].top5)
