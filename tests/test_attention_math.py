"""The attention lens's mathematics on hand-checkable cases, and its equivalences."""

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from explorer.core.capture import capture_attention
from explorer.core.preprocess import native_grid, preprocess
from explorer.lenses.attention.compute import (attention_rollout, mean_attention_distance,
                                               position_similarity, prefix_token_names,
                                               shape_table)


def stack(*layers):
    """(layers, heads, N, N) from lists of per-layer head matrices."""
    return np.array(layers, dtype=np.float32)


class TestRollout:
    def test_two_layers_by_hand(self):
        a1 = [[1.0, 0.0], [0.5, 0.5]]
        a2 = [[0.5, 0.5], [0.0, 1.0]]
        # A1' = 0.5·A1 + 0.5·I = [[1, 0], [.25, .75]]; A2' = [[.75, .25], [0, 1]]
        # R = A2' · A1' = [[.75 + .0625, .1875], [.25, .75]]
        result = attention_rollout(stack([a1], [a2]))
        np.testing.assert_allclose(result, [[0.8125, 0.1875], [0.25, 0.75]], atol=1e-7)
        np.testing.assert_allclose(attention_rollout(stack([a1], [a2]), row=0), [0.8125, 0.1875], atol=1e-7)

    def test_order_is_first_to_last(self):
        a1 = [[1.0, 0.0], [0.5, 0.5]]
        a2 = [[0.5, 0.5], [0.0, 1.0]]
        assert not np.allclose(attention_rollout(stack([a1], [a2])), attention_rollout(stack([a2], [a1])))

    def test_max_fusion_renormalises_rows(self):
        identity = [[1.0, 0.0], [0.0, 1.0]]
        swap = [[0.0, 1.0], [1.0, 0.0]]
        # max over heads = all ones; 0.5·ones + 0.5·I = [[1, .5], [.5, 1]]; rows / 1.5
        result = attention_rollout(stack([identity, swap]), "max")
        np.testing.assert_allclose(result, [[2 / 3, 1 / 3], [1 / 3, 2 / 3]], atol=1e-7)
        # min over heads = zeros: only the residual is left
        np.testing.assert_allclose(attention_rollout(stack([identity, swap]), "min"), np.eye(2), atol=1e-7)

    def test_rows_stay_stochastic(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(4, 3, 6, 6))
        att = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        for fusion in ("mean", "max", "min"):
            np.testing.assert_allclose(attention_rollout(att, fusion).sum(-1), 1, atol=1e-5)
            for row in (0, 5):  # one row alone is the whole matrix's row
                np.testing.assert_allclose(attention_rollout(att, fusion, row=row), attention_rollout(att, fusion)[row],
                                           atol=1e-7)

    def test_unknown_fusion(self):
        with pytest.raises(ValueError):
            attention_rollout(np.ones((1, 1, 2, 2)), "median")


class TestMeanAttentionDistance:
    def test_one_row_of_three_patches(self):
        # patches of 10 px in one row: centres at x = 5, 15, 25
        to_right = [[0, 1, 0], [0, 0, 1], [0, 0, 1]]  # distances 10, 10, 0 -> mean 20/3
        uniform = np.full((3, 3), 1 / 3)  # row sums of distances 30, 20, 30 -> /3 -> mean 80/9
        att = stack([to_right, uniform])
        result = mean_attention_distance(att, (1, 3), (10, 10), num_prefix_tokens=0)
        np.testing.assert_allclose(result, [[20 / 3, 80 / 9]], rtol=1e-6)

    def test_prefix_weight_counts_as_distance_zero(self):
        # token 0 is CLS; each patch gives half its attention to CLS, half to the other patch
        att = stack([[[1, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0]]])
        result = mean_attention_distance(att, (1, 2), (16, 16), num_prefix_tokens=1)
        np.testing.assert_allclose(result, [[8.0]])  # 0.5 · 16 px

    def test_vertical_and_diagonal_distances(self):
        # 2x2 grid, patch 4x6 px: (0,0) -> (1,1) is sqrt(4² + 6²)
        att = np.zeros((1, 1, 4, 4), dtype=np.float32)
        att[0, 0, 0, 3] = att[0, 0, 3, 0] = 1
        att[0, 0, 1, 2] = att[0, 0, 2, 1] = 1
        expected = np.hypot(4, 6)
        np.testing.assert_allclose(mean_attention_distance(att, (2, 2), (4, 6), 0), [[expected]], rtol=1e-6)


class TestPositionSimilarity:
    def test_cosine_grid(self):
        pos = np.array([[1.0, 0.0], [1.0, 1.0]])
        sim = position_similarity(pos, (1, 2))
        assert sim.shape == (1, 2, 1, 2)
        np.testing.assert_allclose(sim[0, :, 0, :], [[1, 2 ** -0.5], [2 ** -0.5, 1]], atol=1e-7)

    def test_layout_is_row_major(self):
        pos = np.eye(6)
        sim = position_similarity(pos, (2, 3))
        assert sim[1, 2, 1, 2] == 1 and sim[1, 2, 0, 2] == 0 and sim[0, 1, 0, 1] == 1


def _tiny_vit(**kwargs):
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, patch_size=16,
                             depth=3, num_classes=5, dynamic_img_size=True, **kwargs).eval()


def _reference_attention(model, x):
    """Unfused reference: the probabilities timm itself computes with fused_attn off."""
    reference = _tiny_vit_like(model)
    for module in reference.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    from timm.utils import AttentionExtract

    with torch.no_grad():
        return list(AttentionExtract(reference, method="hook")(x).values())


def _tiny_vit_like(model):
    clone = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, patch_size=16,
                              depth=3, num_classes=5, dynamic_img_size=True,
                              reg_tokens=getattr(model, "num_reg_tokens", 0)).eval()
    clone.load_state_dict(model.state_dict())
    return clone


class TestCapture:
    @pytest.mark.parametrize("fused", [True, False])
    @pytest.mark.parametrize("reg_tokens", [0, 4])
    def test_equals_unfused_reference(self, fused, reg_tokens):
        model = _tiny_vit(reg_tokens=reg_tokens)
        for module in model.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = fused
        x = torch.randn(2, 3, 64, 96)  # not square: 4x6 patches
        capture = capture_attention(model, x)
        reference = _reference_attention(model, x)
        assert len(capture.attentions) == len(reference) == 3
        n = 1 + reg_tokens + 24
        for got, want in zip(capture.attentions, reference):
            assert got.shape == (2, 3, n, n)
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(got.sum(-1), torch.ones(2, 3, n), atol=1e-5, rtol=0)
        assert capture.grid == (4, 6) and capture.num_prefix_tokens == 1 + reg_tokens
        with torch.no_grad():
            torch.testing.assert_close(capture.logits, model(x))

    def test_threads_do_not_see_each_others_tensors(self):
        import threading

        model = _tiny_vit()
        inputs = [torch.randn(1, 3, 64, 64) * (i + 1) for i in range(6)]
        expected = [capture_attention(model, x).attentions[-1] for x in inputs]
        results = {}

        def work(i):
            for _ in range(5):
                got = capture_attention(model, inputs[i]).attentions[-1]
                results.setdefault(i, []).append(got)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i, runs in results.items():
            for got in runs:
                torch.testing.assert_close(got, expected[i])

    def test_prefix_names(self):
        assert prefix_token_names(_tiny_vit()) == ("CLS",)
        assert prefix_token_names(_tiny_vit(reg_tokens=2)) == ("CLS", "REG1", "REG2")
        deit = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, depth=1)
        assert prefix_token_names(deit) == ("CLS", "DIST")


def test_shape_table_vit_b16_at_224():
    """The coursework's table: (B,3,224,224) -> (B,196,768) -> (B,197,768) -> blocks -> (B,K)."""
    model = timm.create_model("vit_base_patch16_224", pretrained=False, dynamic_img_size=True).eval()
    capture = capture_attention(model, torch.zeros(1, 3, 224, 224))
    rows = shape_table(capture.stages, (1, 3, 224, 224), model.global_pool)
    assert [(stage, shape) for stage, shape, _ in rows] == [
        ("input", "(B, 3, 224, 224)"),
        ("patch_embed", "(B, 196, 768)"),
        ("pos_drop", "(B, 197, 768)"),
        ("blocks 0–11", "(B, 197, 768)"),
        ("norm", "(B, 197, 768)"),
        ("head_drop", "(B, 768)"),
        ("head", "(B, 1000)"),
    ]
    assert "CLS" in rows[5][2]
    assert all(note for _, _, note in shape_table(capture.stages, (1, 3, 224, 224), "token", "zh"))


class TestPreprocess:
    def test_model_geometry_is_timms_transform(self):
        model = timm.create_model("vit_small_patch16_224.augreg_in21k_ft_in1k", pretrained=False)
        config = resolve_data_config(model=model)
        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 451, 3), dtype=np.uint8))
        pre = preprocess(image, config, "model", (16, 16))
        torch.testing.assert_close(pre.tensor[0], create_transform(**config)(image))
        assert pre.model_image.shape == (224, 224, 3)
        assert [en.split()[0] for en, _ in pre.steps] == ["Resize", "Centre-crop", "Model"]
        assert "451×300 → 372×248" in pre.steps[0][0]

    def test_native_geometry_keeps_aspect(self):
        model = timm.create_model("vit_small_patch16_224.augreg_in21k_ft_in1k", pretrained=False)
        config = resolve_data_config(model=model)
        image = Image.new("RGB", (600, 200), "white")
        pre = preprocess(image, config, "native", (16, 16))
        h, w = pre.tensor.shape[-2:]
        assert h % 16 == 0 and w % 16 == 0 and abs(w / h - 3) < 0.2
        assert abs((h // 16) * (w // 16) - 196) <= 20

    @pytest.mark.parametrize("size", [(1, 1), (5000, 3), (3, 5000), (224, 224)])
    def test_native_grid_bounds(self, size):
        rows, cols = native_grid(*size, base_tokens=196)
        assert 1 <= rows <= 64 and 1 <= cols <= 64


def test_capturing_chosen_blocks_records_only_those_and_the_same_numbers():
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=3, num_classes=0).eval()
    x = torch.randn(1, 3, 32, 32)
    every = capture_attention(model, x)
    last = capture_attention(model, x, blocks=(-1,))
    first_and_last = capture_attention(model, x, blocks=(0, 2))
    assert len(every.attentions) == 3 and len(last.attentions) == 1 and len(first_and_last.attentions) == 2
    assert torch.equal(last.attentions[0], every.attentions[2])
    assert torch.equal(first_and_last.attentions[0], every.attentions[0])
    assert torch.equal(last.logits, every.logits)


def _analysis(layers: int, heads: int, grid: tuple[int, int], prefix: tuple[str, ...]):
    from explorer.lenses.attention.compute import AttentionAnalysis

    n = len(prefix) + grid[0] * grid[1]
    return AttentionAnalysis(attention=np.zeros((layers, heads, n, n), np.float32), grid=grid, patch_size=(16, 16),
                             num_prefix_tokens=len(prefix), prefix_names=prefix, logits=np.zeros(3), predictions=[],
                             rollout={}, mean_distance=np.zeros((layers, heads)), pos_similarity=None, stages=[],
                             input_shape=(1, 3, 1, 1), pooling="token", model_image=np.zeros((1, 1, 3), np.uint8),
                             steps=())


def test_two_models_are_linked_by_relative_depth_head_and_place():
    from explorer.lenses.attention.compute import linked_view

    vit = _analysis(12, 6, (14, 14), ("CLS",))
    small = _analysis(6, 3, (8, 8), ("CLS", "REG1"))
    assert linked_view(vit, small, 0, 1, 0) == (0, 1, 0)  # first layer to first; CLS to CLS
    assert linked_view(vit, small, 11, None, 0)[:2] == (5, None)  # last to last; the mean stays the mean
    assert linked_view(vit, small, 6, 5, 0)[:2] == (3, None)  # 6·5/11 = 2.73 -> 3; no head 5: the mean
    # patch (2, 5) of 14×14 has its centre at (2.5/14, 5.5/14) of the picture = (1.43, 3.14) of 8×8
    assert small.patch_of_token(linked_view(vit, small, 11, 0, vit.token_of_patch(2, 5))[2]) == (1, 3)
    assert linked_view(vit, small, 11, 0, vit.token_of_patch(13, 13))[2] == small.token_of_patch(7, 7)
    assert linked_view(small, vit, 0, 0, 1) == (0, 0, 0)  # a register the other lacks: its first token
    assert linked_view(_analysis(1, 1, (2, 2), ("CLS",)), small, 0, 0, 0)[0] == 5  # one layer: the other's last
