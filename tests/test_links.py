"""Links that reopen a view (ui/share.py): every value a link carries is checked against its
control before anything runs, a link can never turn hub downloads on, and what a page writes into
its link reads back to the same values."""

from __future__ import annotations

import gradio as gr
import pytest

from explorer.core.images import load_image
from explorer.ui import share
from explorer.ui.widgets import PageContext, TabHooks, example_paths


@pytest.fixture()
def controls():
    with gr.Blocks():
        image, lang = gr.State(None), gr.Radio(["en", "zh"])
        layer = gr.Slider(0, 5, value=5, step=1, elem_id="att-layer")
        head = gr.Dropdown([("mean", -1), ("head 0", 0)], value=-1, elem_id="att-head")
        scale = gr.Dropdown(["Viridis", "Magma"], value="Viridis", elem_id="att-scale")
        model = gr.Dropdown(["demo_vit"], value="demo_vit", allow_custom_value=True, elem_id="att-model")
        allow = gr.Checkbox(value=False)  # no elem_id: the hub-download switch
        fixed = gr.Checkbox(value=False, elem_id="att-fixed")
        seed = gr.Number(value=0, precision=0, minimum=0, elem_id="dn-seed")
        view = gr.State({"query": 0})
        ctx = PageContext(image=image, lang=lang, translations=None, active_tab=gr.State("attention"))
        ctx.lenses += [TabHooks("attention", None, None, None,
                                [image, model, allow, layer, head, scale, fixed, view, lang], [], []),
                       TabHooks("dino", None, None, None, [image, seed, lang], [], [])]
    return share.linkable_controls(ctx)


def test_the_hub_download_switch_is_never_in_a_link(controls):
    names = [c.name for c in controls]
    assert names == ["att-model", "att-layer", "att-head", "att-scale", "att-fixed", "attention-state0", "dn-seed"]


def test_a_link_reads_back_to_the_values_written(controls):
    values = {"att-model": "demo_vit", "att-layer": 2, "att-head": 0, "att-scale": "Magma", "att-fixed": True,
              "attention-state0": {"query": 22}}
    query = share.link_query("attention", "zh", None, {}, values, presenter=True)
    params = dict(p.split("=", 1) for p in query.split("&"))
    from urllib.parse import unquote_plus
    params = {k: unquote_plus(v) for k, v in params.items()}
    link = share.restore(params, controls, ["attention", "dino"], examples=3)
    assert (link.tab_id, link.lang, link.presenter, link.rejected) == ("attention", "zh", True, [])
    assert link.values == {**values, "attention-state0": {"query": 22, "linked": True}}


@pytest.mark.parametrize("name, text", [
    ("att-layer", "-1"), ("att-layer", "nan"), ("att-layer", "1e9"), ("att-layer", "two"),
    ("att-head", "2000"), ("att-scale", "Jet"), ("att-model", "../../etc/passwd"), ("att-model", "a b"),
    ("att-fixed", "yes"), ("attention-state0", "[1, {\"a\": [[[1]]]}]"), ("attention-state0", "\"text\""),
    ("attention-state0", "{" + "\"k\":1," * 3000 + "}"),
])
def test_a_bad_value_is_refused_by_name_and_nothing_else_is_lost(controls, name, text):
    other = {"att-scale": "Magma"} if name != "att-scale" else {"att-layer": 3}
    link = share.restore({"tab": "attention", name: text, **{k: str(v) for k, v in other.items()}}, controls,
                         ["attention"], 3)
    assert link.rejected == [name] and link.values == other


def test_the_tab_language_and_image_are_checked_too(controls):
    link = share.restore({"tab": "nope", "lang": "fr", "image": "example-99", "dn-seed": "3"}, controls,
                         ["attention", "dino"], examples=3)
    assert (link.tab_id, link.lang, link.example, link.image) == (None, None, None, None)
    assert link.rejected == ["tab", "lang", "image"] and link.values == {}  # no tab: no controls
    assert share.restore({"image": "upload-" + "0" * 32}, controls, [], 3).rejected == ["image"]
    assert share.restore({"image": "upload-../x"}, controls, [], 3).rejected == ["image"]
    link = share.restore({"tab": "dino", "image": "example-2", "dn-seed": "3", "att-layer": "1"}, controls,
                         ["attention", "dino"], 3)
    assert (link.example, link.values) == (2, {"dn-seed": 3})  # another tab's controls stay out


def test_an_upload_in_a_link_reopens_while_the_server_keeps_it(controls, tmp_path):
    path = example_paths()[0]
    image = load_image(path)
    query = share.link_query("attention", "en", image, {}, {})
    assert f"image=upload-{image.digest}" in query
    assert share.restore({"image": f"upload-{image.digest}"}, controls, [], 3).image is image
    digests = share.example_digests(tuple(example_paths()))
    assert digests[image.digest] == 0
    assert "image=example-0" in share.link_query("attention", "en", image, digests, {})
