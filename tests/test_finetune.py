"""``train finetune`` on a folder of generated images, on the CPU: a tiny run learns above chance,
its card makes it open with its class names (evaluated again by name, it scores the same), it
resumes from its per-epoch checkpoint, and it runs under torchrun (DDP, gloo) as well as alone."""

from __future__ import annotations

import json

import pytest

from explorer.train.data import write_class_folders
from test_evaluate import run_explorer

pytestmark = pytest.mark.slow
CLASSES = (0, 1, 2, 3)  # circle, square, triangle, star: chance is 25%


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    write_class_folders(root / "train", per_class=24, seed=5151, size=64, classes=CLASSES)
    write_class_folders(root / "val", per_class=10, seed=6161, size=64, classes=CLASSES)
    return root


def finetune(folders, out, *extra, torchrun: int = 0, env=None):
    return run_explorer(["train", "finetune", "--model", "demo_vit", "--data", str(folders / "train"),
                         "--val", str(folders / "val"), "--batch-size", "16", "--workers", "0", "--device", "cpu",
                         "--no-progress", "--out", str(out), *extra], torchrun=torchrun, env=env)


@pytest.fixture(scope="module")
def two_epochs(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh") / "checkpoints" / "my_shapes.safetensors"
    done = finetune(folders, out, "--epochs", "2")
    assert done.returncode == 0, done.stderr
    return out


def test_a_tiny_run_learns_and_opens_with_its_class_names(folders, two_epochs, tmp_path):
    out = two_epochs
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["class_names"] == ["circle", "square", "star", "triangle"] and card["num_classes"] == 4
    assert card["model_kwargs"]["num_classes"] == 4 and card["finetune"]["processes"] == 1
    history = card["finetune"]["history"]
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["val_top1"] > 50  # chance: 25
    # the app's own loading path finds it in checkpoints/ by name, with its labels
    again = run_explorer(["evaluate", "--model", "my_shapes", "--data", str(folders / "val"), "--workers", "0",
                          "--device", "cpu", "--no-progress", "--json", str(tmp_path / "r.json")],
                         env={"EXPLORER_CHECKPOINTS": str(out.parent)})
    assert again.returncode == 0, again.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mapping"] == "by class name" and report["rows"][0]["top1"] == history[-1]["val_top1"]


def test_it_resumes_from_the_last_epoch_on_the_new_schedule(folders, two_epochs, tmp_path):
    """One epoch, then --resume with --epochs 2: epoch 2 starts at the learning rate a 2-epoch run
    has there (the schedule follows this run's arguments, not the saved one's end)."""
    out = tmp_path / "resumed.safetensors"
    assert finetune(folders, out, "--epochs", "1").returncode == 0
    first = json.loads(out.with_suffix(".json").read_text())["finetune"]["history"]
    done = finetune(folders, out, "--epochs", "2", "--resume")
    assert done.returncode == 0, done.stderr
    history = json.loads(out.with_suffix(".json").read_text())["finetune"]["history"]
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]
    assert "epoch 1," not in done.stdout and "epoch 2," in done.stdout  # epoch 1 was not run again
    fresh = json.loads(two_epochs.with_suffix(".json").read_text())["finetune"]["history"]
    assert history[1]["lr_start"] == pytest.approx(fresh[1]["lr_start"]) and history[1]["lr_start"] > 1e-5
    done = finetune(folders, out, "--epochs", "3", "--resume", "--amp", "bf16")
    assert done.returncode == 2 and "resume with the same" in done.stderr


def test_two_torchrun_processes_fine_tune_together(folders, tmp_path):
    out = tmp_path / "ddp.safetensors"
    done = finetune(folders, out, "--epochs", "1", torchrun=2)
    assert done.returncode == 0, done.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["finetune"]["processes"] == 2 and done.stdout.count("wrote ") == 1


def test_what_cannot_be_fine_tuned_is_said_in_one_line(folders, tmp_path):
    done = run_explorer(["train", "finetune", "--model", "vit_base_patch16_224", "--data", str(folders / "train"),
                         "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "x.safetensors")])
    assert done.returncode == 2 and "No weights for vit_base_patch16_224" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_explorer(["train", "finetune", "--model", "demo_vit", "--data", str(folders / "train" / "circle"),
                         "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "x.safetensors")])
    assert done.returncode == 2 and "one folder of images per class" in done.stderr
    done = run_explorer(["train", "finetune", "--model", "demo_vit", "--data", str(folders / "train"), "--epochs", "1",
                         "--device", "cpu", "--out", str(tmp_path / "vit_small_patch16_224.safetensors")])
    assert done.returncode == 2 and "already names a model" in done.stderr
