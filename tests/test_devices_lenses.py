"""The lenses, the capture and the architectures follow the model's device (CUDA, MPS, …), checked
without a GPU in two ways.

* Statically: every ``.numpy()`` in their source goes through ``.cpu()`` (numpy cannot read a
  GPU tensor), except on a few values that are CPU tensors by construction, listed below; every
  ``.double()`` runs on the CPU (MPS has no float64).
* On the ``meta`` device, which, like CUDA, refuses to mix with CPU tensors ("Tensor on device cpu
  is not on the expected device meta!") and refuses ``.numpy()``: each lens analyses a bundled
  demo model moved there, with its CPU inputs, while copies from meta to the CPU (``.cpu()``,
  ``.to("cpu")``, ``.item()``, ``float()``…) give zeros of the right shape and dtype instead of
  failing. So every input must be moved to the model's device, every new tensor made where the
  tensors it meets live, and every result brought back before numpy reads it. The numbers are
  not checked here (they are zeros); the CPU tests pin those.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "explorer"
META = torch.device("meta")


def _sources() -> list[Path]:
    lenses = [p for p in sorted((PACKAGE / "lenses").rglob("*.py")) if p.name != "tab.py"]
    core = [PACKAGE / "core" / f"{name}.py" for name in ("capture", "preprocess", "rollout", "predictions",
                                                         "conversions")]
    return lenses + core + sorted((PACKAGE / "models").glob("*.py"))


# (file, receiver of .numpy()) for tensors that are on the CPU whatever the model's device.
CPU_BY_CONSTRUCTION = {
    ("explorer/core/preprocess.py", "pixels.permute(1, 2, 0)"),  # the preprocessed image, before any model
    ("explorer/lenses/bias/compute.py", "geometry.relative_position_index(ws)"),  # geometry: CPU tables
    ("explorer/lenses/bias/compute.py", "layout.group_map()"),
    ("explorer/lenses/swin/compute.py", "_index(ws)"),
    ("explorer/lenses/crossformer/compute.py", "layout.token_index()"),
    ("explorer/lenses/mae/compute.py", "torch.argsort(noise)[:kept_count(length, ratio)]"),  # CPU generator's noise
}


def _chain(node: ast.AST) -> list[str]:
    """The attribute names along a receiver chain such as ``a[0].detach().float().cpu()``."""
    names = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        else:
            return names


def _calls_of(method: str):
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
                    and not node.args):
                yield path.relative_to(ROOT).as_posix(), node.lineno, node.func.value


def _on_the_cpu(receiver: ast.AST) -> bool:
    chain = _chain(receiver)
    return "cpu" in chain or "from_numpy" in chain


def test_numpy_reads_only_tensors_brought_to_the_cpu():
    seen, bad = set(), []
    for path, line, receiver in _calls_of("numpy"):
        key = (path, ast.unparse(receiver))
        if key in CPU_BY_CONSTRUCTION:
            seen.add(key)
        elif not _on_the_cpu(receiver):
            bad.append(f"{path}:{line}: {key[1]}.numpy()")
    assert not bad, "numpy() on a tensor that may be on the GPU (add .cpu()):\n" + "\n".join(bad)
    assert seen == CPU_BY_CONSTRUCTION, f"stale entries: {sorted(CPU_BY_CONSTRUCTION - seen)}"


def test_float64_only_on_the_cpu():
    bad = [f"{path}:{line}: {ast.unparse(receiver)}.double()" for path, line, receiver in _calls_of("double")
           if not _on_the_cpu(receiver)]
    assert not bad, "float64 on a tensor that may be on MPS (move it to the CPU first):\n" + "\n".join(bad)


# --------------------------------------------------------------------------- on the meta device

@pytest.fixture
def meta_reads_as_zeros(monkeypatch):
    """Copies from the meta device to the CPU give zeros instead of raising (see the module
    docstring); everything else about meta tensors stays as strict as CUDA is."""
    cpu, to, item, tolist = torch.Tensor.cpu, torch.Tensor.to, torch.Tensor.item, torch.Tensor.tolist

    def zeros(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.zeros(t.shape, dtype=dtype or t.dtype)

    def fake_cpu(self, *args, **kwargs):
        return zeros(self) if self.is_meta else cpu(self, *args, **kwargs)

    def fake_to(self, *args, **kwargs):
        if self.is_meta:
            device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
            if device is not None and device.type == "cpu":
                return zeros(self, dtype)
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", fake_cpu)
    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: item(zeros(self) if self.is_meta else self))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: tolist(zeros(self) if self.is_meta else self))
    for name in ("__float__", "__int__", "__bool__", "__index__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, _f=original: _f(zeros(self) if self.is_meta else self))


def _on_meta(key: str):
    from explorer.core.weights import load_model

    loaded = load_model(key, allow_download=False, device=META)
    assert loaded.device == META
    return loaded


@pytest.fixture(scope="module")
def picture():
    from PIL import Image

    from explorer.core.images import load_image

    pixels = np.random.default_rng(0).integers(0, 256, (90, 150, 3), dtype=np.uint8)
    return load_image(Image.fromarray(pixels))


def _is_numpy_tree(value) -> bool:
    """The analysis came back as CPU data: no tensor left on the meta device anywhere in it."""
    import dataclasses

    if isinstance(value, torch.Tensor):
        return not value.is_meta
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_is_numpy_tree(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return all(_is_numpy_tree(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_is_numpy_tree(v) for v in value)
    return True


@pytest.mark.parametrize("geometry", ["model", "native"])
def test_image_lenses_run_where_the_model_is(meta_reads_as_zeros, picture, geometry):
    from explorer.lenses.attention.compute import analyze as attention
    from explorer.lenses.crossformer.compute import analyze_image as crossformer
    from explorer.lenses.dino.compute import analyze_image as dino
    from explorer.lenses.swin.compute import analyze_image as swin
    from explorer.lenses.twins.compute import analyze_image as twins

    for analyse, key in ((attention, "demo_vit"), (dino, "demo_dino"), (swin, "demo_swin"), (twins, "demo_twins"),
                         (crossformer, "demo_crossformer")):
        result = analyse(_on_meta(key), picture, geometry)
        assert _is_numpy_tree(result), key


def test_batched_captures_bring_one_image_back(meta_reads_as_zeros):
    from explorer.lenses.crossformer.compute import analyze as crossformer
    from explorer.lenses.dino.compute import analyze as dino
    from explorer.lenses.swin.compute import analyze as swin
    from explorer.lenses.twins.compute import analyze as twins

    for analyse, key, size in ((swin, "demo_swin", 64), (twins, "demo_twins", 64), (dino, "demo_dino", 64),
                               (crossformer, "demo_crossformer", 64)):
        model = _on_meta(key).model
        assert _is_numpy_tree(analyse(model, torch.zeros(2, 3, size, size), index=1)), key


def test_position_bias_runs_where_the_model_is(meta_reads_as_zeros, picture):
    import timm

    from explorer.lenses.bias.compute import analyze, analyze_image

    for key in ("demo_swin", "demo_crossformer"):
        assert _is_numpy_tree(analyze(_on_meta(key).model)), key
    assert _is_numpy_tree(analyze_image(_on_meta("demo_crossformer"), picture))
    with torch.device("meta"):  # SwinV2: the CPB MLP evaluated, and the converted model checked on a probe
        v2 = timm.create_model("swinv2_tiny_window8_256", pretrained=False, img_size=64, window_size=8,
                               depths=(2, 2), embed_dim=24, num_heads=(3, 6)).eval()
    assert _is_numpy_tree(analyze(v2))

    from explorer.lenses.swin.compute import analyze as swin

    assert _is_numpy_tree(swin(v2, torch.zeros(1, 3, 64, 64)))


@pytest.mark.parametrize("strategy", ["random", "block", "painted"])
def test_mae_reconstructs_where_the_model_is(meta_reads_as_zeros, picture, strategy):
    from explorer.lenses.mae.compute import reconstruct

    assert _is_numpy_tree(reconstruct(_on_meta("demo_mae"), picture, strategy, 0.75, seed=1, painted=(0, 5)))


def test_navit_packs_on_the_cpu_and_runs_where_the_model_is(meta_reads_as_zeros, picture):
    from explorer.lenses.navit.compute import analyze_images

    result = analyze_images(_on_meta("demo_navit"), [("a", picture), ("b", picture)], token_dropout=0.3, seed=2)
    assert _is_numpy_tree(result)


def test_navit_packs_on_the_images_device():
    from explorer.models.navit import pack

    batch = pack([torch.zeros(3, 16, 8, device=META), torch.zeros(3, 8, 8, device=META)], patch=8,
                 max_seq_len=4, token_dropout=0.5, generator=torch.Generator().manual_seed(0))
    assert {t.device for t in (batch.patches, batch.positions, batch.image_ids, *batch.kept)} == {META}
    assert batch.attention_mask().device == META and batch.pool_mask().device == META


def test_explanations_run_where_the_model_is(meta_reads_as_zeros, picture):
    from explorer.lenses.explain import compute

    loaded = _on_meta("demo_vit")
    analysis = compute.analyze_image(loaded, picture)
    assert _is_numpy_tree(analysis.maps) and set(analysis.maps) == set(compute.methods_of(loaded.model))
    assert _is_numpy_tree(compute.faithfulness(loaded, analysis, steps=4))
    assert compute.sanity(loaded, analysis).shape == (len(compute._blocks(loaded.model)) + 1, len(analysis.maps))
    swin = _on_meta("demo_swin")
    assert _is_numpy_tree(compute.analyze_image(swin, picture).maps)


def test_attnlrp_moves_its_input_to_the_model():
    from explorer.lenses.explain import attnlrp

    from explorer.lenses.explain.compute import private_copy

    model = private_copy(_on_meta("demo_vit").model)
    assert attnlrp.unsupported(model) is None
    grid = tuple(model.patch_embed.grid_size)
    relevance = attnlrp.relevance(model, torch.zeros(1, 3, *model.patch_embed.img_size), 0).patch_map(grid)
    assert relevance.device == META and tuple(relevance.shape) == grid


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")  # meta weights take no values
def test_crossformer_conversion_checks_on_the_models_device(meta_reads_as_zeros, tmp_path):
    from safetensors.torch import save_file

    from explorer.core.conversions import convert_checkpoint
    from explorer.models.crossformer import CrossFormer

    config = dict(img_size=(48, 80), embed_dim=32, depths=[2, 2, 1, 1], num_heads=[1, 2, 2, 4],
                  group_size=[7, 7, 7, 7], num_classes=7)
    src = tmp_path / "dpb.safetensors"
    save_file({k: v.contiguous() for k, v in CrossFormer(**config).state_dict().items()}, str(src))
    with torch.device("meta"):
        architecture = CrossFormer(**config)
    assert convert_checkpoint(src, tmp_path / "rpb.safetensors", architecture, torch.zeros(1, 3, 48, 80)) == 0.0
