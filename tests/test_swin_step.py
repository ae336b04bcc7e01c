"""Stepping through one Swin head (lenses/swin/step.py): the stepped token equals the block's own
fused window attention, its residual and its output, in regular and shifted blocks, on a padded
map; each key's table row is timm's relative-position index for its offset; the shift mask is
−100 exactly between regions; the export writes the step's arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.models.swin_transformer import SwinTransformer

from explorer.lenses.swin.step import step_through, swin_blocks


@pytest.fixture(scope="module")
def swin():
    torch.manual_seed(0)
    model = SwinTransformer(img_size=64, patch_size=4, window_size=4, embed_dim=32, depths=(2, 2), num_heads=(2, 4),
                            num_classes=5, strict_img_size=False, dynamic_img_size=True, always_partition=True).eval()
    with torch.no_grad():  # timm starts the tables near zero: make the bias matter
        for _, _, block in swin_blocks(model):
            block.attn.relative_position_bias_table.normal_()
    for _, _, block in swin_blocks(model):  # timm leaves Swin's SDPA path off by default (experimental)
        block.attn.fused_attn = True
    return model


@pytest.mark.parametrize("size", [(64, 64), (56, 72)])  # 56×72: a 14×18 map padded to 16×20
def test_the_stepped_token_reaches_the_blocks_own_output(swin, size):
    x = torch.randn(1, 3, *size)
    shifted = 0
    for layer, (_, _, block) in enumerate(swin_blocks(swin)):
        rows, cols = step_through(swin, x, layer, 0, 0).grid
        for head in range(block.attn.num_heads):
            for query in (0, rows * cols - 1, (rows // 2) * cols + cols - 1):  # corners wrap in shifted blocks
                s = step_through(swin, x, layer, head, query)
                np.testing.assert_allclose(s.projected, s.model_projected, atol=1e-5)
                np.testing.assert_allclose(s.residual, s.model_residual, atol=1e-5)
                np.testing.assert_allclose(s.stepped_block_output, s.model_block_output, atol=1e-5)
                assert s.probs.sum() == pytest.approx(1, abs=1e-5)
                # the query is among its own window's keys, at its own position
                assert (s.key_positions == s.query_position).all(axis=1).sum() == 1
                wh, ww = block.window_size
                index = (s.bias_offset[:, 0] + wh - 1) * (2 * ww - 1) + s.bias_offset[:, 1] + ww - 1
                np.testing.assert_array_equal(s.bias_index, index)
                table = block.attn.relative_position_bias_table.detach().numpy()
                np.testing.assert_allclose(s.bias, table[s.bias_index, head], atol=1e-6)
                shifted += bool(any(block.shift_size))
    assert shifted


def test_the_shift_mask_separates_the_rolled_in_regions(swin):
    x = torch.randn(1, 3, 64, 64)
    s = step_through(swin, x, 1, 0, 0)  # shifted block, the corner token: its window wraps around
    assert set(np.unique(s.mask)) == {0.0, -100.0}
    # keys from the query's own region (the same side of both wrap lines) are not masked
    (qr, qc), rows, cols = s.query_position, *s.grid
    shift = swin_blocks(swin)[1][2].shift_size
    same = ((s.key_positions[:, 0] < rows - shift[0]) == (qr < rows - shift[0])) & \
           ((s.key_positions[:, 1] < cols - shift[1]) == (qc < cols - shift[1]))
    np.testing.assert_array_equal(s.mask == 0, same)
    assert s.probs[~same].max() < 1e-30
    unshifted = step_through(swin, x, 0, 0, 0)
    assert not unshifted.mask.any()


def test_out_of_range_arguments_are_refused(swin):
    x = torch.randn(1, 3, 64, 64)
    for args, word in (((4, 0, 0), "layer"), ((0, 2, 0), "head"), ((0, 0, 256), "query token")):
        with pytest.raises(ValueError, match=word):
            step_through(swin, x, *args)


def test_export_swin_writes_the_steps_arrays(tmp_path):
    from explorer.cli import main

    out = tmp_path / "step.npz"
    assert main(["export", "swin", "--model", "demo_swin", "--image", "assets/examples/chelsea.jpg",
                 "--step", "1", "0", "5", "--out", str(out)]) == 0
    with np.load(out) as d:
        n = d["step_k"].shape[0]
        for name in ("step_logits", "step_bias", "step_mask", "step_probs", "step_bias_index"):
            assert d[name].shape == (n,)
        assert d["step_x"].ndim == d["step_q"].ndim == d["step_out"].ndim == 1
        assert d["step_probs"].sum() == pytest.approx(1, abs=1e-5)
