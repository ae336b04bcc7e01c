"""Step through one head: a hand-checkable tiny ViT, and for every family (ViT with prefix
tokens, Swin v1/v2 shifted and padded, CrossFormer SDA/LDA padded, Twins LSA/GSA) the stepped
projection and residual equal what the model computed with fused attention on."""

import numpy as np
import pytest
import timm
import torch
from timm.models.swin_transformer import SwinTransformer
from timm.models.swin_transformer_v2 import SwinTransformerV2
from timm.models.vision_transformer import VisionTransformer

from explorer.core import capture
from explorer.lenses.stepping import block_count, step_through
from explorer.models.crossformer import NEG_INF, CrossFormer, dpb_to_rpb

pytestmark = pytest.mark.usefixtures("one_thread")
ATOL = 1e-5


def _fused(model):
    """Fused SDPA on wherever timm has the switch (Swin's default is off: 'experimental')."""
    count = 0
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = True
            count += 1
    assert count > 0
    return model


def _agree(s):
    assert s.family and s.num_keys == s.k.shape[0] == s.v.shape[0] == s.probs.shape[0]
    np.testing.assert_allclose(s.projected, s.model_projected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(s.residual, s.model_residual, atol=ATOL, rtol=0)
    assert abs(float(s.probs.sum()) - 1) < 1e-5
    np.testing.assert_allclose(s.logits, s.dot * s.scale, atol=1e-5, rtol=1e-5)
    total = s.logits + s.bias + s.mask
    p = np.exp(total - total.max())
    np.testing.assert_allclose(s.probs, p / p.sum(), atol=1e-6)
    np.testing.assert_allclose(s.out, s.probs @ s.v, atol=1e-5)
    dh = s.q.shape[0]
    np.testing.assert_allclose(s.heads_out[s.head * dh:(s.head + 1) * dh], s.out, atol=1e-6)
    assert float(np.abs(s.model_projected).max()) > 1e-2  # not trivially zero
    assert len(s.key_labels) == s.num_keys and s.key_positions.shape == (s.num_keys, 2)


# --------------------------------------------------------------------------- by hand

def test_tiny_vit_by_hand():
    torch.manual_seed(0)
    m = VisionTransformer(img_size=8, patch_size=4, embed_dim=4, depth=1, num_heads=2, qkv_bias=False,
                          num_classes=2).eval()
    # Tokens = CLS + 4 patches; patches embed to 0 so every token is its position embedding,
    # each already mean 0 / variance 1, so norm1 (weight 1, bias 0) leaves them (÷√(1+1e-6)).
    tokens = np.array([[1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1], [-1, 1, 1, -1], [-1, -1, 1, 1]],
                      dtype=np.float32)
    with torch.no_grad():
        m.patch_embed.proj.weight.zero_()
        m.patch_embed.proj.bias.zero_()
        m.cls_token.zero_()
        m.pos_embed.copy_(torch.from_numpy(tokens)[None])
        eye = torch.eye(4)
        m.blocks[0].attn.qkv.weight.copy_(torch.cat([eye, eye, eye]))  # q = k = v = x; head h = dims 2h, 2h+1
        m.blocks[0].attn.proj.weight.copy_(eye)
        m.blocks[0].attn.proj.bias.zero_()
    assert m.blocks[0].attn.fused_attn
    s = step_through(m, torch.randn(1, 3, 8, 8), layer=0, head=0, query=0)
    ln = 1 / np.sqrt(1 + 1e-6)
    # Query CLS = (1, −1) in head 0; keys (1,−1), (1,1), (1,−1), (−1,1), (−1,−1).
    np.testing.assert_allclose(s.x, tokens[0] * ln, atol=1e-6)
    np.testing.assert_allclose(s.q, [1 * ln, -1 * ln], atol=1e-6)
    dot = np.array([2.0, 0.0, 2.0, -2.0, 0.0]) * ln * ln
    np.testing.assert_allclose(s.dot, dot, atol=1e-5)
    assert s.scale == pytest.approx(2 ** -0.5)
    logits = dot / np.sqrt(2)
    np.testing.assert_allclose(s.logits, logits, atol=1e-5)
    e = np.exp(logits)
    probs = e / e.sum()  # e^√2, 1, e^√2, e^−√2, 1 over their sum
    np.testing.assert_allclose(s.probs, probs, atol=1e-6)
    v = tokens[:, :2] * ln
    np.testing.assert_allclose(s.out, probs @ v, atol=1e-6)
    # projection = identity: projected is the concatenation; residual adds the CLS token
    np.testing.assert_allclose(s.projected, s.heads_out, atol=1e-6)
    np.testing.assert_allclose(s.residual, tokens[0] + s.heads_out, atol=1e-6)
    assert s.key_labels == ("CLS", "(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)")
    assert s.query_position is None and s.grid == (2, 2)
    np.testing.assert_allclose(s.projected, s.model_projected, atol=1e-6)
    np.testing.assert_allclose(s.residual, s.model_residual, atol=1e-6)


# --------------------------------------------------------------------------- ViT

@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=32,
                          depth=2, num_heads=2, reg_tokens=2, init_values=0.5, qk_norm=True, num_classes=3).eval()
    with torch.no_grad():
        m.pos_embed.normal_()
        m.cls_token.normal_()
        m.reg_token.normal_()
        for blk in m.blocks:
            blk.attn.qkv.weight.normal_(0, 0.4)
            blk.attn.proj.weight.normal_(0, 0.4)
    return m


def test_vit_prefix_and_patch_tokens(vit):
    x = torch.randn(1, 3, 32, 32)
    cap = capture.capture_attention(vit, x)
    assert all(b.attn.fused_attn for b in vit.blocks)
    assert block_count(vit) == 2
    for layer, head, query in [(0, 0, 0), (1, 1, 1), (1, 0, 2), (0, 1, 3 + 7)]:
        s = step_through(vit, x, layer, head, query)
        _agree(s)
        np.testing.assert_allclose(s.probs, cap.attentions[layer][0, head, query].cpu().numpy(), atol=1e-6)
        assert s.key_labels[:3] == ("CLS", "REG1", "REG2") and s.num_keys == 3 + 16
    assert step_through(vit, x, 0, 1, 10).query_position == (1, 3)


def test_arguments_are_checked(vit):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="layer 2"):
        step_through(vit, x, 2, 0, 0)
    with pytest.raises(ValueError, match="head 2"):
        step_through(vit, x, 0, 2, 0)
    with pytest.raises(ValueError, match="query 19"):
        step_through(vit, x, 0, 0, 19)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        step_through(vit, torch.randn(2, 3, 32, 32), 0, 0, 0)


# --------------------------------------------------------------------------- Swin

def _swin():
    torch.manual_seed(0)
    m = SwinTransformer(img_size=(40, 56), patch_size=4, window_size=4, embed_dim=16, depths=(2, 2),
                        num_heads=(2, 4), strict_img_size=False, num_classes=3).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_()
            elif "attn.qkv.weight" in name:
                p.normal_(0, 0.3)
    return _fused(m)


def test_swin_shifted_padded_wraparound():
    from explorer.lenses.swin.compute import analyze, shifted_window_mask

    m = _swin()
    x = torch.randn(1, 3, 44, 60)  # 11×15 tokens: padded to 12×16 with window 4
    a = analyze(m, x)
    block = m.layers[0].blocks[1]
    assert any(block.shift_size) and block.attn.fused_attn
    rpi = block.attn.relative_position_index.numpy()
    table = block.attn.relative_position_bias_table.detach().numpy()
    seen_mask = False
    for query in [0, 14, 10 * 15, 11 * 15 - 1, 5 * 15 + 7]:  # corners wrap around under the roll
        s = step_through(m, x, 1, 1, query)
        _agree(s)
        assert s.grid == (11, 15) and s.family == "swin"
        row, col = s.query_position
        w, i = a.window_of_token(0, 1, row, col)
        np.testing.assert_allclose(s.probs, a.block(0, 1).probs[w, 1, i], atol=1e-6)
        np.testing.assert_array_equal(s.bias_index, rpi[i])
        dy, dx = s.bias_offset[:, 0], s.bias_offset[:, 1]
        np.testing.assert_array_equal((dy + 3) * 7 + dx + 3, s.bias_index)
        np.testing.assert_allclose(s.bias, table[s.bias_index, 1], atol=1e-6)
        assert tuple(s.key_positions[i]) == (row, col)
        real = s.key_positions[:, 0] >= 0
        assert set(np.unique(s.mask)) <= {0.0, -100.0}
        # the mask is the region mask on the padded, rolled grid (timm rolls, then pads: on a
        # padded map wrapped and unwrapped tokens can share a region, see ``mask_wrap_leak``)
        region = shifted_window_mask(11, 15, 4, 2)[w, i]
        np.testing.assert_array_equal(s.mask, region)
        seen_mask |= bool((s.mask == -100).any())
        if not real.all():
            assert s.key_labels[int(np.argmin(real))] == "pad"
    assert seen_mask
    for layer, head, query in [(0, 0, 0), (0, 1, 11 * 15 - 1), (2, 3, 5), (3, 0, 47)]:
        _agree(step_through(m, x, layer, head, query))


def test_swinv2_cosine_steps():
    torch.manual_seed(0)
    m = SwinTransformerV2(img_size=(32, 32), patch_size=4, window_size=4, embed_dim=16, depths=(2, 2),
                          num_heads=(2, 4), num_classes=3).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "attn.qkv.weight" in name or "cpb_mlp" in name:
                p.normal_(0, 0.5)
    for layer, head, query in [(1, 1, 63), (0, 0, 9), (2, 3, 0)]:
        s = step_through(m, torch.randn(1, 3, 32, 32), layer, head, query)
        _agree(s)
        assert s.family == "swinv2" and np.abs(s.dot).max() <= 1 + 1e-5  # a cosine
        assert (s.bias > 0).all() and (s.bias < 16).all()


# --------------------------------------------------------------------------- CrossFormer

def test_crossformer_sda_lda_padded():
    torch.manual_seed(0)
    m = CrossFormer(img_size=72, embed_dim=48, depths=[2, 2, 2, 1], num_heads=[2, 2, 4, 4],
                    group_size=[4, 4, 4, 4], num_classes=5).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".pos." in name or "attn.qkv.weight" in name:
                p.normal_(0.0, 0.5)
    x = torch.randn(1, 3, 72, 72)  # 18×18 tokens, groups of 4: padded to 20×20
    _, rec = capture.capture(m, x)
    names = [n for n, mod in m.named_modules() if hasattr(mod, "position_bias")]
    rpb = dpb_to_rpb(m).eval()
    for layer, head, query in [(0, 0, 0), (0, 1, 18 * 18 - 1), (1, 1, 17 * 18 + 3), (1, 0, 40), (3, 1, 80), (5, 3, 2)]:
        s = step_through(m, x, layer, head, query)
        _agree(s)
        record = rec.records[names[layer]]
        g, i = (record.layout.token_index() == query).nonzero()[0].tolist()
        np.testing.assert_allclose(s.probs, record.probs[0, g, head, i].cpu().numpy(), atol=1e-6)
        assert s.key_positions[i].tolist() == list(s.query_position)
        pad = s.key_positions[:, 0] < 0
        np.testing.assert_array_equal(s.mask[pad], NEG_INF)
        assert (s.mask[~pad] == 0).all()
        if layer == 1 or query == 18 * 18 - 1:  # the SDA corner group and these LDA groups hold padding
            assert pad.any() and s.grid == (18, 18)
        if layer == 1:  # LDA: members spread at the interval 5
            real = s.key_positions[~pad]
            assert len({int(r) % 5 for r in real[:, 0]}) == 1 and np.ptp(real[:, 0]) >= 5
        t = step_through(rpb, x, layer, head, query)
        _agree(t)
        np.testing.assert_allclose(t.bias, s.bias, atol=1e-5)
        np.testing.assert_array_equal(t.bias_index, s.bias_index)


# --------------------------------------------------------------------------- Twins

def test_twins_lsa_gsa_padded():
    torch.manual_seed(0)
    m = timm.create_model("twins_svt_small", pretrained=False, img_size=64, patch_size=4, embed_dims=(16, 32),
                          num_heads=(2, 4), mlp_ratios=(2, 2), depths=(2, 2), wss=(4, 4), sr_ratios=(4, 2),
                          num_classes=5).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".attn." in name and name.endswith("weight") and p.dim() == 2:
                p.normal_(0, 0.4)
    assert all(mod.fused_attn for mod in m.modules() if hasattr(mod, "fused_attn"))
    x = torch.randn(1, 3, 36, 52)  # 9×13 tokens: LSA windows of 4 padded to 12×16
    _, rec = capture.capture(m, x)
    for layer, head, query, name in [(0, 0, 0, "blocks.0.0.attn"), (0, 1, 9 * 13 - 1, "blocks.0.0.attn"),
                                     (1, 1, 50, "blocks.0.1.attn"), (2, 3, 23, "blocks.1.0.attn"),
                                     (3, 2, 5, "blocks.1.1.attn")]:
        s = step_through(m, x, layer, head, query)
        _agree(s)
        row, col = s.query_position
        probs = rec.records[name]
        if s.family == "twins_lsa":
            ws, cols = 4, -(-s.grid[1] // 4)
            w, i = (row // ws) * cols + col // ws, (row % ws) * ws + col % ws
            np.testing.assert_allclose(s.probs, probs[0, w, head, i].cpu().numpy(), atol=1e-6)
            assert s.key_grid == s.grid
            if query == 9 * 13 - 1:
                assert "pad" in s.key_labels and (s.key_positions[:, 0] < 0).any()
        else:
            np.testing.assert_allclose(s.probs, probs[0, head, query].cpu().numpy(), atol=1e-6)
            assert s.num_keys == s.key_grid[0] * s.key_grid[1] and s.key_grid != s.grid
    assert step_through(m, x, 1, 0, 0).key_grid == (2, 3)  # 9×13 sub-sampled by 4 (floor)


# --------------------------------------------------------------------------- demos

@pytest.mark.parametrize("family", ["vit", "swin", "crossformer", "twins"])
def test_demo_models(family):
    from explorer.train.recipes import load_demo

    try:
        model, _ = load_demo(family)
    except FileNotFoundError:
        pytest.skip("demo weights not bundled")
    if family == "swin":
        _fused(model)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    n = block_count(model)
    for layer in (0, n - 1):
        s = step_through(model, x, layer, 0, 0)
        np.testing.assert_allclose(s.projected, s.model_projected, atol=ATOL, rtol=0)
        np.testing.assert_allclose(s.residual, s.model_residual, atol=ATOL, rtol=0)
