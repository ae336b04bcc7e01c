"""Any vision transformer the user has: every timm name, their own checkpoint (plain, safetensors,
timm train.py, torchvision) with its classes and preprocessing. Nothing is downloaded: random
models, generated checkpoints."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from explorer.core.checkpoints import CardError, read_card, read_labels, torchvision_to_timm
from explorer.core.errors import UserFacingError
from explorer.core.images import load_image
from explorer.core.preprocess import preprocess
from explorer.core.weights import WeightsError, build_model, load_model
from explorer.core.zoo import get_entry
from explorer.lenses.registry import model_for_lens

CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_CARD = {"class_names": list(CIFAR), "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616],
              "input_size": [3, 224, 224], "interpolation": "bilinear",
              "crop_mode": "squash"}  # alone: transforms.Resize((224, 224)), the coursework's, no crop


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights far from any init (torchvision zeroes its head; LayerNorms start at 1, 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    return model.eval()


# --------------------------------------------------------------------------- names

def test_a_bare_timm_name_takes_timms_default_tag_and_the_zoo_entry_when_there_is_one():
    from timm.models import get_pretrained_cfg

    entry = get_entry("deit3_small_patch16_224")
    assert entry.timm_model == f"deit3_small_patch16_224.{get_pretrained_cfg('deit3_small_patch16_224').tag}"
    assert entry.hf_hub_id == f"timm/{entry.timm_model}" and entry.family == "vit"
    assert get_entry("vit_small_patch16_224").key == "vit_small_patch16_224.augreg_in21k_ft_in1k"  # the zoo's
    assert get_entry("vit_tiny_patch16_224.augreg_in21k").pretrained_tag == "augreg_in21k"
    assert get_entry("vit_small_patch16_224.dino").family == "dino"
    for bad in ("vit_small_patch16_224.no_such_tag", "no_such_model", "x" * 500, ""):
        with pytest.raises(KeyError):
            get_entry(bad)


def test_a_public_page_opens_no_giant_model_by_name_and_downloads_only_the_zoos(monkeypatch):
    from explorer.lenses import registry

    with pytest.raises(UserFacingError, match=r"aimv2_3b_patch14_448.* 2,72\d M parameters.*up to 350 M"):
        model_for_lens("attention", "aimv2_3b_patch14_448")
    assert model_for_lens("mae", "mae_visualize_vit_huge").key == "mae_visualize_vit_huge"  # the zoo's: its choice
    outside, zoo = get_entry("vit_small_patch16_224.augreg_in1k"), get_entry("vit_small_patch16_224")
    monkeypatch.delenv("EXPLORER_DOWNLOAD_ANY_MODEL", raising=False)
    assert registry._downloads(zoo, True) and not registry._downloads(outside, True)
    monkeypatch.setenv("EXPLORER_DOWNLOAD_ANY_MODEL", "1")
    assert registry._downloads(outside, True) and not registry._downloads(outside, False)


def test_each_lens_says_in_one_sentence_which_lens_can_read_a_model():
    with pytest.raises(UserFacingError, match="Swin windows lens cannot read deit3_small.*open it in: Attention, Explain, DINO"):
        model_for_lens("swin", "deit3_small_patch16_224")
    with pytest.raises(UserFacingError, match=r"No lens reads resnet18\..* \(a ResNet\)") as err:
        model_for_lens("attention", "resnet18")
    assert "没有视图能读取" in err.value.message("zh")
    assert model_for_lens("twins", "twins_svt_small").key == "twins_svt_small.in1k"
    assert model_for_lens("attention", "vit_b_16").timm_model == "vit_base_patch16_224"


@pytest.mark.parametrize("name, patch, prefix", [("deit3_small_patch16_224", 16, 1),
                                                 ("vit_tiny_patch16_224", 16, 1),
                                                 ("vit_small_patch14_reg4_dinov2", 14, 5)])
def test_the_lenses_run_on_timm_models_outside_the_zoo_and_capture_timms_unfused_attention(tmp_path, name, patch,
                                                                                           prefix):
    from timm.utils import AttentionExtract

    from explorer.lenses.attention.compute import analyze
    from explorer.lenses.dino.compute import analyze_image

    entry = get_entry(name)
    path = tmp_path / "weights.safetensors"
    save_file(_perturbed(build_model(entry)).state_dict(), path)
    loaded = load_model(name, weights_file=path)
    assert loaded.shown.timm_model == entry.timm_model and loaded.source == "file"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    image = load_image(str(tmp_path / "x.png"))
    analysis = analyze(loaded, image, "model")
    assert analysis.num_prefix_tokens == prefix and analysis.patch_size == (patch, patch)
    # the captured probabilities are timm's own, computed with fused attention off
    reference = build_model(entry)
    reference.load_state_dict(loaded.model.state_dict())
    for module in reference.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    x = preprocess(image.image, loaded.data_config, "model", (patch, patch)).tensor
    with torch.no_grad():
        want = np.stack([a[0].numpy() for a in AttentionExtract(reference, method="hook")(x).values()])
    np.testing.assert_allclose(analysis.attention, want, atol=1e-5, rtol=1e-4)
    dino = analyze_image(loaded, image, "native")
    assert dino.attention.shape[0] == loaded.model.blocks[-1].attn.num_heads


# --------------------------------------------------------------------------- torchvision

@pytest.mark.parametrize("builder", ["vit_b_16", "vit_b_32"])
def test_torchvision_vits_convert_exactly_to_timm(tmp_path, builder):
    """The coursework's model: torchvision's ViT with a 10-class head, saved as a state dict."""
    import torchvision

    tv = _perturbed(getattr(torchvision.models, builder)(weights=None, num_classes=10))
    path = tmp_path / f"{builder}_cifar10.pth"
    torch.save(tv.state_dict(), path)
    (tmp_path / f"{builder}_cifar10.json").write_text(json.dumps(CIFAR_CARD))
    loaded = load_model(builder, weights_file=path)
    assert loaded.model.num_classes == 10 and loaded.class_names == CIFAR
    assert loaded.shown.timm_model == {"vit_b_16": "vit_base_patch16_224", "vit_b_32": "vit_base_patch32_224"}[builder]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want, got = tv(x), loaded.model(x)
    assert want.abs().max() > 0.1  # a head that says something
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert "torchvision" in loaded.banner.en and "10 classes" in loaded.banner.en
    # the same file opened as the timm architecture it fits gives the same model
    same = load_model("vit_base_patch16_224" if builder == "vit_b_16" else "vit_base_patch32_224", weights_file=path)
    torch.testing.assert_close(same.model(x), want, atol=1e-4, rtol=0)


def test_the_notes_head_replacement_converts_too(tmp_path):
    """The notes replace the whole head, `model.heads = nn.Linear(768, 10)`: keys heads.weight/bias."""
    import torchvision

    tv = torchvision.models.vit_b_32(weights=None, image_size=64)
    tv.heads = torch.nn.Linear(768, 10)
    tv = _perturbed(tv)
    path = tmp_path / "cifar10.pth"
    torch.save(tv.state_dict(), path)
    loaded = load_model("vit_b_32", weights_file=path)
    assert loaded.model.num_classes == 10
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), tv(x), atol=1e-4, rtol=0)


def test_a_torchvision_vit_at_another_input_size_keeps_it_and_torchvisions_own_preprocessing(tmp_path):
    import torchvision

    tv = _perturbed(torchvision.models.vit_b_32(weights=None, image_size=64, num_classes=10))
    torch.save(tv.state_dict(), tmp_path / "small.pth")
    loaded = load_model("vit_b_32", weights_file=tmp_path / "small.pth")
    config = loaded.data_config
    assert config["input_size"] == (3, 64, 64) and config["interpolation"] == "bilinear"
    assert config["mean"] == timm.data.IMAGENET_DEFAULT_MEAN and config["crop_pct"] == 224 / 256
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), tv(x), atol=1e-4, rtol=0)
    with pytest.raises(CardError, match="torchvision ViT, not a swin"):
        load_model("swin_tiny_patch4_window7_224", weights_file=tmp_path / "small.pth")


def test_a_torchvision_vit_of_no_known_size_and_one_with_pre_logits_are_named():
    import torchvision

    state = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                 hidden_dim=64, mlp_dim=128).state_dict()
    with pytest.raises(CardError, match="width 64, depth 2"):
        torchvision_to_timm(state)
    state = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                 hidden_dim=64, mlp_dim=128, representation_size=32).state_dict()
    with pytest.raises(CardError, match="pre-logits"):
        torchvision_to_timm(state)


# --------------------------------------------------------------------------- formats, cards, labels

def _ten_class_state() -> dict:
    return _perturbed(build_model(get_entry("vit_tiny_patch16_224"), num_classes=10)).state_dict()


@pytest.mark.parametrize("layout", ["plain_pth", "safetensors", "timm_train", "timm_train_ema_only", "ddp_module"])
def test_a_ten_class_checkpoint_of_each_format_loads_with_its_classes_and_labels(tmp_path, layout):
    state = _ten_class_state()
    path = tmp_path / ("model.safetensors" if layout == "safetensors" else "model.pth.tar")
    if layout == "safetensors":
        save_file(state, path)
    elif layout == "plain_pth":
        torch.save(state, path)
    elif layout == "ddp_module":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    else:  # what timm's train.py saves (its arguments as an argparse.Namespace)
        checkpoint = {"epoch": 3, "arch": "vit_tiny_patch16_224", "version": 2, "metric": 71.5,
                      "args": argparse.Namespace(lr=1e-3, model="vit_tiny_patch16_224", mean=None),
                      "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}}
        if layout == "timm_train":
            checkpoint["state_dict"] = state
            checkpoint["state_dict_ema"] = {k: v + 1 for k, v in state.items()}
        else:
            checkpoint["state_dict_ema"] = state
        torch.save(checkpoint, path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(CIFAR) + "\n\n", encoding="utf-8")
    from explorer.core.checkpoints import labels_card

    loaded = load_model("vit_tiny_patch16_224", weights_file=path, card=labels_card(labels))
    assert loaded.model.num_classes == 10 and loaded.class_names == CIFAR
    torch.testing.assert_close(loaded.model.head.weight, state["head.weight"])  # state_dict, not the EMA


def test_a_cards_preprocessing_equals_the_hand_built_torchvision_transform(tmp_path):
    import torchvision.transforms as T

    path = tmp_path / "cifar_vit.safetensors"
    save_file(_ten_class_state(), path)
    (tmp_path / "cifar_vit.json").write_text(json.dumps(CIFAR_CARD))
    loaded = load_model("vit_tiny_patch16_224", weights_file=path)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8))
    by_hand = T.Compose([T.Resize((224, 224), interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(),
                         T.Normalize(CIFAR_CARD["mean"], CIFAR_CARD["std"])])(photo)
    ours = preprocess(photo, loaded.data_config, "model", (16, 16)).tensor[0]
    torch.testing.assert_close(ours, by_hand, atol=1e-6, rtol=0)
    assert "preprocessing from cifar_vit.json" in loaded.banner.en


def test_without_a_card_the_banner_says_the_preprocessing_is_the_architectures_default(tmp_path):
    path = tmp_path / "mine.safetensors"
    save_file(_ten_class_state(), path)
    loaded = load_model("vit_tiny_patch16_224", weights_file=path)
    assert "the architecture's default" in loaded.banner.en and "CIFAR" in loaded.banner.en
    assert "该结构的默认值" in loaded.banner.zh and loaded.class_names[3] == "class 3"


@pytest.mark.parametrize("card, message", [
    ({"class_names": ["a", "b"]}, "names 2 classes, but the model has 10"),
    ({"mean": [0.5, 0.5]}, "mean must be three numbers"),
    ({"std": [0.5, 0, 0.5]}, "std must be three positive numbers"),
    ({"input_size": [3, 8, 8]}, "input_size must be"),
    ({"interpolation": "lanczos9"}, "interpolation must be one of"),
    ({"crop_mode": "zoom"}, "crop_mode must be one of"),
    ([1, 2], "is not a JSON object"),
])
def test_a_bad_card_gets_one_clear_message(tmp_path, card, message):
    path = tmp_path / "mine.safetensors"
    save_file(_ten_class_state(), path)
    (tmp_path / "mine.json").write_text(json.dumps(card))
    with pytest.raises(UserFacingError, match=message) as err:
        load_model("vit_tiny_patch16_224", weights_file=path)
    assert err.value.message("zh")


def test_labels_files_are_lines_or_a_json_list(tmp_path):
    (tmp_path / "a.txt").write_text("\ufeffcat\n dog \n\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(["猫", "狗"]), encoding="utf-8")
    assert read_labels(tmp_path / "a.txt") == ("cat", "dog")
    assert read_labels(tmp_path / "b.json") == ("猫", "狗")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(CardError):
        read_labels(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(CardError, match="not valid JSON"):
        read_card(tmp_path / "d.json")


def test_a_file_of_another_architecture_says_which_keys_were_expected_and_found(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file(timm.create_model("resnet18", pretrained=False).state_dict(), path)
    with pytest.raises(WeightsError, match=r"missing \d+ keys .*unexpected \d+ keys") as err:
        load_model("vit_tiny_patch16_224", weights_file=path)
    assert "cls_token" in str(err.value) or "patch_embed" in str(err.value)


# --------------------------------------------------------------------------- the command line

def test_export_writes_the_users_class_names_and_predicts_with_them(tmp_path, capsys):
    import torchvision

    from explorer.cli import main

    tv = _perturbed(torchvision.models.vit_b_32(weights=None, num_classes=10))
    torch.save(tv.state_dict(), tmp_path / "cifar.pth")
    (tmp_path / "labels.txt").write_text("\n".join(CIFAR))
    Image.new("RGB", (64, 48), "orange").save(tmp_path / "x.png")
    out = tmp_path / "att.npz"
    assert main(["export", "attention", "--model", "vit_b_32", "--weights", str(tmp_path / "cifar.pth"),
                 "--labels", str(tmp_path / "labels.txt"), "--mean", "0.4914", "0.4822", "0.4465",
                 "--std", "0.247", "0.2435", "0.2616", "--input-size", "224", "--crop-mode", "squash",
                 "--interpolation", "bilinear",
                 "--image", str(tmp_path / "x.png"), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "top-5:" in printed.out and any(name in printed.out for name in CIFAR)
    assert "preprocessing from the command line" in printed.err
    with np.load(out) as arrays:
        assert tuple(arrays["class_names"]) == CIFAR


def test_models_all_lists_the_timm_names_each_lens_reads(capsys):
    from explorer.cli import main

    assert main(["models", "--all"]) == 0
    lists = {line.split(" (")[0]: {n.rstrip("*") for n in line.split(": ", 1)[1].split(", ")}
             for line in capsys.readouterr().out.splitlines() if " (" in line and "): " in line}
    assert "deit3_small_patch16_224" in lists["Attention"] and "vit_small_patch14_reg4_dinov2" in lists["DINO"]
    assert "vit_base_r50_s16_384" in lists["Attention"]  # hybrids are VisionTransformers too
    assert "swin_tiny_patch4_window7_224" in lists["Swin windows"] and "twins_svt_small" in lists["Twins"]
    assert "swinv2_tiny_window8_256" in lists["Position bias"] and "swinv2_tiny_window8_256" in lists["Swin windows"]
    assert "deit3_small_patch16_224" in lists["Explain"] and "swin_tiny_patch4_window7_224" in lists["Explain"]
    assert "twins_svt_small" not in lists["Explain"] and "resnet50" not in lists["Explain"]
    assert "resnet50" not in lists["Attention"]


def test_add_copies_a_checkpoint_with_its_card_and_every_command_then_opens_it(tmp_path):
    """The coursework's torchvision CIFAR-10 model, added for good: timm layout, card beside it."""
    import subprocess
    import sys

    import torchvision

    from explorer.core.zoo import REPO_ROOT

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    for demo in (REPO_ROOT / "checkpoints").glob("demo_vit.*"):
        (checkpoints / demo.name).write_bytes(demo.read_bytes())
    tv = _perturbed(torchvision.models.vit_b_32(weights=None, image_size=96, num_classes=10))
    torch.save(tv.state_dict(), tmp_path / "student.pth")
    (tmp_path / "student.json").write_text(json.dumps({**CIFAR_CARD, "input_size": [3, 96, 96]}))
    Image.new("RGB", (64, 48), "orange").save(tmp_path / "x.png")
    env = {**__import__("os").environ, "EXPLORER_CHECKPOINTS": str(checkpoints), "HF_HUB_OFFLINE": "1"}

    def run(*argv):
        result = subprocess.run([sys.executable, "-m", "explorer", *argv], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result

    run("add", str(tmp_path / "student.pth"), "--model", "vit_b_32", "--name", "cifar_vit")
    card = json.loads((checkpoints / "cifar_vit.json").read_text())
    assert card["timm_model"] == "vit_base_patch32_224" and card["class_names"] == list(CIFAR)
    assert card["crop_mode"] == "squash" and card["model_kwargs"]["img_size"] == 96
    # it reopens as the model that was checked: same weights, input size and logits
    reopened = subprocess.run([sys.executable, "-c", (
        "import torch; from explorer.core.weights import load_model; m = load_model('cifar_vit'); "
        "torch.manual_seed(5); x = torch.randn(1, 3, 96, 96); "
        "print(m.data_config['input_size'], m.class_names[0], m.model(x).detach().numpy().tolist())")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert reopened.returncode == 0, reopened.stderr[-2000:]
    out = reopened.stdout
    assert out.startswith("(3, 96, 96) airplane")  # the card's preprocessing; its names
    torch.manual_seed(5)
    with torch.no_grad():
        want = tv(torch.randn(1, 3, 96, 96))[0].tolist()
    got = json.loads(out.split(" airplane ", 1)[1])[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    listed = run("models").stdout
    assert "cifar_vit" in listed and "on disk" in listed.split("cifar_vit", 1)[1].split("\n")[1]
    run("export", "attention", "--model", "cifar_vit", "--image", str(tmp_path / "x.png"), "--out", str(tmp_path / "a.npz"))
    with np.load(tmp_path / "a.npz") as arrays:
        assert tuple(arrays["class_names"]) == CIFAR
    refused = subprocess.run([sys.executable, "-m", "explorer", "add", str(tmp_path / "student.pth"), "--model",
                              "vit_b_32", "--name", "cifar_vit"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "--force" in refused.stderr
    shadow = subprocess.run([sys.executable, "-m", "explorer", "add", str(tmp_path / "student.pth"), "--model",
                             "vit_b_32", "--name", "vit_small_patch16_224"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    assert shadow.returncode != 0 and "already names a model" in shadow.stderr


@pytest.mark.parametrize("name", ["deit_tiny_distilled_patch16_224", "crossformer_tiny"])
def test_the_class_count_is_read_from_two_headed_deit_and_crossformer_files(tmp_path, name):
    state = build_model(get_entry(name), num_classes=10).state_dict()
    save_file(state, tmp_path / "ten.safetensors")
    loaded = load_model(name, weights_file=tmp_path / "ten.safetensors")
    assert loaded.model.num_classes == 10 and len(loaded.class_names) == 10
    torch.testing.assert_close(loaded.model.head.weight, state["head.weight"])


def test_fetch_takes_any_name_a_lens_reads_and_refuses_others_before_any_download(capsys, monkeypatch):
    from explorer.cli import main
    from explorer.core import fetching

    monkeypatch.setattr(fetching, "fetch_all", lambda *a, **k: pytest.fail("a download was tried"))
    assert main(["fetch", "resnet18"]) != 0
    assert "No lens reads resnet18" in capsys.readouterr().err
    assert main(["fetch", "no_such_model_at_all"]) != 0
    assert "Unknown model" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_swinv2_opens_in_the_windows_lens_with_timms_own_attention(tmp_path, lang):
    """SwinV2 repeats v1's windows, shift and mask; its content is τ·cos(q, k) and its bias
    16·σ(CPB): the captured probabilities are the ones its own softmax gives."""
    from timm.utils import AttentionExtract

    from explorer.lenses.registry import readers_of
    from explorer.lenses.swin.compute import analyze_image
    from explorer.lenses.swin.tab import SwinView, render

    name = "swinv2_tiny_window8_256"
    entry = get_entry(name)
    assert {lens.key for lens in readers_of(entry)} == {"swin", "bias", "explain"}  # explain: Grad-CAM
    path = tmp_path / "v2.safetensors"
    save_file(_perturbed(build_model(entry)).state_dict(), path)
    loaded = load_model(name, weights_file=path)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    image = load_image(str(tmp_path / "x.png"))
    result = analyze_image(loaded, image, "model")
    x = preprocess(image.image, loaded.data_config, "model", (4, 4)).tensor
    with torch.no_grad():  # what each block's softmax gave, taken after it (its attn_drop)
        want = AttentionExtract(loaded.model, names=["*attn_drop"], method="hook")(x)
        logits = loaded.model(x)[0]
    assert len(want) == len(result.swin.blocks) == 12 and result.swin.cosine
    for item, probs in zip(result.swin.blocks, want.values()):
        np.testing.assert_allclose(item.probs, probs.numpy(), atol=1e-5, rtol=1e-4)
        assert item.bias.min() >= 0 and item.bias.max() <= 16  # 16·σ(·)
    np.testing.assert_allclose(result.swin.logits, logits.numpy(), atol=1e-4)
    shifted = result.swin.block(0, 1)
    assert shifted.geometry.shift == (4, 4) and shifted.mask is not None and (shifted.mask == -100).any()
    outputs = render(loaded, result, SwinView(0, 1, None, None).clamp(result), lang)
    split = outputs["split"]
    titles = [a.text for a in split.layout.annotations]
    assert any("τ·cos(q, k)" in t for t in titles) and any("16·σ(CPB)" in t for t in titles)
