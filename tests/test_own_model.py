"""A checkpoint uploaded to the page for one session: what it is opened as, what travels with it
(labels, card, a preprocessing preset), the bounds a public server keeps, and that only its
session reaches it. Nothing is downloaded: generated checkpoints in a temporary upload folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import gradio as gr
import pytest
import torch
from safetensors.torch import save_file

from explorer.core.images import load_image
from explorer.core.uploaded import Found, Upload, UploadStore, UPLOADS
from explorer.core.weights import build_model
from explorer.core.zoo import REPO_ROOT, get_entry
from explorer.lenses.attention.compute import analyze
from explorer.lenses.registry import lens_analysis, lens_model, lens_source
from explorer.ui import own_model

CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """Gradio's upload folder for this test (files are put where Gradio puts uploads)."""
    root = tmp_path / "gradio"
    root.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    return root


def uploaded(root: Path, name: str, write) -> str:
    folder = root / f"{abs(hash(name)):032x}"[:32]
    folder.mkdir(exist_ok=True)
    path = folder / name
    write(path)
    return str(path)


def checkpoint(root: Path, name: str = "my_cifar_vit.safetensors", key: str = "demo_vit", classes: int = 10) -> str:
    model = build_model(get_entry(key), num_classes=classes)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return uploaded(root, name, lambda path: save_file(state, path))


def labels_of(root: Path) -> str:
    return uploaded(root, "labels.txt", lambda p: p.write_text("\n".join(CIFAR), encoding="utf-8"))


def message(call) -> str:
    with pytest.raises(gr.Error) as err:
        call()
    return str(err.value)


def test_an_uploaded_checkpoint_opens_with_its_labels_and_a_preset_for_its_session_only(uploads):
    weights = checkpoint(uploads)
    labels = uploaded(uploads, "labels.txt", lambda p: p.write_text("\n".join(CIFAR), encoding="utf-8"))
    record, status = own_model.open_checkpoint(weights, labels, "auto", "cifar10", None, session="s1", lang="en")
    token = record["token"]
    assert record["architecture"] == "demo_vit" and {"attention", "dino"} <= set(record["lenses"])
    assert "my_cifar_vit.safetensors" in status and "10 classes (names from labels.txt)" in status
    assert "preprocessing from CIFAR-10" in status
    entry, path, card = lens_source("attention", token)
    assert entry.key == "demo_vit" and path == weights and card.class_names == CIFAR
    loaded = lens_model("attention", token, allow_download=False)
    assert loaded.class_names == CIFAR and tuple(loaded.data_config["mean"]) == CIFAR_MEAN
    image = load_image(REPO_ROOT / "assets" / "synthetic" / sorted((REPO_ROOT / "assets" / "synthetic").iterdir())[0].name)
    shown, analysis = lens_analysis("attention", image, token, "model", False, analyze)
    assert {p.label for p in analysis.predictions} <= set(CIFAR) and len(analysis.predictions) == 5
    # each use keeps the upload alive for the folder's cleaning (its ctime) but is the same weights:
    # the next control redraws from the cache, it does not load the model again
    before = Path(weights).stat()
    time.sleep(0.01)
    assert lens_analysis("attention", image, token, "model", False, analyze)[1] is analysis
    after = Path(weights).stat()
    assert after.st_mtime_ns == before.st_mtime_ns and after.st_ctime_ns > before.st_ctime_ns
    assert lens_model("attention", token, allow_download=False) is loaded  # the same loaded model
    # another preset is another model and another result, under the same token
    again, _ = own_model.open_checkpoint(weights, labels, "auto", "half", record, session="s1", lang="en")
    assert again["token"] == token and again["revision"] == record["revision"] + 1
    other, analysis_half = lens_analysis("attention", image, token, "model", False, analyze)
    assert tuple(other.data_config["mean"]) == (0.5, 0.5, 0.5) and other.weights_id != shown.weights_id
    assert analysis_half is not analysis
    # in Chinese too; and a closed session takes the checkpoint and its file with it
    assert "已打开" in own_model.status_markdown(again, "zh") and "类别名来自 labels.txt" in own_model.status_markdown(again, "zh")
    UPLOADS.drop_session("s1")
    assert not Path(weights).exists()
    with pytest.raises(Exception, match="no longer on this server"):
        lens_source("attention", token)


def test_the_architecture_comes_from_the_box_the_card_or_the_keys_and_a_misfit_names_what_differs(uploads):
    weights = checkpoint(uploads, "tiny.safetensors", key="vit_tiny_patch16_224")
    said = message(lambda: own_model.open_checkpoint(weights, None, "auto", "default", None, session="s2", lang="en"))
    assert "fits none of the listed architectures" in said and "Give its architecture" in said
    assert "The closest is" in said and "wrong shapes" in said  # what was expected and what was found
    record, status = own_model.open_checkpoint(weights, None, "vit_tiny_patch16_224", "default", None,
                                               session="s2", lang="en")
    assert record["architecture"].startswith("vit_tiny_patch16_224") and "as given" in status  # timm's default tag
    card = uploaded(uploads, "tiny.json", lambda p: p.write_text(json.dumps(
        {"timm_model": "vit_tiny_patch16_224", "class_names": list(CIFAR), "mean": list(CIFAR_MEAN),
         "std": [0.247, 0.2435, 0.2616]})))
    record, status = own_model.open_checkpoint(weights, card, "auto", "default", record, session="s2", lang="en")
    assert "named by tiny.json" in status and "preprocessing from tiny.json" in status
    assert lens_model("attention", record["token"], False).class_names == CIFAR
    assert "No lens reads resnet18" in message(lambda: own_model.open_checkpoint(
        weights, None, "resnet18", "default", None, session="s2", lang="en"))
    wrong = uploaded(uploads, "five.txt", lambda p: p.write_text("a\nb\nc\nd\ne\n"))
    _, said = own_model.open_checkpoint(weights, wrong, "vit_tiny_patch16_224", "default", None, session="s2", lang="en")
    assert "five.txt names 5 classes, but the model has 10" in said and "not used" in said
    zh = message(lambda: own_model.open_checkpoint(weights, None, "auto", "default", None, session="s2", lang="zh"))
    assert "不吻合" in zh
    # names for another number of classes (the previous checkpoint's) are left out, and said so
    eight = checkpoint(uploads, "seven.safetensors", classes=7)
    record, status = own_model.open_checkpoint(eight, labels_of(uploads), "auto", "cifar10", record,
                                               session="s2", lang="en")
    assert "labels.txt names 10 classes, but the model has 7" in status and "not used" in status
    loaded = lens_model("attention", record["token"], False)
    assert loaded.class_names == tuple(f"class {i}" for i in range(7)) and tuple(loaded.data_config["mean"]) == CIFAR_MEAN
    # a file the folder's cleaning took is named for what it is
    Path(eight).unlink()
    assert "checkpoint is not among this server's uploads" in message(lambda: own_model.open_checkpoint(
        eight, None, "auto", "default", record, session="s2", lang="en"))
    UPLOADS.drop_session("s2")


def test_a_torchvision_vit_is_found_from_its_keys(uploads):
    import torchvision

    from explorer.core.uploaded import find_architecture

    tv = torchvision.models.vit_b_32(weights=None, image_size=64)
    tv.heads = torch.nn.Linear(768, 10)  # as the notes do
    path = Path(uploaded(uploads, "cifar.pth", lambda p: torch.save(tv.state_dict(), p)))
    found = find_architecture(path, path.name, ())
    assert found.entry.key == "vit_b_32" and "torchvision's vit_b_32" in found.how_en


def test_only_uploads_within_the_bounds_are_opened_and_refused_ones_are_not_kept(uploads, monkeypatch):
    weights = checkpoint(uploads, "big.safetensors")
    monkeypatch.setattr(own_model, "MAX_CHECKPOINT_BYTES", 2**20)
    said = message(lambda: own_model.open_checkpoint(weights, None, "auto", "default", None, session="s3", lang="en"))
    assert "up to 1 MB" in said and not Path(weights).exists()
    monkeypatch.setattr(own_model, "MAX_CHECKPOINT_BYTES", 0)
    off = checkpoint(uploads, "off.safetensors")
    assert "does not open uploaded checkpoints" in message(lambda: own_model.open_checkpoint(
        off, None, "auto", "default", None, session="s3", lang="en"))
    monkeypatch.setattr(own_model, "MAX_CHECKPOINT_BYTES", 400 * 2**20)
    picture = uploaded(uploads, "photo.png", lambda p: shutil.copy(next((REPO_ROOT / "assets" / "synthetic").iterdir()), p))
    assert "is not a checkpoint" in message(lambda: own_model.open_checkpoint(
        picture, None, "auto", "default", None, session="s3", lang="en"))
    # a file that did not come through the upload route is not read, and never deleted
    for outside in (REPO_ROOT / "checkpoints" / "demo_vit.safetensors", next((REPO_ROOT / "assets" / "synthetic").iterdir())):
        assert "not among this server's uploads" in message(lambda: own_model.open_checkpoint(
            str(outside), None, "auto", "default", None, session="s3", lang="en"))
        assert outside.exists()
    # a session's opened checkpoint, named by someone as an image, is refused but kept
    held = checkpoint(uploads, "held.safetensors")
    record, _ = own_model.open_checkpoint(held, None, "auto", "default", None, session="s4", lang="en")
    monkeypatch.setattr("explorer.ui.uploads.MAX_FILE_BYTES", 1000)
    from explorer.core.images import ImageInputError
    from explorer.ui.uploads import open_uploaded_image

    with pytest.raises(ImageInputError):
        open_uploaded_image(held)
    assert Path(held).exists()
    UPLOADS.drop_session("s4")
    pickled = uploaded(uploads, "evil.pth", lambda p: torch.save({"state_dict": {"w": torch.ones(1)}, "f": print}, p))
    assert "arbitrary code" in message(lambda: own_model.open_checkpoint(
        pickled, None, "vit_tiny_patch16_224", "default", None, session="s3", lang="en"))


def _upload(tmp_path: Path, session: str, name: str, size: int = 10) -> Upload:
    path = tmp_path / name
    path.write_bytes(b"x" * size)
    found = Found(get_entry("demo_vit"), "", "")
    return Upload(session=session, file_name=name, path=path, size=size, found=found)


def test_the_store_keeps_one_checkpoint_a_session_within_its_bounds_and_deletes_what_it_lets_go(tmp_path):
    store = UploadStore(max_items=2, max_bytes=25, ttl_s=100)
    a1, a2, b, c = (_upload(tmp_path, s, n) for s, n in (("a", "a1"), ("a", "a2"), ("b", "b"), ("c", "c")))
    store.put("ta", a1, now=0)
    store.put("ta2", a2, now=1)  # the same session's new upload replaces its old one
    assert store.get("ta", now=2) is None and not a1.path.exists() and store.get("ta2", now=2) == a2
    store.put("tb", b, now=3)
    store.put("tc", c, now=4)  # a third: the least recently used (a's) goes, with its file
    assert store.get("ta2", now=5) is None and not a2.path.exists() and len(store) == 2
    big = _upload(tmp_path, "d", "d", size=20)
    store.put("td", big, now=6)  # 10 + 20 bytes > 25: the oldest goes
    assert store.get("tb", now=6) is None and store.get("tc", now=6) is None and store.get("td", now=6) == big
    assert store.get("td", now=200) is None and not big.path.exists()  # unused for longer than the TTL
    kept = _upload(tmp_path, "e", "shared")
    store.put("te", kept, now=300)
    store.put("tf", Upload("f", "shared", kept.path, 10, kept.found), now=301)  # the same file, another session
    store.drop_session("e")
    assert kept.path.exists() and store.get("tf", now=302) is not None  # still named by f's record
    store.drop_session("f")
    assert not kept.path.exists()
