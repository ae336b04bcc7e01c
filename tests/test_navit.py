"""NaViT's patch-n'-pack: packing invariants, the block-diagonal mask, token dropout, and the
packed forward equal to running each image alone (random and trained weights)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import explorer.models  # noqa: F401  (registers navit with timm)
from explorer.models.navit import (NaViT, choose_kept_tokens, kept_token_count, pack, pack_greedy,
                                   patchify)

SIZES = [(40, 120), (64, 64), (96, 48), (8, 8), (24, 16), (120, 40), (48, 72)]


def images(sizes=SIZES, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, h, w, generator=g) for h, w in sizes]


def test_patchify_is_row_major_with_channels_fastest():
    # 2x4 image, patch 2 -> 2 patches; pixel value encodes (channel, row, col)
    c, h, w = 3, 2, 4
    image = torch.tensor([[[100 * ch + 10 * r + col for col in range(w)] for r in range(h)]
                          for ch in range(c)], dtype=torch.float32)
    out = patchify(image, 2)
    assert out.shape == (2, 12)
    # patch 0 = columns 0-1: pixels (0,0), (0,1), (1,0), (1,1), each as (R, G, B)
    assert out[0].tolist() == [0, 100, 200, 1, 101, 201, 10, 110, 210, 11, 111, 211]
    assert out[1, :3].tolist() == [2, 102, 202]
    with pytest.raises(ValueError):
        patchify(torch.zeros(3, 5, 4), 2)


def test_greedy_packing_by_hand():
    assert pack_greedy([3, 4, 2, 5], 6) == [[0], [1, 2], [3]]
    assert pack_greedy([6, 6], 6) == [[0], [1]]
    assert pack_greedy([1, 1, 1], 6) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="more than max_seq_len"):
        pack_greedy([2, 7], 6)


@pytest.mark.parametrize("drop", [0.0, 0.25, 0.5, 0.9, 0.99])
def test_token_dropout_keeps_max_1_int_n_1_minus_p(drop):
    for n in (1, 2, 7, 64, 75):
        assert kept_token_count(n, drop) == max(1, int(n * (1 - drop)))
        kept = choose_kept_tokens(n, drop, torch.Generator().manual_seed(n))
        assert len(kept) == kept_token_count(n, drop)
        assert len(set(kept.tolist())) == len(kept) and kept.min() >= 0 and kept.max() < n
        assert torch.equal(kept, kept.sort().values)
    with pytest.raises(ValueError):
        kept_token_count(4, 1.0)


@pytest.mark.parametrize("drop", [0.0, 0.3])
@pytest.mark.parametrize("max_seq_len", [75, 100, 256])
def test_packing_invariants(drop, max_seq_len):
    batch = pack(images(), patch=8, max_seq_len=max_seq_len, token_dropout=drop,
                 generator=torch.Generator().manual_seed(1))
    lengths = batch.real.sum(1)
    assert int(lengths.max()) <= max_seq_len  # no sequence overflows
    assert batch.patches.shape[1] == int(lengths.max())  # padded to the longest, no further
    for i, (h, w) in enumerate(SIZES):
        rows, cols = h // 8, w // 8
        assert batch.grids[i] == (rows, cols)
        seq, where = batch.tokens_of(i)
        assert len(where) == kept_token_count(rows * cols, drop) == len(batch.kept[i])
        # every kept token appears exactly once, with its patch and its (row, col)
        expected = patchify(images()[i], 8)[batch.kept[i]]
        assert torch.equal(batch.patches[seq, where], expected)
        pos = batch.positions[seq, where]
        assert torch.equal(pos[:, 0] * cols + pos[:, 1], batch.kept[i])
    assert int(batch.real.sum()) == sum(kept_token_count((h // 8) * (w // 8), drop) for h, w in SIZES)
    assert 0 < batch.utilisation <= 1


def test_mask_is_block_diagonal_and_never_reaches_padding():
    batch = pack(images(), patch=8, max_seq_len=100)
    assert batch.num_sequences > 1
    mask = batch.attention_mask()
    ids, real = batch.image_ids, batch.real
    for s in range(batch.num_sequences):
        for i in range(ids.shape[1]):
            for j in range(ids.shape[1]):
                if real[s, i]:
                    assert bool(mask[s, i, j]) == bool(real[s, j] and ids[s, i] == ids[s, j])
                else:  # a padding query sees only itself (its output is never used)
                    assert bool(mask[s, i, j]) == (i == j)
    # hand-checked: two images of 2 and 1 tokens in one sequence of 4 -> one padding slot
    small = pack([torch.zeros(3, 8, 16), torch.zeros(3, 8, 8)], patch=8, max_seq_len=4)
    assert small.image_ids.tolist() == [[0, 0, 1]]
    assert small.attention_mask()[0].int().tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    padded = pack([torch.zeros(3, 8, 24), torch.zeros(3, 8, 8)], patch=8, max_seq_len=3)
    assert padded.image_ids.tolist() == [[0, 0, 0], [0, -1, -1]]
    assert padded.attention_mask()[1].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert padded.pool_mask()[1, 0].tolist() == [True, False, False]


def _separate(model, xs):
    return torch.cat([model(model.pack([x])) for x in xs])


@pytest.mark.parametrize("seed", [0, 1])
def test_packed_forward_equals_each_image_alone_random_weights(seed):
    torch.manual_seed(seed)
    model = NaViT(num_classes=8, max_seq_len=160).eval()
    xs = images(seed=seed)
    with torch.no_grad():
        batch = model.pack(xs)
        assert batch.num_sequences > 1 and batch.slots_per_sequence() > 1
        packed = model(batch)
        assert packed.shape == (len(xs), 8)
        assert (packed - _separate(model, xs)).abs().max() <= 1e-5
        # the order of the images inside a pack does not matter either
        perm = [3, 0, 6, 2, 5, 1, 4]
        assert (model([xs[i] for i in perm]) - packed[perm]).abs().max() <= 1e-5


def test_created_through_timm_and_checks_its_tables():
    model = timm.create_model("navit", num_classes=3, max_grid=(4, 6), embed_dim=32, depth=1, num_heads=2)
    assert isinstance(model, NaViT) and model.pos_h.shape == (4, 32) and model.pos_w.shape == (6, 32)
    with pytest.raises(ValueError, match="exceeds the position tables"):
        model.pack([torch.zeros(3, 40, 8)])
    with pytest.raises(ValueError, match="no downloadable"):
        timm.create_model("navit", pretrained=True)


def test_training_mode_drops_tokens_eval_mode_does_not():
    torch.manual_seed(0)
    model = NaViT(num_classes=8, token_dropout=0.5, embed_dim=32, depth=1, num_heads=2)
    x = [torch.randn(3, 64, 64)]
    model.eval()
    assert torch.equal(model(x), model(x))
    batch = model.pack(x, token_dropout=0.5)
    assert int(batch.real.sum()) == 32
    model.train()
    assert not torch.allclose(model(x), model(x))  # a new random half each call


def test_pool_weights_stay_inside_each_image():
    torch.manual_seed(0)
    model = NaViT(num_classes=8, embed_dim=32, depth=1, num_heads=2).eval()
    batch = model.pack(images())
    with torch.no_grad():
        _, weights = model.forward_packed(batch, return_pool_weights=True)
    for i in range(batch.num_images):
        seq, where = batch.tokens_of(i)
        slot = batch.placement[i][1]
        w = weights[seq, :, slot]  # (heads, L)
        assert np.allclose(w[:, where].sum(-1).numpy(), 1.0, atol=1e-6)


# --------------------------------------------------------------------------- the lens

def _pictures():
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(90, 270), (200, 200), (300, 100), (120, 80)]  # (H, W): 1:3, 1:1, 3:1, 3:2
    return [(f"p{i}", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))) for i, (h, w) in enumerate(sizes)]


def test_native_size_keeps_the_aspect_ratio_and_the_tables():
    from explorer.lenses.navit.compute import native_size

    assert native_size(270, 90, 8, 64, (16, 16)) == (40, 120)  # 5 x 15 patches for 1:3
    assert native_size(200, 200, 8, 64, (16, 16)) == (64, 64)
    assert native_size(100, 300, 8, 64, (16, 16)) == (112, 40)  # rows = round(sqrt(64 * 3))
    assert native_size(2000, 100, 8, 64, (16, 16)) == (8, 128)  # 1:20 capped at 16 columns
    assert native_size(50, 50, 8, 1000, (16, 16)) == (128, 128)


@pytest.mark.parametrize("drop", [0.0, 0.5])
def test_lens_packed_equals_alone_and_exports(drop):
    from explorer.lenses.navit.compute import analyze, export_arrays

    torch.manual_seed(0)
    model = NaViT(num_classes=8, max_seq_len=120).eval()
    a = analyze(model, _pictures(), (0.5,) * 3, (0.5,) * 3, tuple("abcdefgh"), tokens=64, token_dropout=drop, seed=3)
    assert a.num_sequences >= 2 and a.max_abs_diff <= 1e-5
    assert [im.grid for im in a.images] == [(5, 15), (8, 8), (14, 5), (10, 7)]
    for im in a.images:
        assert len(im.kept) == kept_token_count(im.tokens, drop)
        assert (a.owner[im.sequence, im.positions] == a.images.index(im)).all()
        assert np.allclose(im.pool_weights.sum(-1), 1.0, atol=1e-5)
        assert len(im.predictions) == 5
    arrays = export_arrays(a)
    assert arrays["mask"].dtype == bool and arrays["mask"].shape[0] == a.num_sequences
    assert arrays["logits"].shape == (4, 8) and arrays["grids"].tolist()[0] == [5, 15]
    assert ((arrays["token_image"] >= 0) == (arrays["image_ids"] >= 0)).all()


def test_lens_says_what_is_wrong():
    from explorer.core.errors import UserFacingError
    from explorer.lenses.navit.compute import MAX_IMAGES, analyze

    model = NaViT(num_classes=8, embed_dim=32, depth=1, num_heads=2).eval()
    with pytest.raises(UserFacingError, match="at least one"):
        analyze(model, [], (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(UserFacingError, match="At most"):
        analyze(model, _pictures() * (MAX_IMAGES // 4 + 1), (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(UserFacingError, match="NaViT"):
        analyze(torch.nn.Linear(2, 2), _pictures(), (0.5,) * 3, (0.5,) * 3)


def test_tab_renders_in_both_languages_and_the_sequence_picker_does_not_rerun(monkeypatch):
    import gradio as gr
    import plotly.graph_objects as go

    from explorer.core.images import load_image
    from explorer.core.weights import LoadedModel
    from explorer.core.zoo import ModelEntry
    from explorer.lenses.navit import tab
    from explorer.ui.widgets import PageContext, Translations

    torch.manual_seed(0)
    model = NaViT(num_classes=8, max_seq_len=120).eval()
    runs = {"n": 0}
    model.patch_embed.register_forward_pre_hook(lambda m, a: runs.__setitem__("n", runs["n"] + 1))
    entry = ModelEntry(key="navit-test", label_en="t", label_zh="t", family="navit", timm_model="navit")
    loaded = LoadedModel(entry=entry, shown=entry, model=model, source="random", weights_id=f"navit-{id(model)}",
                         data_config={"mean": (0.5,) * 3, "std": (0.5,) * 3}, class_names=tuple("abcdefgh"))
    monkeypatch.setattr(tab, "lens_model", lambda lens, key, allow_download=False: loaded)
    page_image = load_image(_pictures()[0][1])
    names = tab.example_names()
    assert len(names) == 6  # the bundled aspect-ratio gallery

    def controls(sequence, lang, drop=0.0, examples=names):
        return tab.Controls(page_image, "navit-test", False, True, examples, None, 64, drop, 0, sequence, lang)

    out = tab.refresh(controls(None, "en"))
    first = runs["n"]
    assert first == 1 + 7  # one packed pass, then each of the 7 images alone
    assert "Packed = separate" in out["equivalence"] and out["table"].count("\n") == 7 + 1
    for lang in ("en", "zh"):
        for seq in range(len(out["sequence"]["choices"])):
            again = tab.refresh(controls(seq, lang))
            figs = [v for v in again.values() if isinstance(v, go.Figure)]
            assert len(figs) == 3 and all(f.layout.title.text for f in figs)
            assert f"{seq}" in figs[-1].layout.title.text
    assert runs["n"] == first, "the sequence picker or the language re-ran the model"
    tab.refresh(controls(0, "en", drop=0.5))
    assert runs["n"] > first  # a new dropout rate is a new input
    with pytest.raises(gr.Error):
        tab.refresh(tab.Controls(None, "navit-test", False, True, [], None, 64, 0.0, 0, None, "en"))
    with pytest.raises(gr.Error):  # names outside the bundled folder are ignored, not opened
        tab.refresh(tab.Controls(None, "navit-test", False, False, ["../../etc/passwd"], None, 64, 0.0, 0, None, "en"))

    monkeypatch.setattr(tab, "entries_for_lens", lambda key: (entry,))
    with gr.Blocks():
        ctx = PageContext(image=gr.State(None), lang=gr.Radio(["en", "zh"], value="en"),
                          translations=Translations(), active_tab=gr.State("navit"))
        tab.build(ctx)
    assert ctx.lenses[-1].tab_id == "navit" and len(ctx.lenses[-1].outputs) == 7
