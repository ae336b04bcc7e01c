"""`python -m explorer export attention` writes what the issue promises, without a browser."""

import subprocess
import sys

import numpy as np

from explorer.cli import main
from explorer.core.zoo import REPO_ROOT, entries_for


def test_export_attention_npz_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = entries_for(("vit",))[0]
    out = tmp_path / "att.npz"
    code = main(["export", "attention", "--model", entry.key, "--image",
                 str(REPO_ROOT / "assets" / "examples" / "chelsea.jpg"), "--out", str(out),
                 "--figures", str(tmp_path / "figs")])
    assert code == 0
    data = np.load(out)
    layers, heads, n, n2 = data["attention"].shape
    rows, cols = data["grid"]
    assert data["attention"].dtype == np.float32 and n == n2 == rows * cols + int(data["num_prefix_tokens"])
    assert data["logits"].ndim == 1
    np.testing.assert_allclose(data["attention"].sum(-1), 1, atol=1e-4)
    assert data["rollout_mean"].shape == (n, n) and data["mean_distance"].shape == (layers, heads)
    figs = tmp_path / "figs"
    assert {p.name for p in figs.iterdir()} >= {"attention.png", "rollout.png", "attention.html",
                                                 "matrix.html", "mean_distance.html", "plotly.min.js"}
    assert "cdn.plot.ly" not in (figs / "attention.html").read_text()


def test_bad_image_gives_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "explorer", "export", "attention", "--model",
                             entries_for(("vit",))[0].key, "--image", str(bad), "--out",
                             str(tmp_path / "x.npz")], capture_output=True, text=True,
                            cwd=REPO_ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_unknown_model(capsys):
    assert main(["export", "attention", "--model", "nope", "--image", "x.png", "--out", "x.npz"]) == 2
    assert "unknown model" in capsys.readouterr().err


def offline_official_architecture(monkeypatch):
    """No hub. Offline, a missing official model is shown through its bundled demo stand-in;
    these tests pin the official architecture's geometry, so they take its random-init fallback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("explorer.core.weights.stand_in_for", lambda entry: None)


def test_export_swin_masks_and_tables(tmp_path, monkeypatch):
    offline_official_architecture(monkeypatch)
    out = tmp_path / "swin.npz"
    assert main(["export", "swin", "--model", "swin_tiny_patch4_window7_224.ms_in1k", "--image",
                 str(REPO_ROOT / "assets" / "examples" / "coffee.jpg"), "--out", str(out)]) == 0
    data = np.load(out)
    assert data["stage0_block1_mask"].shape == (64, 49, 49)
    assert set(np.unique(data["stage0_block1_mask"])) == {0.0, -100.0}
    assert "stage0_block0_mask" not in data  # regular blocks have no mask
    np.testing.assert_allclose(data["stage0_block1_probs"].sum(-1), 1, atol=1e-4)
    assert list(data["stage0_block1_geometry"]) == [56, 56, 7, 7, 3, 3, 0, 0]


def test_convert_dpb_is_exact(tmp_path, capsys):
    import torch

    from explorer.core.weights import read_state_dict
    from explorer.models.crossformer import crossformer_tiny

    torch.manual_seed(0)
    torch.save({"model": crossformer_tiny(num_classes=10).state_dict()}, tmp_path / "cf.pth")
    assert main(["convert-dpb", str(tmp_path / "cf.pth"), str(tmp_path / "rpb.safetensors"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    diff = float(printed.split("images: ")[1].split()[0])
    assert diff <= 1e-5
    converted = read_state_dict(tmp_path / "rpb.safetensors")
    assert not any(".pos." in k for k in converted)
    assert any(k.endswith("relative_position_bias_table") for k in converted)


def test_export_bias_crossformer_dpb_equals_rpb(tmp_path, monkeypatch, capsys):
    offline_official_architecture(monkeypatch)
    out = tmp_path / "bias.npz"
    assert main(["export", "bias", "--model", "crossformer_tiny", "--out", str(out)]) == 0
    data = np.load(out)
    dpb, rpb = data["stage0_block0_dpb_table_G7"], data["stage0_block0_converted_rpb_table"]
    assert dpb.shape == rpb.shape == (169, 2)
    np.testing.assert_array_equal(dpb, rpb)
    assert data["stage0_block0_relative_position_index"].shape == (49, 49)
    assert "max |Δ| = 0" in capsys.readouterr().out


def test_export_crossformer_groups(tmp_path, monkeypatch):
    offline_official_architecture(monkeypatch)
    out = tmp_path / "cf.npz"
    assert main(["export", "crossformer", "--model", "crossformer_tiny", "--image",
                 str(REPO_ROOT / "assets" / "examples" / "coffee.jpg"), "--out", str(out)]) == 0
    data = np.load(out)
    kinds = list(data["block_kinds"])
    assert "SDA" in " ".join(map(str, kinds)) and "LDA" in " ".join(map(str, kinds))
    group_map = data["stage2_block1_group_map"]  # 14x14 tokens, G = 7: LDA interval 2
    assert group_map[0, 0] == group_map[0, 2] == group_map[2, 0] != group_map[0, 1]


def test_export_twins_svt_small_windows_and_key_grids(tmp_path, monkeypatch, capsys):
    offline_official_architecture(monkeypatch)
    out = tmp_path / "twins.npz"
    assert main(["export", "twins", "--model", "twins_svt_small.in1k", "--image",
                 str(REPO_ROOT / "assets" / "examples" / "coffee.jpg"), "--out", str(out)]) == 0
    assert "PEG addition / token norm per stage" in capsys.readouterr().out
    data = np.load(out)
    assert data["stage_grids"].tolist() == [[56, 56], [28, 28], [14, 14], [7, 7]]
    # stage 0: 8x8 windows of 7x7 (LSA), then GSA over 56/8 = 7x7 sub-sampled keys
    assert data["stage0_block0_probs"].shape == (64, 2, 49, 49)
    assert data["stage0_block1_probs"].shape == (2, 56 * 56, 49)
    assert list(map(str, data["block_kinds"][:4])) == ["LSA", "GSA", "LSA", "GSA"]
    np.testing.assert_allclose(data["stage2_block3_probs"].sum(-1), 1, atol=1e-4)
    assert data["peg_relative"].shape == (4,)


def test_export_navit_packs_several_images(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    images = [str(p) for p in sorted((REPO_ROOT / "assets" / "navit").glob("*.png"))[:4]]
    out = tmp_path / "navit.npz"
    assert main(["export", "navit", "--model", "demo_navit", "--image", *images, "--token-dropout", "0.25",
                 "--out", str(out)]) == 0
    assert "packed vs each image alone" in capsys.readouterr().out
    data = np.load(out)
    assert data["logits"].shape == (4, 8) and np.abs(data["logits"] - data["logits_alone"]).max() <= 1e-5
    ids, owner, mask = data["image_ids"], data["token_image"], data["mask"]
    assert mask.shape == (ids.shape[0], ids.shape[1], ids.shape[1]) and mask.dtype == bool
    for i, (rows, cols) in enumerate(data["grids"]):
        assert (owner == i).sum() == len(data[f"image{i}_kept"]) == max(1, int(rows * cols * 0.75))
    # one --image only for the other lenses
    assert main(["export", "twins", "--model", "demo_twins", "--image", *images[:2], "--out", str(out)]) == 2


def test_fetch_recommended_puts_each_file_in_checkpoints_and_says_where(tmp_path, monkeypatch, capsys):
    """Nothing is downloaded: the hub and the URL download are stand-ins that write files."""
    from pathlib import Path

    from explorer.core.fetching import RECOMMENDED

    hub_copy = tmp_path / "model.safetensors"
    hub_copy.write_bytes(b"\0" * 4096)
    asked = []
    monkeypatch.setattr("explorer.core.weights.hub_file",
                        lambda entry, allow_download: asked.append(entry.hf_hub_id) or (hub_copy, True))

    def download(url, dst, progress=True):
        assert url == "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_base.pth" and progress
        Path(dst).write_bytes(b"\1" * 1024)

    monkeypatch.setattr("torch.hub.download_url_to_file", download)
    target = tmp_path / "checkpoints"
    monkeypatch.setattr("explorer.core.zoo.CHECKPOINT_DIR", target)
    assert main(["fetch", "--recommended"]) == 0
    out = capsys.readouterr().out
    assert out.count("got ") == len(RECOMMENDED) == 7
    assert asked == [f"timm/{key}" for key in RECOMMENDED[:-1]]
    for key in RECOMMENDED[:-1]:
        assert (target / f"{key}.safetensors").read_bytes() == hub_copy.read_bytes() and str(target / key) in out
    assert (target / "mae_visualize_vit_base.pth").stat().st_size == 1024
    assert not list(target.glob("*.part"))


def test_fetch_says_why_for_each_file_it_could_not_get(tmp_path, monkeypatch, capsys):
    from urllib.error import URLError

    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(entry, allow_download):
        raise LocalEntryNotFoundError("no connection")

    def no_server(url, dst, progress=True):
        raise URLError("Name or service not known")

    monkeypatch.setattr("explorer.core.weights.hub_file", unreachable)
    monkeypatch.setattr("torch.hub.download_url_to_file", no_server)
    monkeypatch.setattr("explorer.core.zoo.CHECKPOINT_DIR", tmp_path)
    assert main(["fetch", "--recommended"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("missing ") == 7 and "Traceback" not in captured.out + captured.err
    assert "(LocalEntryNotFoundError)" in captured.out and "the server could not be reached (URLError)" in captured.out
    assert "HF_ENDPOINT" in captured.err and "0 of 7 fetched" in captured.err
    assert main(["fetch", "crossformer_tiny"]) == 1  # Google Drive only: where to get it instead
    assert "github.com/cheerss/CrossFormer" in capsys.readouterr().out
    monkeypatch.setattr("explorer.core.zoo.CHECKPOINT_DIR", REPO_ROOT / "checkpoints")
    assert main(["fetch", "demo_vit"]) == 0 and "demo_vit.safetensors" in capsys.readouterr().out  # bundled


def test_convert_dpb_refuses_a_device_that_is_not_there_before_reading_anything(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["convert-dpb", str(tmp_path / "missing.pth"), str(tmp_path / "out.safetensors"), "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err and not (tmp_path / "out.safetensors").exists()
