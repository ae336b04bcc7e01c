"""The explanation lens as pure computation: class-specific relevance maps of a ViT for one
image, side by side, and two measurements of them on that image.

Methods (each a map over the patch tokens, prefix tokens left out, before any upsampling):

- ``attention``: the last block's CLS attention, mean of heads (as the attention lens shows it);
- ``rollout``: attention rollout (Abnar & Zuidema 2020), mean of heads, CLS row (the same);
- ``gae``: Chefer et al. 2021, generic attention-model explainability: R = I; per block in
  order, Ā = mean over heads of (∇A ⊙ A)⁺ with ∇A = ∂y_c/∂A (y_c the target's logit, A the
  block's attention probabilities), R ← R + Ā·R; the map is R's CLS row over the patches;
- ``gradcam``: Grad-CAM (Selvaraju et al. 2017) through the ``grad-cam`` package
  (pytorch-grad-cam, the field's maintained implementation: its activation/gradient hooks and
  its channel weights, the mean gradient over the tokens) on the last block's first LayerNorm,
  with the ViT reshape (patch tokens back to their grid); ReLU of the weighted sum;
- ``attnlrp``: AttnLRP (Achtibat et al. 2024) with lxt's rules for ViTs in lxt's efficient
  (gradient × input) form, hooked so that it shares GAE's forward (``attnlrp.py``: which rules,
  and why not lxt's process-wide patching), where they read the model;
- ``random``: a fixed random map, the baseline every method must beat.


Measurements: deletion and insertion curves (patches ordered by relevance, set to 0 in the
normalised input — the dataset's mean colour — or restored from it, the target's probability at
each of S + 1 steps, AUC by the trapezoid rule over [0, 1]); and the sanity check of Adebayo et al.
2018 (cascading randomisation of the blocks from the last one down; Spearman's rank correlation
of each map with the trained model's).

Everything that needs gradients runs on a private copy of the module tree that shares the
weights (no memory for them), so the shared cached model is never changed, hooked or given
``.grad``s, and concurrent requests cannot see each other's hooks.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from timm.layers import Attention
from torch import nn

from explorer.core.devices import device_of
from explorer.core.images import LoadedImage
from explorer.core.predictions import Prediction, top_predictions
from explorer.core.preprocess import preprocess
from explorer.core.rollout import attention_rollout
from explorer.core.weights import LoadedModel
from explorer.lenses.explain import attnlrp

METHODS = ("attention", "rollout", "gae", "gradcam", "attnlrp", "random")
SWIN_METHODS = ("gradcam", "random")
DEFAULT_STEPS = 10
RANDOM_SEED = 0


# --------------------------------------------------------------------------- the mathematics

def gae_relevance(attentions: list[torch.Tensor], gradients: list[torch.Tensor], row: int | None = None) -> torch.Tensor:
    """Chefer et al. 2021 (their rules 5 and 6): per block, in order, Ā = mean over heads of
    (∇A ⊙ A)⁺ and R ← R + Ā·R, from R = I. ``attentions`` and ``gradients``: (heads, N, N) each.
    With ``row``, that row of R alone: R = (I + Ā_L)…(I + Ā_1), so the row is a vector taken
    through the factors from the left (N² work a block instead of N³)."""
    # Ā in the tensors' own precision, the products of R in float64 on the CPU (MPS has none)
    averaged = [(g * a).clamp(min=0).mean(0).cpu().double() for a, g in zip(attentions, gradients, strict=True)]
    n = averaged[0].shape[-1]
    if row is None:
        relevance = torch.eye(n, dtype=torch.float64)
        for weighted in averaged:
            relevance = relevance + weighted @ relevance
        return relevance
    relevance = torch.zeros(n, dtype=torch.float64)
    relevance[row] = 1
    for weighted in reversed(averaged):
        relevance = relevance + relevance @ weighted
    return relevance


def deletion_order(relevance: np.ndarray) -> np.ndarray:
    """Patch indices, most relevant first; ties in patch order."""
    flat = np.asarray(relevance, dtype=np.float64).ravel()
    return np.lexsort((np.arange(flat.size), -flat))


def step_counts(patches: int, steps: int) -> np.ndarray:
    """How many patches are removed (or restored) at step k = 0 … S: ⌊k·P/S⌋."""
    return np.array([k * patches // steps for k in range(steps + 1)])


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at S + 1 evenly spaced points of [0, 1] (trapezoid rule)."""
    curve = np.asarray(curve, dtype=np.float64)
    steps = len(curve) - 1
    return float((curve[:-1] + curve[1:]).sum() / (2 * steps))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their mean rank); NaN when a map is flat."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def random_map(grid: tuple[int, int], seed: int = RANDOM_SEED) -> np.ndarray:
    return np.random.default_rng(seed).random(grid).astype(np.float32)


# --------------------------------------------------------------------------- the model passes

def private_copy(model: nn.Module) -> nn.Module:
    """The module tree copied, its parameters and buffers shared (no memory for the weights):
    what is hooked or switched on it stays on it."""
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo=shared)


_SPARE_COPIES: "weakref.WeakKeyDictionary[nn.Module, list[nn.Module]]" = weakref.WeakKeyDictionary()
_SPARE_LOCK = threading.Lock()
SPARE_COPIES_PER_MODEL = 2


@contextmanager
def borrowed_copy(model: nn.Module) -> Iterator[nn.Module]:
    """A private copy of ``model`` for one request, reused afterwards: copying the module tree
    costs ~0.2 of a ViT-S forward. A copy serves one request at a time (requests at once each
    take their own), and its hooks are gone when it comes back."""
    with _SPARE_LOCK:
        spares = _SPARE_COPIES.setdefault(model, [])
        private = spares.pop() if spares else None
    private = private_copy(model) if private is None else private
    yield private
    with _SPARE_LOCK:  # (not after an error: a copy that failed mid-pass is not reused)
        if len(spares) < SPARE_COPIES_PER_MODEL:
            spares.append(private)


def is_windowed(model: nn.Module) -> bool:
    """Swin (v1, v2): attention within windows, pooled by averaging — no CLS row to explain."""
    return hasattr(model, "layers") and not hasattr(model, "blocks")


def methods_of(model: nn.Module) -> tuple[str, ...]:
    """The methods that apply: all of them to a ViT that lxt's rules read (the others lack
    AttnLRP); to Swin, whose attention is per window (no whole-image attention, rollout or GAE),
    Grad-CAM on its last stage and the random map."""
    if is_windowed(model):
        return SWIN_METHODS
    return METHODS if attnlrp.unsupported(model) is None else tuple(m for m in METHODS if m != "attnlrp")


def missing_notes(model: nn.Module) -> tuple[str, ...]:
    """Text keys saying why a method is missing for ``model`` (none when all apply)."""
    if is_windowed(model):
        return ("ex_windowed",)
    reason = attnlrp.unsupported(model)
    return () if reason is None else (reason,)


def _prefix(model: nn.Module) -> int:
    return 0 if is_windowed(model) else int(getattr(model, "num_prefix_tokens", 1))


def _blocks(model: nn.Module) -> list[nn.Module]:
    return [b for stage in model.layers for b in stage.blocks] if is_windowed(model) else list(model.blocks)


def _cam_layer(model: nn.Module) -> nn.Module:
    """Grad-CAM's layer: the last block's first LayerNorm (its output per token goes into the
    last attention, and from it to the classifier)."""
    return _blocks(model)[-1].norm1


def token_grid(model: nn.Module, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """(grid, token size in pixels) of the map: a ViT's patches; Swin's last-stage tokens."""
    ph, pw = model.patch_embed.patch_size
    if not is_windowed(model):
        return (x.shape[-2] // ph, x.shape[-1] // pw), (ph, pw)
    rows, cols = math.ceil(x.shape[-2] / ph), math.ceil(x.shape[-1] / pw)
    for stage in model.layers:  # each patch merging halves the map (padding an odd side), as timm's does
        if not isinstance(stage.downsample, nn.Identity):
            rows, cols, ph, pw = (rows + 1) // 2, (cols + 1) // 2, ph * 2, pw * 2
    return (rows, cols), (ph, pw)


def _grid_of(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    return token_grid(model, x)[0]


@dataclass
class Pass:
    """What one forward and backward pass of a (private) ViT gives for one target class."""

    target: int  # the class explained
    logits: np.ndarray  # (K,)
    attentions: list[torch.Tensor]  # per block (heads, N, N)
    gradients: list[torch.Tensor]  # per block ∂y_c/∂A, (heads, N, N)
    gradcam: np.ndarray  # (h, w) ReLU(Σ_k w_k A_k), before any upsampling
    attnlrp: np.ndarray | None = None  # (h, w) signed, where lxt's rules read the model


def explained_pass(private: nn.Module, x: torch.Tensor, target: int | None) -> Pass:
    """One forward pass with timm's unfused attention (the probabilities are on the graph) and
    AttnLRP's rules hooked where they read the model (``attnlrp.rules``: the forward's values stay
    the model's own); then the gradients of the target's logit (None: the top class of that same
    pass) w.r.t. each block's attention and Grad-CAM's layer, by ``torch.autograd.grad`` (no
    parameter gets a ``.grad``); then, through the same forward, AttnLRP's relevance backward.
    ``private``: see ``private_copy``."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    prefix, grid = _prefix(private), _grid_of(private, x)
    x = x.to(device_of(private))
    saved: list[torch.Tensor] = []
    handles = []
    for module in private.modules():
        if isinstance(module, Attention):
            module.fused_attn = False  # the copy's own switch: the shared model keeps its fused path
            handles.append(module.attn_drop.register_forward_hook(lambda m, i, out: saved.append(out)))

    def to_grid(tokens: torch.Tensor) -> torch.Tensor:  # -> (B, C, h, w), patches only
        if tokens.dim() == 4:  # Swin's (B, H, W, C)
            return tokens.permute(0, 3, 1, 2)
        return tokens[:, prefix:].reshape(tokens.shape[0], *grid, tokens.shape[-1]).permute(0, 3, 1, 2)

    layer_module = _cam_layer(private)
    with_lrp = attnlrp.unsupported(private) is None
    lrp = None
    try:
        with (torch.enable_grad(), attnlrp.rules(private) if with_lrp else nullcontext() as recorder,
              GradCAM(model=private, target_layers=[layer_module], reshape_transform=to_grid) as cam):
            cam.activations_and_grads.detach = False  # keep the layer's output on the graph
            logits = cam.activations_and_grads(x.requires_grad_(True))
            target = int(logits[0].argmax()) if target is None else target
            score = ClassifierOutputTarget(target)(logits[0])
            layer = cam.activations_and_grads.activations[0]
            grads = torch.autograd.grad(score, [*saved, layer], retain_graph=with_lrp)
            activations = to_grid(layer).detach().cpu().numpy()  # numpy only on the CPU (CUDA, MPS)
            layer_grad = to_grid(grads[-1]).detach().cpu().numpy()
            raw = cam.get_cam_image(x, layer_module, [ClassifierOutputTarget(target)],
                                    activations, layer_grad)
            if with_lrp:  # the second backward of the same forward
                lrp = recorder.relevance(private, logits, target).patch_map(grid).float().cpu().numpy()
            # what its hooks kept are graph views here, which its release cannot detach in place
            cam.activations_and_grads.activations, cam.activations_and_grads.gradients = [], []
    finally:
        for handle in handles:
            handle.remove()
    return Pass(target=target, logits=logits[0].detach().float().cpu().numpy(),
                attentions=[a[0].detach().float().cpu() for a in saved],
                gradients=[g[0].detach().float().cpu() for g in grads[:-1]],
                gradcam=np.maximum(raw[0], 0).astype(np.float32), attnlrp=lrp)


def maps_of(result: Pass, prefix: int, grid: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each method's (h, w) map over the patch tokens from one pass (a windowed model, with no
    whole-image attention, has Grad-CAM's and the random map)."""
    if not result.attentions:
        return {"gradcam": result.gradcam, "random": random_map(grid)}
    attention = torch.stack(result.attentions).cpu().numpy()
    relevance = gae_relevance(result.attentions, result.gradients, row=0)  # the CLS row
    patches = slice(prefix, None)
    maps = {
        "attention": attention[-1].mean(0)[0, patches].reshape(grid).astype(np.float32),
        "rollout": attention_rollout(attention, "mean", row=0)[patches].reshape(grid).astype(np.float32),
        "gae": relevance[patches].reshape(grid).float().cpu().numpy(),
        "gradcam": result.gradcam,
        "attnlrp": result.attnlrp,
        "random": random_map(grid),
    }
    return {name: value for name, value in maps.items() if value is not None}


def linked_target(first_names: tuple[str, ...] | None, first_classes: int, target: int,
                  second_names: tuple[str, ...] | None, second_classes: int) -> int | None:
    """The second model's class for the first's target, two models side by side: the class of the
    same name; where either has no names, the same index among as many classes (e.g. two
    ImageNet models, one of them without names); else None (the second model's own top class)."""
    if first_names and second_names:
        name = first_names[target] if target < len(first_names) else None
        return list(second_names).index(name) if name in second_names else None
    return target if first_classes == second_classes and target < second_classes else None


def perturbation_curves(model: nn.Module, x: torch.Tensor, maps: dict[str, np.ndarray], target: int,
                        steps: int = DEFAULT_STEPS, batch_size: int = 16) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method, the deletion and insertion curves: the target's softmax probability at steps
    0 … S, where step k has the ⌊k·P/S⌋ most relevant patches set to 0 in the normalised input
    (deletion) or restored into an all-zero input (insertion). All inputs run in batches."""
    (h, w), (ph, pw) = token_grid(model, x)
    x = x.to(device_of(model))
    height, width = x.shape[-2:]
    counts = step_counts(h * w, steps)
    inputs, index = [], []
    for name, relevance in maps.items():
        order = deletion_order(relevance)
        for kind in ("deletion", "insertion"):
            for count in counts:
                keep = np.ones(h * w, bool) if kind == "deletion" else np.zeros(h * w, bool)
                keep[order[:count]] = kind == "insertion"
                mask = torch.from_numpy(keep.reshape(h, w)).repeat_interleave(ph, 0).repeat_interleave(pw, 1)
                inputs.append(x[0] * mask[:height, :width].to(x.device, x.dtype))  # Swin's last tokens may overhang
                index.append((name, kind))
    probabilities = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            logits = model(torch.stack(inputs[start:start + batch_size]))
            probabilities.append(logits.float().softmax(-1)[:, target])
    probs = torch.cat(probabilities).cpu().numpy()
    curves: dict[str, dict[str, np.ndarray]] = {}
    for (name, kind), start in zip(index[::steps + 1], range(0, len(probs), steps + 1)):
        curves.setdefault(name, {})[kind] = probs[start:start + steps + 1].astype(np.float32)
    return {name: (c["deletion"], c["insertion"]) for name, c in curves.items()}


def _randomise(block: nn.Module, generator: torch.Generator) -> None:
    """New weights for one block, as timm initialises a ViT: linear layers N(0, 0.02²) (truncated
    at ±2σ), biases 0, norms 1 and 0; new tensors, so the shared model keeps its own."""
    for module in block.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if isinstance(module, nn.LayerNorm):
                value = torch.ones_like(param) if name == "weight" else torch.zeros_like(param)
            elif name == "bias":
                value = torch.zeros_like(param)
            else:
                value = nn.init.trunc_normal_(torch.empty(param.shape), std=0.02, a=-0.04, b=0.04,
                                              generator=generator).to(param.device, param.dtype)
            setattr(module, name, nn.Parameter(value, requires_grad=param.requires_grad))


def cascading_randomisation(model: nn.Module, x: torch.Tensor, target: int, trained: dict[str, np.ndarray],
                            seed: int = RANDOM_SEED) -> np.ndarray:
    """(blocks + 1, methods of ``trained``) Spearman correlation between each method's map of the trained model
    and of the model with its last 0, 1, 2, … blocks randomised (Adebayo et al. 2018, cascading;
    row 0, nothing randomised yet, is 1 for every method that is deterministic)."""
    private = private_copy(model)
    generator = torch.Generator().manual_seed(seed)
    prefix, grid = _prefix(private), _grid_of(private, x)
    rows = []
    for block in (None, *reversed(_blocks(private))):
        if block is not None:
            _randomise(block, generator)
        maps = maps_of(explained_pass(private, x.clone(), target), prefix, grid)
        rows.append([spearman(trained[name], maps[name]) for name in trained])
    return np.array(rows, dtype=np.float32)


# --------------------------------------------------------------------------- for the app

@dataclass
class ExplainAnalysis:
    """The maps of every method for one (model, weights, image, geometry, target)."""

    target: int
    maps: dict[str, np.ndarray]  # method -> (h, w) float32 over the patch tokens
    logits: np.ndarray
    predictions: list[Prediction]
    grid: tuple[int, int]
    patch_size: tuple[int, int]
    num_prefix_tokens: int  # CLS (and distillation, register) tokens before the patches
    notes: tuple[str, ...]  # text keys: why a method is missing for this model
    model_image: np.ndarray  # (H, W, 3) uint8, the pixels the model saw
    steps: tuple[tuple[str, str], ...]
    x: torch.Tensor = field(repr=False)  # the model's input, for the measurements

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.maps)


def model_input(loaded: LoadedModel, image: LoadedImage, geometry: str):
    return preprocess(image.image, loaded.data_config, geometry, loaded.patch_size)


def analyze_image(loaded: LoadedModel, image: LoadedImage, geometry: str = "model",
                  target: int | None = None) -> ExplainAnalysis:
    """Every method's map for ``target`` (the top class when None): one forward and backward pass."""
    pre = model_input(loaded, image, geometry)  # a ViT's patch grid, or Swin's first-stage one
    x = pre.tensor
    with borrowed_copy(loaded.model) as private:
        result = explained_pass(private, x.clone(), target)
    grid, token_px = token_grid(loaded.model, x)
    return ExplainAnalysis(target=result.target, maps=maps_of(result, _prefix(loaded.model), grid), logits=result.logits,
                           predictions=top_predictions(result.logits, loaded.class_names), grid=grid,
                           patch_size=tuple(token_px),
                           num_prefix_tokens=_prefix(loaded.model), notes=missing_notes(loaded.model),
                           model_image=pre.model_image,
                           steps=pre.steps, x=x)


@dataclass(frozen=True)
class Faithfulness:
    steps: int
    deletion: dict[str, np.ndarray]  # method -> (S+1,)
    insertion: dict[str, np.ndarray]

    def auc(self, kind: str) -> dict[str, float]:
        return {name: auc(curve) for name, curve in getattr(self, kind).items()}

    @property
    def fastest_deletion(self) -> str:
        return min(self.auc("deletion").items(), key=lambda kv: (kv[1], METHODS.index(kv[0])))[0]

    @property
    def fastest_insertion(self) -> str:
        return max(self.auc("insertion").items(), key=lambda kv: (kv[1], -METHODS.index(kv[0])))[0]


def faithfulness(loaded: LoadedModel, analysis: ExplainAnalysis, steps: int = DEFAULT_STEPS) -> Faithfulness:
    curves = perturbation_curves(loaded.model, analysis.x, analysis.maps, analysis.target, steps)
    return Faithfulness(steps, {n: c[0] for n, c in curves.items()}, {n: c[1] for n, c in curves.items()})


def sanity(loaded: LoadedModel, analysis: ExplainAnalysis) -> np.ndarray:
    return cascading_randomisation(loaded.model, analysis.x, analysis.target, analysis.maps)


def export_arrays(analysis: ExplainAnalysis, measured: Faithfulness | None = None) -> dict[str, np.ndarray]:
    """The arrays of ``python -m explorer export explain``: ``target``, ``methods`` and per method
    ``map_<name>``, ``deletion_<name>``, ``insertion_<name>``, ``auc_deletion_<name>``,
    ``auc_insertion_<name>``."""
    arrays: dict[str, np.ndarray] = {"target": np.array(analysis.target), "methods": np.array(analysis.methods),
                                     "logits": analysis.logits.astype(np.float32), "model_image": analysis.model_image}
    for name, relevance in analysis.maps.items():
        arrays[f"map_{name}"] = relevance.astype(np.float32)
    if measured is not None:
        for name in analysis.maps:
            arrays[f"deletion_{name}"] = measured.deletion[name]
            arrays[f"insertion_{name}"] = measured.insertion[name]
            arrays[f"auc_deletion_{name}"] = np.array(auc(measured.deletion[name]), dtype=np.float32)
            arrays[f"auc_insertion_{name}"] = np.array(auc(measured.insertion[name]), dtype=np.float32)
    return arrays


def is_flat(correlations: np.ndarray, threshold: float = 0.9) -> np.ndarray:  # per column, in methods' order
    """Per method: whether its map hardly changed while every block was randomised (it does not
    explain the model). NaN (a flat map) counts as not changed only if it stayed NaN."""
    finite = np.where(np.isnan(correlations), -math.inf, correlations)
    return (finite >= threshold).all(axis=0)
