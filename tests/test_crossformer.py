"""CrossFormer v1: the DPB/RPB index mathematics on hand-checkable cases, exact DPB -> RPB
conversion, official checkpoint compatibility, attention capture and the SDA/LDA groups."""

import re
import threading

import pytest
import timm
import torch

from explorer.core.weights import WeightsError, read_state_dict
from explorer.core.conversions import convert_checkpoint, load_official_state_dict
from explorer.core.capture import install_hooks
from explorer.lenses.crossformer.compute import capture_crossformer
from explorer.models.crossformer import (
    Attention, CrossFormer, DynamicPosBias, GroupLayout, RPBAttention, block_layout,
    create_crossformer, crossformer_tiny, dpb_table,
    dpb_to_rpb, gather_bias, lda_groups, relative_offsets,
    relative_position_index, sda_groups)

# Small models: a 64 px one whose first two stages run LDA (16×16 and 8×8 tokens, G=4), and a
# non-square one with the official G=7 where LDA needs padding (12×20 tokens -> 14×21).
SMALL = dict(img_size=64, embed_dim=48, depths=[2, 2, 2, 1], num_heads=[2, 2, 4, 4],
             group_size=[4, 4, 4, 4], num_classes=10)
PADDED = dict(img_size=(48, 80), embed_dim=32, depths=[2, 2, 1, 1], num_heads=[1, 2, 2, 4],
              group_size=[7, 7, 7, 7], num_classes=7)


pytestmark = pytest.mark.usefixtures("one_thread")


def make(config: dict, seed: int = 0) -> CrossFormer:
    """Random weights with a DPB strong enough to matter (the default init makes it ~0)."""
    torch.manual_seed(seed)
    model = CrossFormer(**config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".pos." in name:
                p.normal_(0.0, 0.7)
        model.head.weight.normal_(0.0, 1.0)  # logits of order 1, so 1e-5 is a tight bound
    return model


def images(config: dict, n: int = 2, seed: int = 1) -> torch.Tensor:
    h, w = (config["img_size"],) * 2 if isinstance(config["img_size"], int) else config["img_size"]
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- index and offsets

def test_relative_position_index_2x2_is_the_swin_example():
    # Tokens (0,0), (0,1), (1,0), (1,1); index = (Δh + 1)·3 + (Δw + 1), Δ = query − key.
    expected = torch.tensor([[4, 3, 1, 0],
                             [5, 4, 2, 1],
                             [7, 6, 4, 3],
                             [8, 7, 5, 4]])
    index = relative_position_index(2)
    assert index.dtype == torch.long
    assert torch.equal(index, expected)
    big = relative_position_index(7)
    assert big.shape == (49, 49) and int(big.min()) == 0 and int(big.max()) == 168
    assert torch.equal(big.diagonal(), torch.full((49,), 84))  # Δ = (0, 0) is the centre row


def test_dpb_offsets_are_raw_h_major():
    expected2 = torch.tensor([[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 0], [0, 1],
                              [1, -1], [1, 0], [1, 1]], dtype=torch.float32)
    assert torch.equal(relative_offsets(2), expected2)
    off7 = relative_offsets(7)
    assert off7.shape == (169, 2) and off7.dtype == torch.float32
    rows = torch.arange(169)
    assert torch.equal(off7[:, 0], (rows // 13 - 6).float())  # h outer
    assert torch.equal(off7[:, 1], (rows % 13 - 6).float())
    assert off7.min() == -6 and off7.max() == 6  # not normalised


def test_dpb_table_feeds_the_mlp_and_gathers_like_swin():
    torch.manual_seed(0)
    pos = DynamicPosBias(16, 3, residual=False)
    assert pos.pos_proj.weight.shape == (4, 2)  # pos_dim = dim // 4
    table = dpb_table(pos, 2)
    assert torch.allclose(table, pos(relative_offsets(2)))
    bias = gather_bias(table, 2)
    assert bias.shape == (3, 4, 4)
    # query (0,0) -> key (1,1) is offset (−1,−1) = table row 0; key (0,0) is row 4.
    assert torch.equal(bias[:, 0, 3], table[0]) and torch.equal(bias[:, 0, 0], table[4])
    assert torch.equal(bias[:, 3, 0], table[8])


# --------------------------------------------------------------------------- SDA / LDA groups

def test_group_maps_for_4x4_tokens_and_groups_of_2():
    assert torch.equal(sda_groups(4, 4, 2), torch.tensor([[0, 0, 1, 1],
                                                          [0, 0, 1, 1],
                                                          [2, 2, 3, 3],
                                                          [2, 2, 3, 3]]))
    # LDA: interval H/G = 2, so tokens two apart share a group.
    assert torch.equal(lda_groups(4, 4, 2), torch.tensor([[0, 1, 0, 1],
                                                          [2, 3, 2, 3],
                                                          [0, 1, 0, 1],
                                                          [2, 3, 2, 3]]))
    layout = GroupLayout("LDA", 2, 4, 4)
    assert layout.interval == (2, 2) and layout.num_groups == 4 and not layout.is_padded
    # Group 0 holds tokens (0,0), (0,2), (2,0), (2,2), row-major.
    assert layout.token_index()[0].tolist() == [0, 2, 8, 10]


def test_padded_lda_and_the_small_resolution_fallback():
    layout = GroupLayout("LDA", 2, 5, 6)  # padded to 6×6, interval 3
    assert layout.interval == (3, 3) and layout.is_padded
    groups = lda_groups(5, 6, 2)
    assert torch.equal(groups[:, 0], torch.tensor([0, 3, 6, 0, 3]))
    assert (layout.token_index() < 0).sum() == 6  # one padded row of 6
    mask = layout.attention_mask()  # NEG_INF on padded keys, for every query; else 0
    pad_key = layout.token_index() < 0
    assert mask.shape == (9, 4, 4)
    assert torch.equal(mask < -1e5, pad_key[:, None, :].expand(-1, 4, -1))
    assert torch.all(mask[mask > -1e5] == 0)
    # Official rule: min(H, W) ≤ G -> the group becomes min(H, W) and attention is SDA.
    assert block_layout(4, 6, 7, lda=True) == GroupLayout("SDA", 4, 4, 6)
    assert block_layout(8, 8, 4, lda=True).kind == "LDA"


# --------------------------------------------------------------------------- DPB -> RPB

@pytest.mark.parametrize("config", [SMALL, PADDED], ids=["lda-64px", "lda-padded-nonsquare"])
def test_dpb_to_rpb_is_exact(config):
    model = make(config)
    x = images(config)
    rpb = dpb_to_rpb(model)
    assert not [n for n, _ in rpb.named_parameters() if "pos." in n]
    assert not any(isinstance(m, (DynamicPosBias, Attention)) for m in rpb.modules())
    tables = [m for m in rpb.modules() if isinstance(m, RPBAttention)]
    assert len(tables) == sum(config["depths"])
    for attn, g, heads in zip(tables, [g for g, d in zip(config["group_size"], config["depths"])
                                       for _ in range(d)],
                              [h for h, d in zip(config["num_heads"], config["depths"])
                               for _ in range(d)]):
        assert attn.relative_position_bias_table.shape == ((2 * g - 1) ** 2, heads)
    assert any(".pos." in n for n, _ in model.named_parameters())  # the original is untouched
    with torch.inference_mode():
        want, got = model(x), rpb(x)
        blocks = capture_crossformer(model, x).records
    assert "LDA" in {r.layout.kind for r in blocks}
    assert (want - got).abs().max() <= 1e-5
    assert torch.equal(want.argmax(-1), got.argmax(-1))

    # Negative control: the same tables read with the offsets mirrored (Δ -> −Δ, the
    # key-minus-query convention) change the logits, so the check above has teeth.
    with torch.no_grad():
        for attn in tables:
            attn.relative_position_bias_table.copy_(attn.relative_position_bias_table.flip(0))
        assert (rpb(x) - want).abs().max() > 1e-3


def test_rpb_table_serves_smaller_groups_and_refuses_larger():
    model = make(SMALL)
    attn = model.layers[0].blocks[0].attn
    rpb = RPBAttention.from_dpb(attn)
    with torch.no_grad():
        for g in (1, 2, 3, 4):
            torch.testing.assert_close(rpb.position_bias(g), attn.position_bias(g))
    with pytest.raises(ValueError, match="never learned"):
        rpb.position_bias(5)


# --------------------------------------------------------------------------- checkpoints

OFFICIAL_KEY_PATTERNS = [
    r"patch_embed\.projs\.[0-3]\.(weight|bias)",
    r"patch_embed\.norm\.(weight|bias)",
    r"layers\.\d\.blocks\.\d+\.(norm1|norm2)\.(weight|bias)",
    r"layers\.\d\.blocks\.\d+\.attn\.(qkv|proj)\.(weight|bias)",
    r"layers\.\d\.blocks\.\d+\.attn\.pos\.pos_proj\.(weight|bias)",
    r"layers\.\d\.blocks\.\d+\.attn\.pos\.pos[123]\.[02]\.(weight|bias)",
    r"layers\.\d\.blocks\.\d+\.mlp\.fc[12]\.(weight|bias)",
    r"layers\.[0-2]\.downsample\.(norm|reductions\.[01])\.(weight|bias)",
    r"norm\.(weight|bias)",
    r"head\.(weight|bias)",
]


def test_tiny_keys_shapes_and_size_match_the_official_release():
    with torch.device("meta"):
        model = crossformer_tiny()
    state = model.state_dict()
    unmatched = [k for k in state if not any(re.fullmatch(p, k) for p in OFFICIAL_KEY_PATTERNS)]
    assert unmatched == []
    for pattern in OFFICIAL_KEY_PATTERNS:  # and every kind of key is there
        assert any(re.fullmatch(pattern, k) for k in state), pattern
    blocks = {m.groups() for k in state if (m := re.match(r"layers\.(\d)\.blocks\.(\d+)\.", k))}
    assert [sum(s == str(i) for s, _ in blocks) for i in range(4)] == [1, 1, 8, 6]
    assert [tuple(state[f"patch_embed.projs.{i}.weight"].shape) for i in range(4)] == [
        (32, 3, 4, 4), (16, 3, 8, 8), (8, 3, 16, 16), (8, 3, 32, 32)]
    assert state["layers.0.blocks.0.attn.pos.pos_proj.weight"].shape == (4, 2)  # C/16
    assert state["layers.3.blocks.0.attn.pos.pos3.2.weight"].shape == (16, 32)
    assert state["layers.0.downsample.reductions.1.weight"].shape == (64, 64, 4, 4)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - 27.8) < 0.05


def official_style(model: CrossFormer) -> dict:
    """Our weights plus the constant buffers official v1 files carry, for the group size
    each block uses at the build resolution, under 'model' as official checkpoints are."""
    state = dict(model.state_dict())
    for s, stage in enumerate(model.layers):
        for b, block in enumerate(stage.blocks):
            g = block.layout(*block.input_resolution).group_size
            state[f"layers.{s}.blocks.{b}.attn.biases"] = relative_offsets(g)
            state[f"layers.{s}.blocks.{b}.attn.relative_position_index"] = relative_position_index(g)
    return {"model": state, "epoch": 299, "max_accuracy": 81.5}


def test_official_state_dict_loads_strictly_and_gives_identical_outputs(tmp_path):
    model = make(SMALL)
    path = tmp_path / "crossformer-official.pth"
    torch.save(official_style(model), path)
    state = read_state_dict(path)
    assert any(k.endswith("attn.biases") for k in state)
    fresh = CrossFormer(**SMALL).eval()
    load_official_state_dict(fresh, state, path.name)
    x = images(SMALL)
    with torch.inference_mode():
        assert torch.equal(fresh(x), model(x))
    # In-memory, still wrapped under 'model', works too.
    load_official_state_dict(CrossFormer(**SMALL), official_style(model))


def test_bad_checkpoints_give_clear_weights_errors(tmp_path):
    model = make(SMALL)
    wrong = official_style(model)["model"]
    wrong["head.weight"] = torch.zeros(5, wrong["head.weight"].shape[1])
    with pytest.raises(WeightsError, match=r"head\.weight"):
        load_official_state_dict(CrossFormer(**SMALL), wrong)

    extra = official_style(model)["model"]
    extra["layers.0.blocks.0.attn.rogue"] = torch.zeros(1)
    del extra["norm.weight"]
    with pytest.raises(WeightsError, match=r"missing 1 keys.*norm\.weight.*unexpected.*rogue"):
        load_official_state_dict(CrossFormer(**SMALL), extra)

    too_big = official_style(model)["model"]
    too_big["layers.0.blocks.0.attn.biases"] = relative_offsets(9)
    with pytest.raises(WeightsError, match="9×9 groups"):
        load_official_state_dict(CrossFormer(**SMALL), too_big)

    path = tmp_path / "truncated.pth"
    torch.save(official_style(model), path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(WeightsError, match="truncated"):
        read_state_dict(path)


def test_convert_checkpoint_writes_an_exact_rpb_safetensors(tmp_path):
    model = make(PADDED)
    src, dst = tmp_path / "official.pth", tmp_path / "rpb.safetensors"
    torch.save(official_style(model), src)
    x = images(PADDED)
    delta = convert_checkpoint(src, dst, CrossFormer(**PADDED), x)
    assert delta <= 1e-5
    converted = read_state_dict(dst)
    assert not [k for k in converted if ".pos." in k or k.endswith(("biases", "index"))]
    assert converted["layers.0.blocks.1.attn.relative_position_bias_table"].shape == (169, 1)
    with pytest.raises(WeightsError, match="RPB tables"):  # not a DPB model's file
        load_official_state_dict(CrossFormer(**PADDED), converted)
    # An official file also loads straight into an RPB model (the filter evaluates the MLPs).
    rpb = dpb_to_rpb(CrossFormer(**PADDED)).eval()
    load_official_state_dict(rpb, read_state_dict(src))
    with torch.inference_mode():
        assert (rpb(x) - model(x)).abs().max() <= 1e-5


def test_timm_create_model_and_data_config():
    model = timm.create_model("crossformer_tiny", pretrained=False, embed_dim=32,
                              depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], num_classes=3)
    assert isinstance(model, CrossFormer) and model.head.out_features == 3
    config = timm.data.resolve_data_config(model=model)
    assert config["interpolation"] == "bicubic" and config["crop_pct"] == 0.875
    with pytest.raises(ValueError, match="Google Drive"):
        create_crossformer("t", pretrained=True)


# --------------------------------------------------------------------------- capture

def module_state(model: torch.nn.Module) -> dict:
    return {name: {k: id(v) for k, v in vars(m).items()} for name, m in model.named_modules()}


@pytest.mark.parametrize("config", [SMALL, PADDED], ids=["64px", "padded"])
def test_capture_records_softmax_of_content_plus_bias(config):
    model = make(config)
    x = images(config)
    install_hooks(model)  # once per model (the app does it when it loads one)
    before = module_state(model)
    cap = capture_crossformer(model, x)
    assert module_state(model) == before  # nothing left on the modules
    with torch.inference_mode():
        assert torch.equal(cap.logits, model(x))
    assert len(cap.records) == sum(config["depths"])
    assert [r.name for r in cap.records][:2] == ["layers.0.blocks.0.attn", "layers.0.blocks.1.attn"]
    for rec in cap.records:
        g = rec.layout.group_size
        assert rec.probs.shape == (2, rec.layout.num_groups, rec.bias.shape[0], g * g, g * g)
        torch.testing.assert_close(rec.probs.sum(-1), torch.ones(rec.probs.shape[:-1]))
        logits = rec.content + rec.bias[None, None]
        if rec.mask is not None:
            logits = logits + rec.mask[None, :, None]
        torch.testing.assert_close(rec.probs, logits.softmax(-1))
        attn = dict(model.named_modules())[rec.name]
        with torch.no_grad():
            torch.testing.assert_close(rec.bias, gather_bias(dpb_table(attn.pos, g), g))
        if rec.layout.is_padded:  # padded keys get no attention
            pad_key = (rec.layout.token_index() < 0)[None, :, None, None, :]
            assert rec.probs.masked_select(pad_key.expand_as(rec.probs)).max() < 1e-6
    # LDA grids of the first stage are where the lens draws groups.
    assert cap.stage_grids[0] == tuple(d // 4 for d in x.shape[-2:])


def test_capture_is_per_request_under_threads():
    model = make(SMALL)
    inputs = [images(SMALL, n=1, seed=s) for s in (3, 4)]
    alone = [capture_crossformer(model, x).records[1].probs for x in inputs]
    results: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = capture_crossformer(model, inputs[i]).records[1].probs

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert len(results[i]) == 1 and torch.equal(results[i], alone[i])


def test_training_step_after_a_capture():
    # The capture runs under inference_mode; nothing it leaves behind (cached indices) may
    # break a later training step, as the demo trainer and the app share the module.
    model = make(SMALL)
    capture_crossformer(model, images(SMALL, n=1))
    model.train()
    loss = model(images(SMALL)).logsumexp(-1).mean()
    loss.backward()
    grad = model.layers[0].blocks[1].attn.pos.pos3[2].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_any_input_size_and_a_clear_error_when_too_small():
    model = make(SMALL)
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 100, 60)).shape == (1, 10)  # odd grids, padding
        with pytest.raises(ValueError, match="at least 32 px"):
            model(torch.randn(1, 3, 16, 64))


def test_a_deep_copy_of_a_hooked_model_records_its_own_weights():
    """dpb_to_rpb deep-copies a model whose hooks are installed: the copied hooks (bound to the
    original modules) stay inert, and the copy's own hooks record the copy's tables."""
    from explorer.lenses.crossformer.compute import capture_crossformer

    model = make(SMALL)
    x = images(SMALL, n=1)
    original = capture_crossformer(model, x)
    rpb = dpb_to_rpb(model).eval()
    with torch.no_grad():
        table = rpb.layers[0].blocks[0].attn.relative_position_bias_table
        table.add_(torch.randn_like(table))  # now the copy differs from the original
    copied = capture_crossformer(rpb, x)
    attn = rpb.layers[0].blocks[0].attn
    torch.testing.assert_close(copied.records[0].bias, gather_bias(attn.relative_position_bias_table.float(),
                                                                    attn.group_size))
    assert not torch.allclose(copied.records[0].bias, original.records[0].bias)
    assert len(copied.records) == len(original.records)
    with torch.inference_mode():
        torch.testing.assert_close(copied.logits, rpb(x).float())
