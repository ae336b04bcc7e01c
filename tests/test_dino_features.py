"""The DINO lens's look at the tokens themselves: the DINOv2 PCA equals numpy's SVD-based PCA up to
each component's sign, its foreground cut and colours by construction, the token norms by hand on a
tiny model (with registers, whose norms and attention are reported), the export, and a PCA
threshold change that redraws without running a model."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from explorer.core.images import load_image
from explorer.lenses.dino.compute import analyze, export_arrays
from explorer.lenses.dino.features import first_component, high_norm, pca_rgb, principal_components
from forward_counter import forward_count
from test_dino_lens import controls, picture


@pytest.mark.parametrize("shape", [(60, 12), (12, 60)])  # more patches than channels, and fewer
def test_principal_components_equal_numpys_svd_pca_up_to_each_components_sign(shape):
    x = np.random.default_rng(0).normal(size=shape) @ np.diag(np.linspace(3, 0.1, shape[1]))
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    want = centred @ vt[:3].T
    got = principal_components(x, 3)
    for k in range(3):
        sign = np.sign(got[:, k] @ want[:, k])
        np.testing.assert_allclose(got[:, k], sign * want[:, k], atol=1e-8)
    # the sign rule makes it deterministic: the same projection for a negated copy of the axes' data order
    np.testing.assert_allclose(principal_components(x[::-1], 3)[::-1], got, atol=1e-8)


def test_the_foreground_is_the_inner_object_and_gets_its_own_pca_colours():
    """An 8×8 grid: the middle 4×4 patches share one feature vector plus noise, the border another,
    so the first component splits them; the border scores low, whatever the SVD's sign."""
    rng = np.random.default_rng(1)
    inside = np.zeros((8, 8), bool)
    inside[2:6, 2:6] = True
    a, b = rng.normal(size=16), rng.normal(size=16)
    features = np.where(inside.reshape(-1, 1), a, b) + 0.05 * rng.normal(size=(64, 16))
    for sign in (1, -1):  # either orientation of the data gives the same picture
        first = first_component(sign * features, (8, 8))
        assert (first[inside] > 0.5).all() and (first[~inside] < 0.5).all()
    rgb = pca_rgb(features, first, 0.5)
    assert rgb.shape == (8, 8, 3) and (rgb[~inside] == 0).all()
    for channel in range(3):  # each component scaled to 0–1 over the foreground
        assert rgb[inside][:, channel].min() == 0.0 and rgb[inside][:, channel].max() == 1.0
    parts = principal_components(features[inside.ravel()], 3)
    for channel in range(3):
        scaled = (parts[:, channel] - parts[:, channel].min()) / np.ptp(parts[:, channel])
        np.testing.assert_allclose(rgb[inside][:, channel], scaled, atol=1e-6)
    assert (pca_rgb(features, first, 1.0) == 0).all()  # nothing above 1: all background


def test_high_norm_by_hand():
    assert high_norm(np.array([[1.0, 1.0], [1.5, 5.0]])).tolist() == [[False, False], [False, True]]


def test_token_norms_and_features_by_hand_on_a_tiny_model_with_registers():
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch14_reg4_dinov2", img_size=28, depth=2, num_classes=0).eval()
    x = torch.randn(1, 3, 28, 28)
    a = analyze(model, x)
    with torch.no_grad():  # the model's own pieces, one after the other
        tokens = model.norm_pre(model._pos_embed(model.patch_embed(x)))
        for block in model.blocks:
            tokens = block(tokens)
        normed = model.norm(tokens)
    prefix = model.num_prefix_tokens
    assert a.prefix_names == ("CLS", "REG1", "REG2", "REG3", "REG4") and prefix == 5
    np.testing.assert_allclose(a.token_norms, tokens[0, prefix:].norm(dim=-1).reshape(2, 2).numpy(), rtol=1e-5)
    np.testing.assert_allclose(a.prefix_norms, tokens[0, :prefix].norm(dim=-1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(a.features, normed[0, prefix:].numpy(), rtol=1e-5, atol=1e-6)
    arrays = export_arrays(a)
    assert arrays["pca_rgb"].shape == (2, 2, 3) and arrays["token_norms"].shape == (2, 2)
    from explorer.lenses.dino.tab import features_markdown

    line = features_markdown(None, a, "en")
    assert "Its 4 registers have norms" in line
    assert f"{float(a.prefix_attention[:, 1:].sum(-1).mean()):.1%}" in line


def test_a_pca_threshold_change_redraws_without_a_model_run():
    from explorer.lenses.dino import tab

    image = load_image(picture(200, 160, seed=77))
    out = tab.refresh(controls(image))
    before = forward_count()
    figure = tab.change_pca_threshold(controls(image, pca_threshold=0.8))["features_plot"]
    assert forward_count() == before
    assert "0.80" in figure.layout.title.text and "0.50" in out["features_plot"].layout.title.text
    panels = [a.text for a in figure.layout.annotations]  # a row per model: the DINO one, the compared one
    assert len(panels) == 6 and "PCA → RGB" in panels[0] and panels[1].startswith("token norms")
    assert panels[0].startswith("demo_dino") and panels[3].startswith("demo_vit")
    zh = tab.change_pca_threshold(controls(image, pca_threshold=0.8, lang="zh"))
    assert "前景" in zh["features_plot"].layout.title.text and "范数" in zh["features_info"]


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_a_pca_threshold_out_of_range_is_a_message(threshold):
    from explorer.lenses.dino import tab

    import gradio as gr

    image = load_image(picture(200, 160, seed=78))
    with pytest.raises(gr.Error, match="must be a number from 0 to 1"):  # one message, as the page shows it
        tab.change_pca_threshold(controls(image, pca_threshold=threshold))
