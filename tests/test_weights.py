"""Where weights come from, and that no checkpoint can run code or load silently wrong."""

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from explorer.core.cache import LRUCache
from explorer.core.weights import WeightsError, build_model, load_model, read_state_dict
from explorer.core.zoo import HUB_ENTRIES, all_entries, get_entry

ENTRY = replace(HUB_ENTRIES[0], model_kwargs=MappingProxyType(
    {"img_size": 32, "depth": 1, "dynamic_img_size": True}))


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def trained_state():
    model = build_model(ENTRY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # differs from the seed-0 random init
    return model.state_dict()


class Evil:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_local_safetensors_wins(tmp_path, trained_state):
    save_file(trained_state, tmp_path / f"{ENTRY.key}.safetensors")
    loaded = load_model(ENTRY, allow_download=False, checkpoint_dir=tmp_path)
    assert loaded.source == "file" and loaded.banner is None
    torch.testing.assert_close(loaded.model.state_dict()["head.weight"], trained_state["head.weight"])


def test_plain_torch_state_dict_under_model_key(tmp_path, trained_state):
    path = tmp_path / "weights.pth"
    torch.save({"model": trained_state, "epoch": 3}, path)
    assert set(read_state_dict(path)) == set(trained_state)


def test_pickled_code_is_refused_and_never_runs(tmp_path, trained_state):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": trained_state, "payload": Evil(marker)}, path)
    with pytest.raises(WeightsError, match="arbitrary code"):
        load_model(ENTRY, weights_file=path, allow_download=False)
    assert not marker.exists()


def test_official_checkpoint_with_yacs_config(tmp_path, trained_state, monkeypatch):
    """Official Swin/CrossFormer checkpoints carry a yacs CfgNode: read as plain data."""
    import sys
    import types

    yacs, config = types.ModuleType("yacs"), types.ModuleType("yacs.config")

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    config.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, "yacs", yacs)
    monkeypatch.setitem(sys.modules, "yacs.config", config)
    path = tmp_path / "crossformer-t.pth"
    torch.save({"model": trained_state, "config": CfgNode(MODEL=CfgNode(TYPE="cross-scale")),
                "epoch": 299}, path)
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")
    assert set(read_state_dict(path)) == set(trained_state)


def test_wrong_shapes_are_named(tmp_path, trained_state):
    state = dict(trained_state)
    state["blocks.0.mlp.fc1.weight"] = torch.zeros(7, state["blocks.0.mlp.fc1.weight"].shape[1])
    path = tmp_path / "wrong.safetensors"
    save_file(state, path)
    with pytest.raises(WeightsError, match="blocks.0.mlp.fc1.weight") as err:
        load_model(ENTRY, weights_file=path, allow_download=False)
    assert "(7," in str(err.value) and err.value.message("zh")


def test_another_number_of_classes_comes_from_the_head(tmp_path, trained_state):
    """A fine-tuned head (7 classes here) needs no flag: the classifier is sized from the file."""
    state = dict(trained_state)
    state["head.weight"] = torch.randn(7, state["head.weight"].shape[1])
    state["head.bias"] = torch.randn(7)
    path = tmp_path / "seven.safetensors"
    save_file(state, path)
    loaded = load_model(ENTRY, weights_file=path, allow_download=False)
    assert loaded.model.num_classes == 7 and loaded.class_names == tuple(f"class {i}" for i in range(7))
    torch.testing.assert_close(loaded.model.head.weight, state["head.weight"])
    assert "7 classes" in loaded.banner.en and "7 类" in loaded.banner.zh
    headless = {k: v for k, v in trained_state.items() if not k.startswith("head.")}
    save_file(headless, tmp_path / "backbone.safetensors")
    assert load_model(ENTRY, weights_file=tmp_path / "backbone.safetensors").model.num_classes == 0


def test_missing_keys_are_named(tmp_path, trained_state):
    state = {k: v for k, v in trained_state.items() if not k.startswith("blocks.0.mlp")}
    path = tmp_path / "partial.safetensors"
    save_file(state, path)
    with pytest.raises(WeightsError, match="missing .*blocks.0.mlp"):
        load_model(ENTRY, weights_file=path, allow_download=False)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_checkpoint(tmp_path, trained_state, suffix):
    path = tmp_path / f"full{suffix}"
    save_file(trained_state, path) if suffix == ".safetensors" else torch.save(trained_state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        read_state_dict(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(WeightsError):
        read_state_dict(path)


def test_mae_decoder_keys_are_not_fed_to_timm(tmp_path, trained_state):
    state = dict(trained_state, mask_token=torch.zeros(1, 1, 8), **{"decoder_embed.weight": torch.zeros(8, 8)})
    path = tmp_path / "mae.safetensors"
    save_file(state, path)
    loaded = load_model(ENTRY, weights_file=path, allow_download=False)
    assert loaded.source == "file"


def test_offline_banner_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr("explorer.core.weights.stand_in_for", lambda entry: None)
    loaded = load_model(ENTRY, allow_download=False, checkpoint_dir=tmp_path)
    assert loaded.source == "random" and loaded.banner.level == "warning"
    url = f"https://huggingface.co/timm/{ENTRY.key}/resolve/main/model.safetensors"
    assert url in loaded.banner.en and url in loaded.banner.zh
    assert str(tmp_path / f"{ENTRY.key}.safetensors") in loaded.banner.en
    assert "RANDOM" in loaded.banner.en


def test_hf_endpoint_mirror_is_named():
    """HF_ENDPOINT is read when huggingface_hub is imported, as a user sets it: a fresh process."""
    import subprocess
    import sys

    script = ("from explorer.core.weights import download_instructions; from explorer.core.zoo import get_entry; "
              f"print('\\n'.join(download_instructions(get_entry({ENTRY.key!r}))))")
    env = {**os.environ, "HF_ENDPOINT": "https://hf-mirror.example", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    en, zh = out.strip().split("\n")
    assert f"https://hf-mirror.example/timm/{ENTRY.key}/resolve/main/model.safetensors" in en
    assert "hf-mirror.example" in zh


def test_random_init_is_deterministic():
    a, b = build_model(ENTRY), build_model(ENTRY)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(va, vb)


def test_every_zoo_entry_builds_with_its_prefix_tokens():
    expected_prefix = {"deit_small_distilled_patch16_224.fb_in1k": 2,
                       "vit_small_patch14_reg4_dinov2.lvd142m": 5}
    for entry in all_entries():
        if entry.family not in ("vit", "dino"):
            continue
        model = build_model(entry)
        assert model.num_prefix_tokens == expected_prefix.get(entry.key, 1), entry.key
        assert get_entry(entry.key) is not None
    assert get_entry("vit_small_patch8_224.dino").family == "dino"  # the demo DINO stands in for it


class TestLRUCache:
    def test_evicts_by_count_then_bytes(self):
        cache = LRUCache(max_items=3, max_bytes=3000)
        for i in range(4):
            cache.put(i, np.zeros(100, dtype=np.uint8))
        assert 0 not in cache and len(cache) == 3
        cache.get(1)  # most recently used now
        cache.put("big", np.zeros(2900, dtype=np.uint8))
        assert "big" in cache and 1 in cache and 2 not in cache

    def test_get_or_create_runs_factory_once_per_key(self):
        cache = LRUCache(max_items=4)
        calls = []

        def factory():
            calls.append(1)
            time.sleep(0.05)
            return "value"

        threads = [threading.Thread(target=cache.get_or_create, args=("k", factory)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert calls == [1] and cache.get("k") == "value"



@pytest.mark.parametrize("key, demo", [("swin_tiny_patch4_window7_224.ms_in1k", "demo_swin"),
                                       ("crossformer_tiny", "demo_crossformer"),
                                       ("twins_svt_small.in1k", "demo_twins"),
                                       ("twins_pcpvt_small.in1k", "demo_twins"),
                                       ("vit_small_patch16_224.augreg_in21k_ft_in1k", "demo_vit"),
                                       ("vit_small_patch16_224.dino", "demo_dino"),
                                       ("mae_visualize_vit_base", "demo_mae")])
def test_offline_official_model_is_shown_through_its_bundled_demo(key, demo):
    """No weights on disk and no hub: the page shows the trained demo of that family, and the
    banner still says which file to put where."""
    loaded = load_model(get_entry(key), allow_download=False)
    assert loaded.source == "bundled"
    assert tuple(loaded.data_config["input_size"]) == tuple(get_entry(demo).card["input_size"])  # 64 px demo
    assert loaded.banner.level == "warning" and "checkpoints" in loaded.banner.en
    assert get_entry(demo).label_en in loaded.banner.en


# ------------------------------------------------------------ broken files fall back truthfully


@pytest.fixture
def demo_dir(tmp_path):
    """A checkpoints folder with the bundled demo ViT in it (and its card)."""
    import shutil

    from explorer.core.zoo import CHECKPOINT_DIR

    for name in ("demo_vit.safetensors", "demo_vit.json"):
        shutil.copy(CHECKPOINT_DIR / name, tmp_path / name)
    return tmp_path


def test_a_broken_local_file_falls_back_like_a_missing_one(demo_dir, tmp_path):
    """Pickled code in checkpoints/: refused, never run, the demo is shown, the banner says why."""
    marker = tmp_path / "code_ran"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil(marker)}, demo_dir / f"{ENTRY.key}.pth")
    loaded = load_model(ENTRY, allow_download=False, checkpoint_dir=demo_dir)
    assert not marker.exists()
    assert loaded.source == "bundled" and loaded.shown.key == "demo_vit"
    en, zh = loaded.banner.en, loaded.banner.zh
    assert en.startswith("Showing the bundled Demo ViT") and zh.startswith("现在显示的是内置的")
    assert f"{ENTRY.key}.pth contains pickled Python objects" in en and "arbitrary code" in en
    assert "downloads are off" in en and "LocalEntryNotFoundError" not in en
    assert f"{ENTRY.key}.pth" in zh and "任意代码" in zh
    # every sentence is whole: none is cut mid-word as the old 160-character excerpt was
    assert all(sentence.rstrip().endswith((".", ")", "`")) for sentence in en.split(". ")[-1:])


@pytest.mark.parametrize("damage", ["truncated", "wrong architecture"])
def test_a_broken_bundled_demo_falls_back_to_random_and_says_so(demo_dir, trained_state, damage):
    demo = demo_dir / "demo_vit.safetensors"
    if damage == "truncated":
        demo.write_bytes(demo.read_bytes()[:500])
    else:
        save_file(trained_state, demo)  # a valid file of another shape
    shown_for_hub = load_model(ENTRY, allow_download=False, checkpoint_dir=demo_dir)
    assert shown_for_hub.source == "random" and shown_for_hub.shown.key == ENTRY.key
    assert "RANDOM" in shown_for_hub.banner.en and "demo_vit.safetensors" in shown_for_hub.banner.en
    demo_itself = load_model(get_entry("demo_vit"), allow_download=False, checkpoint_dir=demo_dir)
    assert demo_itself.source == "random" and "demo_vit.safetensors" in demo_itself.banner.en
    assert ("not a readable checkpoint" if damage == "truncated" else "does not match") in demo_itself.banner.en


def test_check_weight_file_reads_headers_only(tmp_path, trained_state, monkeypatch):
    from explorer.core.weights import check_weight_file

    good = tmp_path / "good.safetensors"
    save_file(trained_state, good)
    monkeypatch.setattr("safetensors.torch.load_file", lambda *a, **k: pytest.fail("tensors were loaded"))
    assert check_weight_file(ENTRY, good) is None
    fc1 = "blocks.0.mlp.fc1.weight"
    wrong = dict(trained_state, **{fc1: torch.zeros(7, trained_state[fc1].shape[1])})
    save_file(wrong, tmp_path / "wrong.safetensors")
    assert fc1 in check_weight_file(ENTRY, tmp_path / "wrong.safetensors").message_en
    # another number of classes is not an error: the classifier is sized from the file
    seven = dict(trained_state, **{"head.weight": torch.zeros(7, trained_state["head.weight"].shape[1]),
                                   "head.bias": torch.zeros(7)})
    save_file(seven, tmp_path / "seven.safetensors")
    assert check_weight_file(ENTRY, tmp_path / "seven.safetensors") is None
    torch.save({"state_dict": trained_state}, tmp_path / "good.pth")
    assert check_weight_file(ENTRY, tmp_path / "good.pth") is None
    (tmp_path / "junk.pth").write_bytes(b"junk")
    assert "not a readable checkpoint" in check_weight_file(ENTRY, tmp_path / "junk.pth").message_en


def test_a_file_put_into_checkpoints_is_loaded_on_the_next_request(tmp_path, monkeypatch, trained_state):
    """The model cache keys on the files a load would read: a fallback does not stay cached."""
    from explorer.core import weights

    monkeypatch.setattr(weights, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(weights, "get_entry", lambda key: ENTRY)
    monkeypatch.setattr(weights, "stand_in_for", lambda entry: None)
    weights._MODELS.clear()
    first = weights.get_model(ENTRY.key, allow_download=False)
    assert first.source == "random"
    save_file(trained_state, tmp_path / f"{ENTRY.key}.safetensors")
    second = weights.get_model(ENTRY.key, allow_download=False)
    assert second.source == "file" and second is not first
    weights._MODELS.clear()


def test_page_and_api_share_one_loaded_model_when_downloads_change_nothing():
    from explorer.core import weights

    weights._MODELS.clear()
    page = weights.get_model("demo_vit", allow_download=True)
    api = weights.get_model("demo_vit", allow_download=False)
    assert page is api and len(weights._MODELS) == 1
    weights._MODELS.clear()


def test_cards_are_read_once_and_again_when_they_change(tmp_path, monkeypatch):
    import json
    import shutil

    from explorer.core import zoo
    from explorer.core.zoo import CHECKPOINT_DIR, demo_entries

    for name in ("demo_vit.json", "demo_vit.safetensors"):
        shutil.copy(CHECKPOINT_DIR / name, tmp_path / name)
    reads = []
    real = zoo._demo_entry
    monkeypatch.setattr(zoo, "_demo_entry", lambda path: reads.append(path) or real(path))
    first = demo_entries(tmp_path)
    assert demo_entries(tmp_path) == first and len(reads) == 1
    card = json.loads((tmp_path / "demo_vit.json").read_text())
    card["name"] = "Renamed demo"
    (tmp_path / "demo_vit.json").write_text(json.dumps(card))
    assert demo_entries(tmp_path)[0].label_en == "Renamed demo" and len(reads) == 2
    (tmp_path / "demo_vit.json").write_text('{"half-written": ')  # a card being rewritten
    assert demo_entries(tmp_path)[0].label_en == "Renamed demo"  # the last good reading, not an error
    monkeypatch.setattr(zoo, "_CARDS", {})
    assert demo_entries(tmp_path) == ()  # never read well: skipped with a warning
