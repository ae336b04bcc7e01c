"""The masked autoencoder (explorer.models.mae) against the official conventions, and the MAE
lab's masks, reconstruction, export and events (no model re-run on a redraw)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import explorer.models  # noqa: F401  (registers mae_vit_* with timm)
from forward_counter import forward_count
from explorer.core.images import load_image
from explorer.core.weights import load_into, load_model, read_state_dict
from explorer.core.zoo import get_entry
from explorer.lenses.mae import compute
from explorer.models.mae import MaskedAutoencoderViT, noise_keeping, ratio_keeping, sincos_pos_embed_2d

SMALL = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16,
             decoder_depth=1, decoder_num_heads=2)


def small_mae(**overrides) -> MaskedAutoencoderViT:
    torch.manual_seed(0)
    return timm.create_model("mae_vit", **{**SMALL, **overrides}).eval()


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95])
def test_random_masking_keeps_the_smallest_noise_and_restores_order(ratio):
    n, length, dim = 3, 49, 5
    x = torch.randn(n, length, dim)
    noise = torch.rand(n, length, generator=torch.Generator().manual_seed(1))
    kept, mask, ids_restore = MaskedAutoencoderViT.random_masking(x, ratio, noise)
    keep = int(length * (1 - ratio))
    assert kept.shape == (n, keep, dim)
    assert mask.shape == (n, length) and torch.all(mask.sum(1) == length - keep)  # 1 = removed
    ids_shuffle = torch.argsort(noise, dim=1)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(length).expand(n, -1))
    for b in range(n):
        smallest = set(ids_shuffle[b, :keep].tolist())
        assert {i for i in range(length) if mask[b, i] == 0} == smallest
        assert torch.equal(kept[b], x[b, ids_shuffle[b, :keep]])


def test_a_chosen_mask_goes_through_the_official_masking_exactly():
    length = 64
    rng = np.random.default_rng(0)
    for hidden in [0, 1, 17, 48, 63, 64]:
        mask = torch.zeros(length)
        mask[rng.choice(length, hidden, replace=False)] = 1
        x = torch.randn(1, length, 4)
        _, got, _ = MaskedAutoencoderViT.random_masking(x, ratio_keeping(mask), noise_keeping(mask)[None])
        assert torch.equal(got[0], mask), hidden


def test_patchify_is_row_major_with_the_channel_fastest():
    model = small_mae(img_size=4, patch_size=2, decoder_depth=0, depth=0)
    # pixel value = 100·channel + 10·y + x
    c, y, x = torch.meshgrid(torch.arange(3), torch.arange(4), torch.arange(4), indexing="ij")
    img = (100 * c + 10 * y + x).float()[None]
    patches = model.patchify(img)
    assert patches.shape == (1, 4, 12)
    # patch 1 = row 0, col 1: pixels (0,2),(0,3),(1,2),(1,3), each as (R, G, B)
    assert patches[0, 1].tolist() == [2, 102, 202, 3, 103, 203, 12, 112, 212, 13, 113, 213]
    # patch 2 = row 1, col 0
    assert patches[0, 2, :3].tolist() == [20, 120, 220]
    assert torch.equal(model.unpatchify(patches), img)
    noise = torch.randn(2, 3, 4, 4)
    assert torch.equal(model.unpatchify(model.patchify(noise)), noise)


def test_sincos_table_first_half_is_the_column_second_half_the_row():
    dim, grid = 16, 4
    table = sincos_pos_embed_2d(dim, grid)
    assert table.shape == (1 + grid * grid, dim) and np.all(table[0] == 0)  # CLS entry zeros
    patches = table[1:].reshape(grid, grid, dim)
    assert np.allclose(patches[0, 2, :dim // 2], patches[3, 2, :dim // 2])  # same column
    assert np.allclose(patches[1, 0, dim // 2:], patches[1, 3, dim // 2:])  # same row
    # column 3, first sin channel: sin(3 · 1/10000^0) and the first cos channel of the row half
    assert patches[2, 3, 0] == pytest.approx(np.sin(3.0))
    assert patches[2, 3, dim // 2 + dim // 4] == pytest.approx(np.cos(2.0))


# --------------------------------------------------------------------------- model


def test_forward_returns_the_loss_on_removed_patches_only():
    model = small_mae()
    imgs = torch.randn(2, 3, 32, 32)
    noise = torch.rand(2, 16, generator=torch.Generator().manual_seed(3))
    loss, pred, mask = model(imgs, mask_ratio=0.75, noise=noise)
    assert pred.shape == (2, 16, 8 * 8 * 3) and mask.shape == (2, 16)
    per_patch = ((pred - model.patchify(imgs)) ** 2).mean(-1)
    assert loss.item() == pytest.approx((per_patch * mask).sum().item() / mask.sum().item(), rel=1e-6)
    # visible patches do not count: changing what the decoder says about them changes nothing
    assert (per_patch * (1 - mask)).sum() > 0


def test_norm_pix_loss_normalises_each_target_patch():
    model = small_mae(norm_pix_loss=True)
    imgs = torch.rand(1, 3, 32, 32) * 5 + 2
    target = model.patch_targets(imgs)
    assert torch.allclose(target.mean(-1), torch.zeros(1, 16), atol=1e-5)
    assert torch.allclose(target.var(-1), torch.ones(1, 16), atol=1e-3)


def test_official_base_config_and_key_names():
    with torch.device("meta"):
        model = timm.create_model("mae_vit_base_patch16")
    state = model.state_dict()
    expected = {"cls_token": (1, 1, 768), "pos_embed": (1, 197, 768), "patch_embed.proj.weight": (768, 3, 16, 16),
                "blocks.11.attn.qkv.weight": (2304, 768), "blocks.0.mlp.fc1.weight": (3072, 768),
                "norm.weight": (768,), "decoder_embed.weight": (512, 768), "mask_token": (1, 1, 512),
                "decoder_pos_embed": (1, 197, 512), "decoder_blocks.7.mlp.fc2.bias": (512,),
                "decoder_norm.weight": (512,), "decoder_pred.weight": (768, 512)}
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    allowed = ("cls_token", "pos_embed", "patch_embed.proj.", "blocks.", "norm.", "decoder_embed.", "mask_token",
               "decoder_pos_embed", "decoder_blocks.", "decoder_norm.", "decoder_pred.")
    assert all(k.startswith(allowed) for k in state), [k for k in state if not k.startswith(allowed)]
    assert all(".ls1" not in k and "q_norm" not in k for k in state)  # no keys the release lacks
    assert not any(k.startswith("blocks.12") or k.startswith("decoder_blocks.8") for k in state)


def test_official_checkpoint_layout_round_trips(tmp_path):
    """Saved the official way (torch.save({'model': state_dict})), a checkpoint loads back
    strictly through the app's loader and reconstructs identically."""
    model = small_mae()
    path = tmp_path / "mae_small.pth"
    torch.save({"model": model.state_dict(), "epoch": 1599}, path)
    state = read_state_dict(path)
    again = timm.create_model("mae_vit", **SMALL).eval()
    load_into(again, state, path.name)
    imgs, noise = torch.randn(1, 3, 32, 32), torch.rand(1, 16)
    with torch.no_grad():
        assert torch.equal(model(imgs, noise=noise)[1], again(imgs, noise=noise)[1])


def test_decoder_keys_never_reach_timm_and_the_encoder_is_timms_vit(tmp_path):
    """A decoder checkpoint loads into timm's encoder-only ViT (decoder keys and mask_token are
    dropped before timm's filter, which would take mask_token for DINOv2); the two encoders then
    compute the same CLS token on an unmasked image."""
    model = small_mae()
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                            num_classes=0).eval()
    load_into(vit, model.state_dict(), "mae.pth")
    imgs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model.forward_encoder(imgs, 0.0, noise=torch.arange(16.0)[None])[0][:, 0]
        theirs = vit.forward_features(imgs)[:, 0]
    assert torch.allclose(ours, theirs, atol=1e-5)


# --------------------------------------------------------------------------- the lab


def test_strategies_hide_the_expected_patches():
    grid, length = (8, 8), 64
    for ratio in (0.1, 0.5, 0.75, 0.95):
        for strategy in ("random", "block"):
            choice = compute.choose_mask(strategy, grid, ratio, seed=4)
            assert choice.hidden.sum() == length - compute.kept_count(length, ratio), (strategy, ratio)
    # grid at 0.75: one visible patch in every 2x2 cell; at 0.25 one hidden patch in every 2x2 cell
    keep_one = compute.grid_mask(grid, 0.75, seed=0)
    assert (~keep_one).sum() == 16 and all((~keep_one[r:r + 2, c:c + 2]).sum() == 1
                                           for r in range(0, 8, 2) for c in range(0, 8, 2))
    assert compute.grid_mask(grid, 0.25, seed=0).sum() == 16
    # 0.9: k = round(1/sqrt(0.1)) = 3, a lattice of stride 3 from a seeded offset
    rows, cols = np.nonzero(~compute.grid_mask(grid, 0.9, seed=0))
    assert len(rows) in (4, 6, 9) and np.all((rows - rows[0]) % 3 == 0) and np.all((cols - cols[0]) % 3 == 0)
    assert len(set(rows)) * len(set(cols)) == len(rows)
    painted = compute.choose_mask("painted", grid, 0.75, 0, painted=(0, 9, 63))
    assert np.flatnonzero(painted.hidden).tolist() == [0, 9, 63]
    assert not compute.choose_mask("painted", grid, 0.75, 0).hidden.any()
    # block-wise: contiguous rectangles, so far fewer hidden/visible borders than random
    block, rand = compute.block_mask(grid, 0.5, 1), compute.choose_mask("random", grid, 0.5, 1).hidden.reshape(grid)

    def borders(m):
        return int((m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum())

    assert borders(block) < borders(rand)
    assert np.array_equal(compute.block_mask(grid, 0.5, 1), block)  # seeded
    from explorer.core.errors import UserFacingError

    for bad in (-0.1, 1.0, 7):
        with pytest.raises(UserFacingError):
            compute.choose_mask("random", grid, bad, 0)


@pytest.fixture(scope="module")
def demo_mae():
    return load_model("demo_mae", allow_download=False)


@pytest.fixture(scope="module")
def shape_image():
    from explorer.ui.widgets import example_paths

    return load_image(example_paths()[0])


@pytest.mark.parametrize("strategy", ["random", "block", "grid", "painted"])
def test_reconstruct_hides_what_was_chosen_and_pastes_the_visible_back(demo_mae, shape_image, strategy):
    r = compute.reconstruct(demo_mae, shape_image, strategy, 0.75, seed=2, painted=(3, 4, 5, 27))
    choice = compute.choose_mask(strategy, r.grid, 0.75, 2, painted=(3, 4, 5, 27))
    assert np.array_equal(r.mask.astype(bool), choice.hidden)
    assert r.mask.shape == (64,) and r.pred.shape == (64, 8 * 8 * 3) and r.reconstruction.shape == (3, 64, 64)
    visible = ~np.kron(r.mask.reshape(8, 8), np.ones((8, 8))).astype(bool)
    assert np.array_equal(r.panels["pasted"][visible], r.panels["original"][visible])
    assert np.isnan(compute.np.where(r.mask.reshape(8, 8) > 0, r.patch_mse, np.nan)).sum() == 64 - r.hidden_count
    assert r.leak_panels == {} and not r.norm_pix_loss


def test_demo_mae_beats_the_mean_colour_on_the_page_image(demo_mae, shape_image):
    r = compute.reconstruct(demo_mae, shape_image, "random", 0.75, seed=0)
    assert r.masked_mse < 0.5 * r.baseline_mse, (r.masked_mse, r.baseline_mse)


def test_norm_pix_models_also_get_the_labelled_leaking_view(shape_image, tmp_path):
    from explorer.core.weights import LoadedModel

    model = small_mae(img_size=64, norm_pix_loss=True)
    demo = load_model("demo_mae", allow_download=False)
    loaded = LoadedModel(entry=demo.entry, shown=demo.shown, model=model, source="random", weights_id="t",
                         data_config=demo.data_config, class_names=None)
    r = compute.reconstruct(loaded, shape_image, "random", 0.5, seed=0)
    assert r.norm_pix_loss and set(r.leak_panels) == set(r.panels)
    # the leaking view puts back each patch's true mean: its hidden patches have the true means
    from explorer.lenses.mae.figures import error_map

    assert error_map(r, leak=False)[1] == "mae_unit_normpix" and error_map(r, leak=True)[1] == "mae_unit_pixels"


def test_export_writes_the_official_arrays(tmp_path):
    from explorer.cli import main
    from explorer.ui.widgets import example_paths

    out = tmp_path / "mae.npz"
    assert main(["export", "mae", "--model", "demo_mae", "--image", example_paths()[0], "--mask-ratio", "0.5",
                 "--seed", "3", "--out", str(out)]) == 0
    arrays = np.load(out)
    assert arrays["mask"].shape == (64,) and arrays["mask"].sum() == 32
    assert arrays["pred"].shape == (64, 192) and arrays["reconstruction"].shape == (3, 64, 64)
    again = compute.choose_mask("random", (8, 8), 0.5, 3).hidden
    assert np.array_equal(arrays["mask"].astype(bool), again)


def test_offline_official_checkpoint_names_the_file_and_shows_the_demo():
    from explorer.core.zoo import CHECKPOINT_DIR

    loaded = load_model(get_entry("mae_visualize_vit_base"), allow_download=False)
    assert loaded.shown.key == "demo_mae" and loaded.source == "bundled"
    text = loaded.banner.text("en")
    assert "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_base.pth" in text
    assert str(CHECKPOINT_DIR / "mae_visualize_vit_base.pth") in text
    assert "mae_visualize_vit_base.pth" in loaded.banner.text("zh")


def test_redraws_do_not_rerun_the_model_and_clicks_toggle_patches(demo_mae, shape_image):
    from explorer.lenses.mae.tab import Controls, refresh, toggle_patch

    def controls(**kw):
        base = dict(image=shape_image, model_key="demo_mae", allow_download=False, strategy="random", ratio=0.75,
                    seed=5, leak=False, painted=[], lang="en")
        return Controls(**{**base, **kw})

    first = refresh(controls())
    runs = forward_count()
    for change in (dict(leak=True), dict(lang="zh"), dict(painted=[1, 2, 3])):  # painted unused by random
        refresh(controls(**change))
    assert forward_count() == runs
    hidden = first["painted"]
    assert len(hidden) == 48
    # a click on the top-left patch of the 448-px picker toggles patch 0
    after = toggle_patch(controls(painted=hidden), (5.0, 5.0))
    assert forward_count() == runs + 1
    assert set(after["painted"]) == set(hidden) ^ {0}
    assert after["strategy"]["value"] == "painted"


def test_models_command_says_where_the_official_decoder_checkpoints_come_from(capsys, monkeypatch):
    from urllib.error import URLError

    from explorer.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for size in ("base", "large", "huge"):
        assert f"https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_{size}.pth" in out

    def no_network(url, dst, progress=True):  # fetch downloads it from there; no test does
        raise URLError("no network in tests")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    assert main(["fetch", "mae_visualize_vit_base"]) == 1  # not reachable: where to get it instead
    out = capsys.readouterr().out
    assert "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_base.pth" in out
    assert "mae_visualize_vit_base.pth" in out
