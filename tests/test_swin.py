"""The Swin lens: windows, shift regions, mask and relative position index on hand-checkable
cases, and the captured attention of small random timm Swin models against timm itself."""

import copy
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import (SwinTransformer, SwinTransformerBlock, WindowAttention,
                                          get_relative_position_index, window_partition)
from timm.utils import AttentionExtract

from explorer.lenses.swin import compute
import explorer.core.capture as capture_module
from explorer.lenses.swin.compute import (analyze, capture_swin, cyclic_shift_steps,
                                          effective_window_shift, gather_bias, mask_wrap_leak,
                                          official_window_shift, relative_position_index,
                                          shift_region_ids, shifted_window_mask, swin_geometry,
                                          window_layout, window_partition_ids)

# --------------------------------------------------------------------------- masks by hand

REGIONS_8x8_WS4_S2 = np.array([
    [0, 0, 0, 0, 1, 1, 2, 2],
    [0, 0, 0, 0, 1, 1, 2, 2],
    [0, 0, 0, 0, 1, 1, 2, 2],
    [0, 0, 0, 0, 1, 1, 2, 2],
    [3, 3, 3, 3, 4, 4, 5, 5],
    [3, 3, 3, 3, 4, 4, 5, 5],
    [6, 6, 6, 6, 7, 7, 8, 8],
    [6, 6, 6, 6, 7, 7, 8, 8],
])


def naive_mask(H, W, ws, s):
    """FACTS.md, literally: region (h slice, w slice) over (0:H−ws, H−ws:H−s, H−s:H), h outer;
    windows row-major, tokens row-major inside; id_j − id_i ≠ 0 -> −100."""
    def part(i, n):
        return 0 if i < n - ws else (1 if i < n - s else 2)

    region = [[3 * part(r, H) + part(c, W) for c in range(W)] for r in range(H)]
    windows = []
    for wr in range(H // ws):
        for wc in range(W // ws):
            windows.append([region[wr * ws + a][wc * ws + b] for a in range(ws) for b in range(ws)])
    n = ws * ws
    mask = np.zeros((len(windows), n, n), dtype=np.float32)
    for w, ids in enumerate(windows):
        for i in range(n):
            for j in range(n):
                if ids[j] - ids[i] != 0:
                    mask[w, i, j] = -100.0
    return mask


def test_region_ids_by_hand():
    np.testing.assert_array_equal(shift_region_ids(8, 8, 4, 2), REGIONS_8x8_WS4_S2)


def test_window_ids_by_hand():
    expected = np.repeat(np.repeat(np.array([[0, 1], [2, 3]]), 4, axis=0), 4, axis=1)
    np.testing.assert_array_equal(window_partition_ids(8, 8, 4), expected)
    assert window_partition_ids(6, 10, (3, 5))[5, 9] == 3


def test_mask_equals_definition_and_timm():
    mask = shifted_window_mask(8, 8, 4, 2)
    expected = naive_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, expected)
    # window 0 sees one region only; window 3 (bottom right) all four corners apart
    assert not mask[0].any()
    assert (mask[3] == -100).sum() == 16 * 16 - 4 * 4 * 4
    block = SwinTransformerBlock(dim=8, input_resolution=(8, 8), num_heads=2, window_size=4,
                                 shift_size=2)
    np.testing.assert_array_equal(block.attn_mask.numpy(), expected)


@pytest.mark.parametrize("res, ws, s", [((12, 12), 4, 2), ((14, 21), 7, 3), ((9, 9), 4, 2)])
def test_mask_equals_timm_other_sizes(res, ws, s):
    block = SwinTransformerBlock(dim=8, input_resolution=res, num_heads=2, window_size=ws,
                                 shift_size=s)
    np.testing.assert_array_equal(shifted_window_mask(*res, ws, s), block.attn_mask.numpy())


# --------------------------------------------------------------------------- relative positions

def test_relative_position_index_ws2_by_hand():
    # positions (0,0) (0,1) (1,0) (1,1); index = (Δh+1)·3 + (Δw+1), Δ = p_i − p_j
    expected = np.array([
        [4, 3, 1, 0],
        [5, 4, 2, 1],
        [7, 6, 4, 3],
        [8, 7, 5, 4],
    ])
    np.testing.assert_array_equal(relative_position_index(2), expected)


def test_relative_position_index_ws7():
    index = relative_position_index(7)
    assert index.shape == (49, 49)
    assert index.max() == 168 and index.min() == 0
    assert (np.diag(index) == 84).all()  # Δ = (0, 0) is the table's centre
    np.testing.assert_array_equal(index, get_relative_position_index(7, 7).numpy())
    np.testing.assert_array_equal(relative_position_index((3, 5)),
                                  get_relative_position_index(3, 5).numpy())


def test_gather_bias():
    table = np.stack([np.arange(9.0), -np.arange(9.0)], axis=1)  # (9, 2 heads)
    bias = gather_bias(table, relative_position_index(2))
    assert bias.shape == (2, 4, 4)
    np.testing.assert_array_equal(bias[0], relative_position_index(2))
    np.testing.assert_array_equal(bias[1], -relative_position_index(2))
    attn = WindowAttention(dim=12, num_heads=3, window_size=3)
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
    ours = gather_bias(attn.relative_position_bias_table.detach().numpy(), relative_position_index(3))
    np.testing.assert_allclose(ours, attn._get_rel_pos_bias()[0].detach().numpy())


# --------------------------------------------------------------------------- shift and layout

def test_cyclic_shift_steps():
    steps = cyclic_shift_steps((8, 8), 4, 2)
    assert steps.rolled[0, 0] == 2 * 8 + 2  # torch.roll by −2: token (2, 2) moves to (0, 0)
    assert steps.rolled[7, 7] == 1 * 8 + 1  # token (1, 1) wraps to the bottom-right corner
    np.testing.assert_array_equal(steps.padded, steps.rolled)
    np.testing.assert_array_equal(steps.restored, steps.original)
    np.testing.assert_array_equal(steps.region_ids, REGIONS_8x8_WS4_S2)
    np.testing.assert_array_equal(steps.mask, naive_mask(8, 8, 4, 2))
    torch_rolled = torch.roll(torch.arange(64).view(8, 8), shifts=(-2, -2), dims=(0, 1))
    np.testing.assert_array_equal(steps.rolled, torch_rolled.numpy())
    assert steps.num_windows == 4 and steps.pad == (0, 0) and not steps.leak
    # the wrapped pieces sit exactly on the regions of the last row/column of windows
    np.testing.assert_array_equal(steps.origin == 1, np.isin(steps.region_ids, (6, 7)))
    np.testing.assert_array_equal(steps.origin == 3, steps.region_ids == 8)


def test_cyclic_shift_steps_rolls_an_image_by_whole_tokens():
    image = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    steps = cyclic_shift_steps(image, 4, 2, token_px=2)
    assert steps.grid == (8, 12)
    for r, c in [(0, 0), (7, 11), (3, 5)]:
        src_r, src_c = divmod(int(steps.rolled[r, c]), 12)
        np.testing.assert_array_equal(steps.values_rolled[2 * r:2 * r + 2, 2 * c:2 * c + 2],
                                      image[2 * src_r:2 * src_r + 2, 2 * src_c:2 * src_c + 2])


def test_padded_steps():
    steps = cyclic_shift_steps((9, 9), 4, 2)
    assert steps.pad == (3, 3) and steps.padded.shape == (12, 12)
    assert (steps.padded[9:] == -1).all() and (steps.padded[:, 9:] == -1).all()
    assert steps.num_windows == 9 and steps.leak


@pytest.mark.parametrize("H, W, ws, s", [(8, 8, 4, 2), (9, 7, 4, 2), (16, 16, 7, 3), (6, 10, 4, 2)])
def test_window_layout_matches_timm_partition(H, W, ws, s):
    """Run token positions through timm's own roll -> pad -> window_partition."""
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    grid = torch.stack([rows, cols], -1)[None].float()  # (1, H, W, 2)
    rolled = torch.roll(grid, shifts=(-s, -s), dims=(1, 2))
    pad_h, pad_w = (ws - H % ws) % ws, (ws - W % ws) % ws
    padded = F.pad(rolled, (0, 0, 0, pad_w, 0, pad_h), value=-1)
    expected = window_partition(padded, (ws, ws)).reshape(-1, ws * ws, 2).long().numpy()
    np.testing.assert_array_equal(window_layout(H, W, ws, s), expected)


def test_wrap_leak_rule():
    # timm rolls before padding: the mask keeps wrapped tokens apart only when the padding is
    # 0 or exactly ws − s (window 4, shift 2: sizes ≡ 0 or 2 mod 4)
    for H in range(5, 17):
        pad = (4 - H % 4) % 4
        assert mask_wrap_leak(H, 8, 4, 2) == (pad not in (0, 2)), H
    assert not mask_wrap_leak(9, 9, 4, 0)


def test_window_and_shift_rules():
    assert effective_window_shift((4, 4), 7, 3) == ((4, 4), (0, 0))
    assert official_window_shift((4, 4), 7, 3) == (4, 0)
    assert effective_window_shift((56, 56), 7, 3) == ((7, 7), (3, 3))
    # non-square map: timm clips per axis, the official code uses min(resolution) for both
    assert effective_window_shift((4, 9), 7, 3) == ((4, 7), (0, 3))
    assert official_window_shift((4, 9), 7, 3) == (4, 0)
    block = SwinTransformerBlock(dim=8, input_resolution=(4, 9), num_heads=2, window_size=7,
                                 shift_size=3)
    assert (tuple(block.window_size), tuple(block.shift_size)) == ((4, 7), (0, 3))
    assert effective_window_shift((4, 4), 7, 3, always_partition=True) == ((7, 7), (3, 3))


# --------------------------------------------------------------------------- capture

def _randomise_biases(model):
    """timm initialises the bias tables with std 0.02; make them matter."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, WindowAttention):
                m.relative_position_bias_table.copy_(
                    torch.randn(m.relative_position_bias_table.shape, generator=gen))
    return model


def small_swin(**kwargs):
    torch.manual_seed(0)
    args = dict(img_size=32, patch_size=2, window_size=4, depths=(2, 2), num_heads=(2, 4),
                embed_dim=16, num_classes=5, drop_path_rate=0.0)
    args.update(kwargs)
    return _randomise_biases(SwinTransformer(**args)).eval()


@pytest.fixture(scope="module")
def swin():
    return small_swin()  # 16×16 tokens (shift 2), then 8×8 (shift 2); no padding


@pytest.fixture(scope="module")
def image():
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def _set_fused(model, fused):
    for m in model.modules():
        if isinstance(m, WindowAttention):
            m.fused_attn = fused
    return model


def _hook_state(model):
    return [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._forward_hooks_with_kwargs),
             len(m._forward_pre_hooks_with_kwargs)) for m in model.modules()]


def test_capture_decomposition(swin, image):
    cap = capture_swin(swin, image)
    assert [b.name for b in cap.blocks] == ["layers.0.blocks.0", "layers.0.blocks.1",
                                            "layers.1.blocks.0", "layers.1.blocks.1"]
    for block, nw, heads in zip(cap.blocks, (16, 16, 4, 4), (2, 2, 4, 4)):
        assert block.probs.shape == (nw, heads, 16, 16)
        assert block.content.shape == block.probs.shape and block.bias.shape == (heads, 16, 16)
        logits = block.content + block.bias[None]
        if block.mask is not None:
            assert block.mask.shape == (nw, 16, 16)
            logits = logits + block.mask[:, None]
        torch.testing.assert_close(block.probs, torch.softmax(logits, -1))
        torch.testing.assert_close(block.logits, logits)
        torch.testing.assert_close(block.probs.sum(-1), torch.ones(nw, heads, 16))
    # shifted blocks really shift, and their mask is the definition
    assert cap.blocks[0].mask is None and cap.blocks[2].mask is None
    np.testing.assert_array_equal(cap.blocks[1].mask.numpy(), naive_mask(16, 16, 4, 2))
    np.testing.assert_array_equal(cap.blocks[3].mask.numpy(), naive_mask(8, 8, 4, 2))
    assert (cap.blocks[1].probs[cap.blocks[1].mask.bool()[:, None].expand_as(cap.blocks[1].probs)]
            < 1e-30).all()
    # bias: the table gathered with the Swin index
    table = swin.layers[0].blocks[0].attn.relative_position_bias_table.detach().numpy()
    np.testing.assert_allclose(cap.blocks[0].bias.numpy(),
                               gather_bias(table, relative_position_index(4)), rtol=0, atol=0)


@pytest.mark.parametrize("fused", [False, True])
def test_capture_matches_timm(swin, image, fused):
    reference_model = _set_fused(copy.deepcopy(swin), False)
    extract = AttentionExtract(reference_model, names=["*attn_drop"], method="hook")
    with torch.no_grad():
        reference = extract(image)
    model = _set_fused(copy.deepcopy(swin), fused)
    cap = capture_swin(model, image)
    before = _hook_state(model)  # hooks are installed once, by the first capture
    assert list(reference) == [f"{b.name}.attn.attn_drop" for b in cap.blocks]
    for block, ref in zip(cap.blocks, reference.values()):
        torch.testing.assert_close(block.probs, ref, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(cap.logits, model(image), atol=1e-5, rtol=1e-5)
    # a second capture installs nothing more, and no recorder is left active
    capture_swin(model, image)
    assert _hook_state(model) == before
    assert capture_module._ACTIVE.get() is None


def test_concurrent_captures_do_not_mix(swin):
    inputs = [torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(s)) for s in (3, 4)]
    expected = [capture_swin(swin, x) for x in inputs]
    installed = _hook_state(swin)
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def run(i):
        try:
            barrier.wait()
            results[i] = [capture_swin(swin, inputs[i]) for _ in range(3)]
        except Exception as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        for cap in results[i]:
            torch.testing.assert_close(cap.logits, expected[i].logits)
            for got, want in zip(cap.blocks, expected[i].blocks):
                torch.testing.assert_close(got.probs, want.probs)
    assert not torch.allclose(expected[0].blocks[0].probs, expected[1].blocks[0].probs)
    assert _hook_state(swin) == installed, "hooks are installed once per model, never per call"


def test_capture_needs_eval_and_swin(image):
    model = small_swin().train()
    with pytest.raises(ValueError):
        capture_swin(model, image)
    with pytest.raises(TypeError):
        capture_swin(torch.nn.Linear(2, 2), image)


# --------------------------------------------------------------------------- analysis

def test_analysis_token_attention(swin, image):
    analysis = analyze(swin, image)
    assert analysis.logits.shape == (5,)
    regular, shifted = analysis.block(0, 0), analysis.block(0, 1)
    assert regular.probs.dtype == np.float32 and regular.mask is None
    np.testing.assert_allclose(shifted.logits, (shifted.content + shifted.bias[None]
                                                + shifted.mask[:, None]))
    # regular block: token (5, 9) is in window 1·4 + 2, slot 1·4 + 1; its map is that window
    assert analysis.window_of_token(0, 0, 5, 9) == (6, 5)
    att = analysis.token_attention(0, 0, 1, 5, 9)
    assert att.shape == (16, 16)
    np.testing.assert_array_equal(~np.isnan(att), window_partition_ids(16, 16, 4) == 6)
    np.testing.assert_allclose(np.nansum(att), 1, atol=1e-5)
    np.testing.assert_allclose(att[4:8, 8:12].ravel(), regular.probs[6, 1, 5])
    # shifted block: token (0, 0) wrapped to the bottom-right window, together with rows/cols
    # 14, 15; the mask leaves it only its own 2×2 corner piece
    att = analysis.token_attention(0, 1, 0, 0, 0)
    window = ~np.isnan(att)
    assert window.sum() == 16 and window[np.ix_([14, 15, 0, 1], [14, 15, 0, 1])].all()
    np.testing.assert_allclose(att[:2, :2].sum(), 1, atol=1e-5)
    assert np.nanmax(att[14:, :]) < 1e-30 and np.nanmax(att[:, 14:]) < 1e-30
    mean = analysis.token_attention(0, 1, None, 0, 0)
    # (0, 0) -> rolled (14, 14): window 3·4 + 3, slot 2·4 + 2; its 2×2 piece: slots 10 11 14 15
    corner = shifted.probs[15][:, 10][:, [10, 11, 14, 15]]  # (heads, 4)
    np.testing.assert_allclose(mean[:2, :2], corner.mean(0).reshape(2, 2), rtol=1e-6)
    assert analysis.padding_attention(0, 1, 0, 0, 0) == 0
    ids = analysis.window_id_map(0, 1)
    assert ids[0, 0] == ids[15, 15] == ids[0, 15] == 15 and ids[2, 2] == 0


# --------------------------------------------------------------------------- geometry

def test_geometry_small_maps():
    model = small_swin(img_size=64, patch_size=4, window_size=7, depths=(2, 2, 2),
                       num_heads=(1, 2, 4), embed_dim=8)
    stages = swin_geometry(model, (64, 64))
    assert [s.resolution for s in stages] == [(16, 16), (8, 8), (4, 4)]
    assert [s.token_px for s in stages] == [(4, 4), (8, 8), (16, 16)]
    first, last = stages[0].blocks[1], stages[2].blocks[1]
    assert first.window == (7, 7) and first.shift == (3, 3) and first.pad == (5, 5)
    assert first.num_windows == 9 and first.wrap_leak  # 16 -> 21: pad 5 is neither 0 nor 4
    # the map fits one window: window = min(res), no shift, no padding
    assert last.window == (4, 4) and last.shift == (0, 0) and last.pad == (0, 0)
    assert last.num_windows == 1 and not last.shifted
    analysis = analyze(model, torch.randn(1, 3, 64, 64))
    assert analysis.block(2, 1).mask is None and analysis.block(2, 1).probs.shape == (1, 4, 16, 16)
    padded = analysis.block(0, 1)
    assert padded.probs.shape == (9, 1, 49, 49)
    np.testing.assert_array_equal(padded.mask, shifted_window_mask(16, 16, 7, 3))
    # what timm's roll-then-pad does: image row 0 (wrapped to rolled row 13) shares window
    # rows 7..13 and region 0 with image rows 10..15, so it attends to the far bottom
    att = analysis.token_attention(0, 1, 0, 0, 5)
    assert np.nanmax(att[10:16]) > 1e-4
    # every query's weight: on real tokens + on padding = 1
    total = np.nansum(att) + analysis.padding_attention(0, 1, 0, 0, 5)
    np.testing.assert_allclose(total, 1, atol=1e-5)
    # image (1, 1) -> rolled (14, 14): its window reaches into the zero padding (rows and
    # columns 16..20), rows/cols 16, 17 share its region, so part of its weight goes there
    assert analysis.padding_attention(0, 1, 0, 1, 1) > 1e-4
    assert analysis.padding_attention(0, 1, 0, 15, 15) == 0  # rolled (12, 12): no padding


def test_geometry_dynamic_size_with_padding():
    model = small_swin(strict_img_size=False)  # built for 32 px, run at 36 px
    stages = swin_geometry(model, (36, 36))
    assert [s.resolution for s in stages] == [(18, 18), (9, 9)]
    assert stages[0].blocks[1].pad == (2, 2) and not stages[0].blocks[1].wrap_leak
    assert stages[1].blocks[1].pad == (3, 3) and stages[1].blocks[1].wrap_leak
    analysis = analyze(model, torch.randn(1, 3, 36, 36))
    for stage in stages:
        for geo in stage.blocks:
            item = analysis.block(geo.stage, geo.block)
            assert item.probs.shape[0] == geo.num_windows
            if geo.shifted:
                np.testing.assert_array_equal(item.mask, shifted_window_mask(*geo.resolution,
                                                                             geo.window, geo.shift))
    with pytest.raises(ValueError):
        swin_geometry(small_swin(), (36, 36))  # strict model: only 32 px


def test_app_swin_runs_at_another_size_and_shows_padding():
    """The zoo builds Swin with strict_img_size=False: a non-square photo keeps its aspect
    ratio, each stage's map is padded to whole windows, and the page warns when timm's
    roll-then-pad lets wrapped tokens see far-away ones."""
    import os

    from explorer.core.images import load_image
    from explorer.core.zoo import REPO_ROOT
    from explorer.lenses.swin.tab import SwinView, analysis_for, render

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    image = load_image(REPO_ROOT / "assets" / "examples" / "rocket.jpg")
    loaded, result = analysis_for(image, "swin_tiny_patch4_window7_224.ms_in1k", "native", False)
    first = result.swin.stages[0]
    assert first.resolution[0] != first.resolution[1]
    assert any(block.pad != (0, 0) for block in first.blocks)
    outputs = render(loaded, result, SwinView(0, 1, None, None).clamp(result), "en")
    assert "pads the map" in outputs["query"]
    assert "padded by" in outputs["shift"].layout.title.text
