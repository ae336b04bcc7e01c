"""The explanation lens: GAE by hand and against a transcription of the official notebook,
Grad-CAM against the grad-cam package's own pipeline, deletion/insertion by hand, the sanity
check leaving the shared model untouched, the export and the tab. Random-init models only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.core.images import load_image
from explorer.core.weights import get_model
from explorer.core.zoo import REPO_ROOT
from explorer.lenses.explain import compute
from explorer.lenses.explain.compute import (METHODS, analyze_image, auc, deletion_order, explained_pass,
                                             faithfulness, gae_relevance, maps_of, private_copy, sanity, step_counts)

SYNTHETIC = sorted((REPO_ROOT / "assets" / "synthetic").iterdir())


@pytest.fixture(scope="module")
def demo():
    return get_model("demo_vit", allow_download=False)


@pytest.fixture(scope="module")
def image():
    return load_image(SYNTHETIC[0])


@pytest.fixture(scope="module")
def small_vit():
    """A 3-block ViT with weights far from any init, timm's fused attention on (its default)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=3, num_classes=5).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def test_a_second_models_class_is_linked_by_name_else_by_index_among_as_many():
    from explorer.lenses.explain.compute import linked_target

    shapes, reordered = ("circle", "square", "star"), ("star", "circle", "square")
    assert linked_target(shapes, 3, 1, reordered, 3) == 2  # the same name
    assert linked_target(shapes, 3, 2, ("cat", "dog", "cow"), 3) is None  # other labels: its own top class
    assert linked_target(None, 1000, 281, ("tench",) * 1000, 1000) == 281  # no names: the same index
    assert linked_target(shapes, 3, 2, None, 10) is None  # as many classes, or nothing to link


def test_gae_on_a_hand_made_two_block_example():
    """Two tokens, two heads; the second head's ∇A ⊙ A is negative everywhere (clamped to 0)."""
    a1 = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    g1 = torch.tensor([[1.0, -1.0], [2.0, 0.0]])  # ⊙: [[0.5, -0.5], [0.5, 0]] -> (·)+ = [[0.5, 0], [0.5, 0]]
    a2, g2 = torch.eye(2), torch.tensor([[0.2, 0.0], [0.0, -1.0]])  # -> [[0.2, 0], [0, 0]]
    attentions = [torch.stack([a1, a1]), torch.stack([a2, a2])]
    gradients = [torch.stack([g1, -g1.abs()]), torch.stack([g2, -g2.abs()])]
    # block 1: Ā = [[0.25, 0], [0.25, 0]], R = I + Ā = [[1.25, 0], [0.25, 1]]
    # block 2: Ā = [[0.1, 0], [0, 0]], R = R + Ā·R = R + [[0.125, 0], [0, 0]]
    want = torch.tensor([[1.375, 0.0], [0.25, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(gae_relevance(attentions, gradients), want)
    for row in (0, 1):  # one row alone, through the factors from the left
        torch.testing.assert_close(gae_relevance(attentions, gradients, row=row), want[row])


def test_one_row_of_gae_is_the_row_of_the_whole_matrix():
    generator = torch.Generator().manual_seed(0)
    attentions = [torch.rand(3, 7, 7, generator=generator).softmax(-1) for _ in range(5)]
    gradients = [torch.randn(3, 7, 7, generator=generator) for _ in range(5)]
    whole = gae_relevance(attentions, gradients)
    for row in (0, 4):
        torch.testing.assert_close(gae_relevance(attentions, gradients, row=row), whole[row], rtol=1e-12, atol=1e-12)


def official_generate_relevance(model, x, index):
    """The notebook of Chefer et al. (Transformer-MM-Explainability, ViT): a forward with each
    block's attention kept and its gradient hooked, one-hot backward, then R += avg_heads(cam,
    grad) @ R from R = I; R[0, 1:]. Written out on timm's layers, unfused."""
    attentions, gradients = [], []
    h = model.norm_pre(model._pos_embed(model.patch_embed(x)))
    for block in model.blocks:
        a = block.attn
        y = block.norm1(h)
        b, n, c = y.shape
        q, k, v = a.qkv(y).reshape(b, n, 3, a.num_heads, c // a.num_heads).permute(2, 0, 3, 1, 4)
        attention = ((q * a.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        attention.register_hook(lambda grad: gradients.insert(0, grad))  # backward comes last block first
        attentions.append(attention)
        h = h + block.ls1(a.proj((attention @ v).transpose(1, 2).reshape(b, n, c)))
        h = h + block.ls2(block.mlp(block.norm2(h)))
    output = model.head(model.norm(h)[:, 0])
    one_hot = torch.zeros_like(output)
    one_hot[0, index] = 1
    model.zero_grad()
    (one_hot * output).sum().backward()
    relevance = torch.eye(attentions[0].shape[-1])
    for cam, grad in zip(attentions, gradients):
        cam = (grad * cam)[0].clamp(min=0).mean(dim=0)  # avg_heads
        relevance = relevance + cam @ relevance  # apply_self_attention_rules
    return output.detach(), relevance[0, 1:].detach()


def test_gae_equals_the_official_notebook_on_a_random_vit(small_vit):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for target in (0, 3):
        result = explained_pass(private_copy(small_vit), x.clone(), target)
        ours = maps_of(result, 1, (4, 4))["gae"].ravel()
        output, want = official_generate_relevance(private_copy(small_vit), x.clone(), target)
        torch.testing.assert_close(torch.from_numpy(result.logits), output[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(ours, want.numpy(), atol=1e-5, rtol=1e-5)
        assert np.ptp(ours) > 1e-3  # a map that says something
    assert small_vit.blocks[0].attn.fused_attn  # the shared model kept its fused path


def test_gradcam_is_the_grad_cam_packages_own(small_vit):
    """Our map before upsampling, put through the package's scaling and resizing, is exactly
    what its GradCAM gives for the same layer and reshape."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    ours = explained_pass(private_copy(small_vit), x.clone(), 2).gradcam
    model = private_copy(small_vit)

    def reshape(tokens):
        return tokens[:, 1:].reshape(tokens.shape[0], 4, 4, tokens.shape[-1]).permute(0, 3, 1, 2)

    with GradCAM(model=model, target_layers=[model.blocks[-1].norm1], reshape_transform=reshape) as cam:
        want = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(2)])
    assert ours.shape == (4, 4) and ours.max() > 0
    # the package scales each layer's map to 0–1 at the input size, then the mean over layers again
    np.testing.assert_allclose(scale_cam_image(scale_cam_image(ours[None], (32, 32))), want, atol=1e-5)
    assert small_vit.blocks[-1].norm1._forward_hooks == {}  # no hook left on the shared model


def test_deletion_and_insertion_by_hand(demo, image):
    assert list(deletion_order(np.array([[0.2, 0.9], [0.2, 0.5]]))) == [1, 3, 0, 2]  # ties in patch order
    assert list(step_counts(10, 4)) == [0, 2, 5, 7, 10]
    assert auc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(1.0)
    analysis = analyze_image(demo, image)
    measured = faithfulness(demo, analysis, steps=4)
    x = analysis.x
    with torch.no_grad():
        whole = demo.model(x).softmax(-1)[0, analysis.target].item()
        empty = demo.model(torch.zeros_like(x)).softmax(-1)[0, analysis.target].item()
    for method in METHODS:
        deletion, insertion = measured.deletion[method], measured.insertion[method]
        assert deletion.shape == insertion.shape == (5,)
        assert deletion[0] == pytest.approx(whole, abs=1e-5) and insertion[-1] == pytest.approx(whole, abs=1e-5)
        assert deletion[-1] == pytest.approx(empty, abs=1e-5) and insertion[0] == pytest.approx(empty, abs=1e-5)
    # one step by hand: half of the 64 patches of the GAE order removed, in the model's input
    order = deletion_order(analysis.maps["gae"])
    keep = np.ones(64, bool)
    keep[order[:32]] = False
    mask = torch.from_numpy(keep.reshape(8, 8)).repeat_interleave(8, 0).repeat_interleave(8, 1)
    with torch.no_grad():
        half = demo.model(x * mask).softmax(-1)[0, analysis.target].item()
    assert measured.deletion["gae"][2] == pytest.approx(half, abs=1e-5)
    assert measured.fastest_deletion in METHODS and measured.fastest_insertion in METHODS


def test_the_sanity_check_randomises_a_private_copy_and_leaves_the_model_as_it_was(demo, image):
    before = {k: v.clone() for k, v in demo.model.state_dict().items()}
    analysis = analyze_image(demo, image)
    correlations = sanity(demo, analysis)
    assert correlations.shape == (len(demo.model.blocks) + 1, len(METHODS))
    np.testing.assert_allclose(correlations[0], 1.0, atol=1e-6)  # nothing randomised yet: the same maps
    np.testing.assert_allclose(correlations[:, METHODS.index("random")], 1.0)  # it never looks at the model
    assert (correlations[-1, [METHODS.index("gae"), METHODS.index("gradcam")]] < 0.9).all()
    for key, value in demo.model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert all(p.grad is None for p in demo.model.parameters())
    assert all(getattr(m, "fused_attn", True) for m in demo.model.modules())
    assert compute.is_flat(correlations)[METHODS.index("random")]


def test_export_explain_writes_every_method_and_its_curves(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "explain.npz"
    assert main(["export", "explain", "--model", "demo_vit", "--image", str(SYNTHETIC[1]), "--target", "square",
                 "--steps", "5", "--out", str(out)]) == 0
    data = np.load(out)
    assert int(data["target"]) == 1 and tuple(data["methods"]) == METHODS
    for method in METHODS:
        assert data[f"map_{method}"].shape == (8, 8) and data[f"map_{method}"].dtype == np.float32
        assert data[f"deletion_{method}"].shape == data[f"insertion_{method}"].shape == (6,)
        assert 0 <= float(data[f"auc_deletion_{method}"]) <= 1
    assert "deletes fastest" in capsys.readouterr().out
    assert main(["export", "explain", "--model", "demo_vit", "--image", str(SYNTHETIC[1]), "--target", "giraffe",
                 "--out", str(out)]) != 0
    assert "No class is named 'giraffe'" in capsys.readouterr().err


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_tab_draws_every_figure_and_redraws_without_a_model_run(image, lang, monkeypatch):
    import gradio as gr
    import plotly.graph_objects as go

    from explorer.lenses.explain import tab
    from explorer.ui.widgets import PageContext, Translations

    with gr.Blocks():
        ctx = PageContext(image=gr.State(None), lang=gr.Radio(["en", "zh"], value="en"),
                          translations=Translations(), active_tab=gr.State("explain"))
        tab.build(ctx)
    assert ctx.lenses[-1].tab_id == "explain"
    c = tab.Controls(image, "demo_vit", "model", False, None, "Viridis", 4, "", lang)
    out = tab.run(c)
    assert out["curves_plot"] is None and out["verdict"]
    c.target = "1"
    measured = tab.measure(c)
    checked = tab.check(c)
    for figure in (measured["maps_plot"], measured["curves_plot"], checked["sanity_plot"]):
        go.Figure(figure.to_dict())  # valid
        layout = figure.layout
        assert layout.title.text and (layout.xaxis.title.text or layout.coloraxis)
    assert checked["maps_plot"].layout.coloraxis.colorbar.title.text
    assert ("正方形" if lang == "zh" else "square") in measured["target_line"]
    c.target = "正方形" if lang == "zh" else "Square"  # a name as the page shows it, in its language
    assert tab.run(c)["target"]["value"] == "1"
    top = {int(v) for _, v in out["target"]["choices"]}
    outside = next(i for i in range(8) if i not in top)
    c.target = str(outside)  # a class outside the top-5 is listed too, under its name
    assert str(outside) in [value for _, value in tab.run(c)["target"]["choices"]]
    c.target = "1"
    assert ("删除得最快" if lang == "zh" else "deletes fastest") in measured["verdict"]
    monkeypatch.setattr(tab, "analyze_image", lambda *a, **k: pytest.fail("a redraw ran the model"))
    monkeypatch.setattr(tab, "faithfulness", lambda *a, **k: pytest.fail("a redraw measured again"))
    c.scale = "Magma"
    again = tab.redraw(c)
    assert again["curves_plot"] is not None and again["sanity_plot"] is not None
    assert "giraffe" in str(pytest.raises(gr.Error, tab.run, tab.Controls(image, "demo_vit", "model", False,
                                                                          "giraffe", "Viridis", 4, "", lang)).value)


@pytest.mark.parametrize("name, size, prefix", [("deit_tiny_distilled_patch16_224", 64, 2),
                                                ("vit_small_patch14_reg4_dinov2", 56, 5)])
def test_distillation_and_register_tokens_are_left_out_of_every_map(name, size, prefix):
    import timm

    from explorer.lenses.explain import reads_explainable

    model = timm.create_model(name, img_size=size, num_classes=4).eval()
    assert reads_explainable(model) and model.num_prefix_tokens == prefix
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    grid = (size // model.patch_embed.patch_size[0],) * 2
    result = explained_pass(private_copy(model), x, 1)
    assert result.attentions[0].shape[-1] == prefix + grid[0] * grid[1]
    maps = maps_of(result, prefix, grid)
    for method in METHODS:
        assert maps[method].shape == grid and np.isfinite(maps[method]).all(), method
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(result.logits), model(x)[0], atol=1e-4, rtol=0)


def test_swin_gets_grad_cam_on_its_last_stage_and_the_random_map(tmp_path):
    """Swin attends within windows: Grad-CAM (the package's own, on the last block's first
    LayerNorm, (B, H, W, C)) and the random map; deletion works in last-stage tokens."""
    import timm
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from explorer.lenses.explain import reads_explainable
    from explorer.lenses.explain.compute import SWIN_METHODS, methods_of, perturbation_curves, token_grid

    torch.manual_seed(0)
    model = timm.create_model("swin_tiny_patch4_window7_224", img_size=64, window_size=4, embed_dim=24,
                              depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), num_classes=3).eval()
    assert reads_explainable(model) and methods_of(model) == SWIN_METHODS
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    assert token_grid(model, x) == ((2, 2), (32, 32))
    result = explained_pass(private_copy(model), x.clone(), 1)
    maps = maps_of(result, 0, (2, 2))
    assert set(maps) == set(SWIN_METHODS) and maps["gradcam"].shape == (2, 2)
    copy = private_copy(model)
    layer = copy.layers[-1].blocks[-1].norm1
    with GradCAM(model=copy, target_layers=[layer], reshape_transform=lambda t: t.permute(0, 3, 1, 2)) as cam:
        want = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(1)])
    assert maps["gradcam"].max() > 0
    np.testing.assert_allclose(scale_cam_image(scale_cam_image(maps["gradcam"][None], (64, 64))), want, atol=1e-5)
    curves = perturbation_curves(model, x, maps, 1, steps=4)
    with torch.no_grad():
        whole = model(x).softmax(-1)[0, 1].item()
    assert curves["gradcam"][0][0] == pytest.approx(whole, abs=1e-5) and curves["gradcam"][0].shape == (5,)
    correlations = compute.cascading_randomisation(model, x, 1, maps)
    assert correlations.shape == (1 + 5, 2)


def test_a_borrowed_copy_serves_one_request_at_a_time_and_comes_back_clean(small_vit):
    with compute.borrowed_copy(small_vit) as first:
        with compute.borrowed_copy(small_vit) as second:  # a request at the same time gets its own
            assert second is not first
        explained_pass(first, torch.randn(1, 3, 32, 32), 0)
    with compute.borrowed_copy(small_vit) as again:
        assert again in (first, second) and again is not small_vit
        assert all(not m._forward_hooks for m in again.modules())
        assert again.blocks[0].attn.qkv.weight is small_vit.blocks[0].attn.qkv.weight  # weights shared
    with pytest.raises(RuntimeError), compute.borrowed_copy(small_vit) as failed:
        raise RuntimeError
    with compute.borrowed_copy(small_vit) as after, compute.borrowed_copy(small_vit) as other:
        assert failed not in (after, other)  # a copy that failed mid-pass is not reused


def test_a_second_model_explains_the_same_class_beside_the_first(image, monkeypatch):
    """The demo ViT and the demo Swin share the shape classes: the Swin's maps are for the same
    class, follow a new target and a colour change (cached: no model runs then), and a model the
    lens cannot read is named in the second model's line while the first's maps stay."""
    from explorer.lenses.explain import tab

    c = tab.Controls(image, "demo_vit", "model", False, "3", "Viridis", 4, "demo_swin", "en")
    out = tab.run(c)
    assert out["maps_plot"] is not None and "demo_swin" in out["compare_maps_plot"].layout.title.text
    assert "(class 3; the same class" in out["compare_line"]
    assert [a.text for a in out["compare_maps_plot"].layout.annotations][:2] == ["Grad-CAM", "random"]
    c.target = "5"
    assert "(class 5;" in tab.run(c)["compare_line"]
    monkeypatch.setattr(tab, "analyze_image", lambda *a, **k: pytest.fail("a redraw ran a model"))
    c.scale = "Magma"
    again = tab.redraw(c)
    assert again["compare_maps_plot"].layout.coloraxis.colorscale != out["compare_maps_plot"].layout.coloraxis.colorscale
    c.lang = "zh"
    chinese = tab.redraw(c)
    from explorer.ui.i18n import class_label

    assert "与第一个模型相同的类别" in chinese["compare_line"]
    assert f"“{class_label('ring', 'zh')}”" in chinese["compare_line"]  # class 5, by its Chinese name
    assert "的相关性" in chinese["compare_maps_plot"].layout.title.text
    c.lang = "en"
    c.compare = "resnet18"
    bad = tab.redraw(c)
    assert "resnet18" in bad["compare_line"] and bad["compare_maps_plot"] is None and bad["maps_plot"] is not None
    c.compare = ""
    assert tab.redraw_second(c) == {"compare_line": "", "compare_maps_plot": None}
