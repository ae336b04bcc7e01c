"""The lens contract: one list of lenses drives the page, the CLI and the public API; each lens
says from a model's own modules whether it can read it; every lens has a named endpoint that
mirrors its export subcommand (checked through gradio_client against the arrays the export
computes)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.core.zoo import REPO_ROOT, all_entries
from explorer.lenses.contract import Lens
from explorer.lenses.registry import LENSES, entries_for_lens, get_lens, model_for_lens

SHAPE = REPO_ROOT / "assets" / "synthetic" / "star.png"
WIDE = sorted((REPO_ROOT / "assets" / "navit").glob("*.png"))[0]
FOLDER_FILES = ("compute.py", "figures.py", "tab.py", "export.py", "__init__.py")


def test_every_lens_is_one_folder_with_the_contract_files():
    for lens in LENSES:
        folder = REPO_ROOT / "explorer" / "lenses" / lens.key
        assert all((folder / name).is_file() for name in FOLDER_FILES), lens.key
        assert isinstance(lens, Lens) and lens.inputs in ("image", "images", "model")
        assert callable(lens.export.run) and callable(getattr(lens.export, "add_arguments", callable))
        assert callable(importlib.import_module(f"explorer.lenses.{lens.key}.compute").export_arrays)
        assert callable(lens.tab.build) and callable(lens.tab.api) and lens.tab.api.__doc__
        assert lens.title("en") and lens.title("zh")


def test_the_cli_has_one_export_subcommand_per_lens():
    from explorer.cli import build_parser

    parser = build_parser()
    export = next(a for a in parser._subparsers._group_actions[0].choices["export"]._actions
                  if isinstance(a, argparse._SubParsersAction))
    assert list(export.choices) == [lens.key for lens in LENSES]


def test_the_page_has_one_tab_and_one_endpoint_per_lens():
    from explorer.ui.page import build_demo

    demo = build_demo()
    names = {fn.api_name for fn in demo.fns.values()}
    assert {lens.key for lens in LENSES} <= names
    tabs = {b.id for b in demo.blocks.values() if type(b).__name__ == "Tab"}
    assert {lens.key for lens in LENSES} <= tabs


def test_which_models_a_lens_reads_comes_from_their_modules():
    """The lists the tabs offer are what each lens's ``reads`` says of a weightless skeleton;
    they agree with the zoo's families (the old way), lens by lens."""
    families = {"attention": {"vit", "dino"}, "swin": {"swin"}, "bias": {"swin", "crossformer"},
                "crossformer": {"crossformer"}, "twins": {"twins"}, "navit": {"navit"}, "dino": {"vit", "dino"},
                "mae": {"mae"}, "explain": {"vit", "swin"}}
    without_classifier = {"vit_base_patch16_224.mae", "vit_small_patch14_dinov2.lvd142m",
                          "vit_small_patch14_reg4_dinov2.lvd142m"}  # backbones: no logit to explain
    for lens in LENSES:
        expected = [e.key for e in all_entries() if e.family in families[lens.key]
                    and not (lens.key == "explain" and e.key in without_classifier)]
        assert [e.key for e in entries_for_lens(lens.key)] == expected, lens.key


def test_reads_looks_at_the_architecture_not_the_name():
    import timm
    import torch

    import explorer.models  # noqa: F401  (registers CrossFormer, NaViT, MAE)

    with torch.device("meta"):
        swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
        deit = timm.create_model("deit_tiny_patch16_224", pretrained=False)
        pcpvt = timm.create_model("twins_pcpvt_small", pretrained=False)
    assert get_lens("swin").reads(swin) and get_lens("bias").reads(swin) and not get_lens("attention").reads(swin)
    assert get_lens("attention").reads(deit) and get_lens("dino").reads(deit) and not get_lens("swin").reads(deit)
    assert get_lens("twins").reads(pcpvt) and not get_lens("mae").reads(pcpvt)


def test_model_for_lens_names_the_lenses_that_can_read_it():
    with pytest.raises(ValueError, match=r"cannot read demo_mae \(a MaskedAutoencoderViT\); open it in: MAE"):
        model_for_lens("attention", "demo_mae")
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        model_for_lens("swin", "nope")
    assert model_for_lens("bias", "demo_swin").key == "demo_swin"


# ------------------------------------------------------------------ an endpoint per lens


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


def cli_arrays(tmp_path: Path, lens: str, *args: str) -> dict[str, np.ndarray]:
    from explorer.cli import main

    out = tmp_path / f"{lens}.npz"
    assert main(["export", lens, *args, "--out", str(out)]) == 0
    return dict(np.load(out))


# (lens, API arguments, the same as export arguments)
CASES = [
    ("swin", lambda: (handle_file(str(SHAPE)), "demo_swin", "model"), ["--model", "demo_swin", "--image", str(SHAPE)]),
    ("crossformer", lambda: (handle_file(str(SHAPE)), "demo_crossformer", "model"),
     ["--model", "demo_crossformer", "--image", str(SHAPE)]),
    ("twins", lambda: (handle_file(str(SHAPE)), "demo_twins", "native"),
     ["--model", "demo_twins", "--image", str(SHAPE), "--geometry", "native"]),
    ("bias", lambda: ("demo_crossformer",), ["--model", "demo_crossformer"]),
    ("dino", lambda: (handle_file(str(WIDE)), "demo_dino", "native", 0.6),
     ["--model", "demo_dino", "--image", str(WIDE), "--threshold", "0.6"]),
    ("mae", lambda: (handle_file(str(SHAPE)), "demo_mae", 0.5, "grid", 3),
     ["--model", "demo_mae", "--image", str(SHAPE), "--mask-ratio", "0.5", "--mask-strategy", "grid", "--seed", "3"]),
    ("navit", lambda: ([handle_file(str(SHAPE)), handle_file(str(WIDE))], "demo_navit", 48, 0.25, 1),
     ["--model", "demo_navit", "--image", str(SHAPE), str(WIDE), "--tokens", "48", "--token-dropout", "0.25",
      "--seed", "1"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("lens, api_args, cli_args", CASES, ids=[c[0] for c in CASES])
def test_each_lens_endpoint_mirrors_its_export(client, tmp_path, lens, api_args, cli_args):
    exported = cli_arrays(tmp_path, lens, *cli_args)
    reply = client.predict(*api_args(), api_name=f"/{lens}")
    assert reply["model"] == cli_args[1] and reply["weights"] == "bundled"
    assert set(reply["shapes"]) == set(exported), "the endpoint and the export hold the same arrays"
    for name, array in exported.items():
        assert reply["shapes"][name] == list(array.shape), name
    sent = reply["arrays"]
    assert sent, "small arrays come by default"
    for name, values in sent.items():
        if name == "image_names":  # NaViT names the uploads by their file name on the server
            continue
        got = np.asarray(values)
        if exported[name].dtype.kind == "f":
            np.testing.assert_allclose(got, exported[name], atol=2e-6, err_msg=name)
        else:
            assert got.tolist() == exported[name].tolist(), name
    big = max(exported, key=lambda n: exported[n].size)
    one = client.predict(*api_args(), big, api_name=f"/{lens}")
    assert list(one["arrays"]) == [big] and np.asarray(one["arrays"][big]).shape == exported[big].shape


@pytest.mark.slow
def test_lens_endpoints_check_their_arguments(client):
    image = handle_file(str(SHAPE))
    with pytest.raises(AppError, match=r"Swin windows lens cannot read demo_vit .*open it in: Attention, Explain, DINO"):
        client.predict(image, "demo_vit", "model", "", api_name="/swin")
    with pytest.raises(AppError, match=r"No array named 'nope'; this result has: class_names, logits"):
        client.predict(image, "demo_swin", "model", "nope", api_name="/swin")
    with pytest.raises(AppError, match=r"threshold t must be a number from 0 to 1"):
        client.predict(image, "demo_dino", "native", 1.5, "", api_name="/dino")
    with pytest.raises(AppError, match=r"mask_strategy must be one of random, block, grid"):
        client.predict(image, "demo_mae", 0.75, "painted", 0, "", api_name="/mae")
    with pytest.raises(AppError, match=r"The seed must be a whole number from 0 to"):
        client.predict(image, "demo_mae", 0.75, "random", -5, "", api_name="/mae")
    with pytest.raises(AppError, match=r"geometry must be one of model, native"):
        client.predict(image, "demo_twins", "wide", "", api_name="/twins")


def test_mcp_is_served_only_where_the_extra_is_installed(monkeypatch):
    import importlib.util

    from explorer.ui import page

    monkeypatch.delenv("EXPLORER_MCP", raising=False)
    assert page.launch_kwargs()["mcp_server"] is False
    monkeypatch.setenv("EXPLORER_MCP", "1")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert page.mcp_wanted() is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert page.mcp_wanted() is True


def test_one_language_check_and_translated_demo_classes():
    from explorer.core.images import ImageInputError
    from explorer.core.text import is_chinese, numbered, pick
    from explorer.core.weights import Banner
    from explorer.core.zoo import get_entry
    from explorer.core.predictions import Prediction
    from explorer.ui.i18n import class_label, predictions_label, t

    assert [is_chinese(x) for x in ("zh", "zh-CN", "ZH-tw", " zh", "en", "en-US", "", None)] == \
        [True, True, True, True, False, False, False, False]
    for lang in ("zh-CN", "zh"):  # every holder of both languages agrees on what Chinese is
        assert ImageInputError("e", "中").message(lang) == Banner("info", "e", "中").text(lang) == "中"
        assert get_entry("demo_vit").label(lang) == get_entry("demo_vit").label_zh
        assert t("model", lang) == "模型"
    assert numbered([("a", "甲"), ("b", "乙")], "zh") == "1. 甲\n2. 乙"
    assert pick(("a", "甲"), "fr") == "a"
    names = get_entry("demo_vit").class_names
    assert all(class_label(n, "zh") != n for n in names) and all(class_label(n, "en") == n for n in names)
    assert class_label("tabby, tabby cat", "zh") == "tabby, tabby cat"  # ImageNet's stay as they are
    assert predictions_label([Prediction("ring", 5, 0.75)], "zh") == {"圆环": 0.75}
