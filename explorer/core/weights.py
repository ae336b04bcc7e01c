"""Where a model's weights come from, in order: a file in ``checkpoints/`` -> the Hugging
Face cache/hub (honours ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE``) -> the bundled demo model
of the family -> random init. Whatever happens, the result carries a banner that says what
is shown and, when weights are missing, exactly which file to put where.

Checkpoints are read with safetensors or ``torch.load(weights_only=True)``: loading never
executes pickled code.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import hashlib
import logging
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

import explorer.models  # noqa: F401  (registers CrossFormer with timm)
from explorer.core.cache import LRUCache
from explorer.core.capture import install_hooks
from explorer.core.checkpoints import Card, CardError, card_beside, is_torchvision_vit, torchvision_to_timm
from explorer.core.devices import app_device, device_of
from explorer.core.errors import UserFacingError
from explorer.core.text import pick
from explorer.core.zoo import CHECKPOINT_DIR, TORCHVISION_VITS, ModelEntry, get_entry, stand_in_for

log = logging.getLogger("explorer.weights")

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
HUB_FILENAME = "model.safetensors"
# Official training scripts (Swin, CrossFormer) save their yacs config next to the weights.
# Read it as a plain OrderedDict: no class of that package is imported or run. timm's train.py
# saves its arguments as an argparse.Namespace (a plain attribute holder, no code of its own).
_CONFIG_CLASSES = [(collections.OrderedDict, "yacs.config.CfgNode"), argparse.Namespace]
# Keys of an MAE decoder checkpoint: timm would take a state dict with `mask_token` for DINOv2,
# so they are dropped unless the model has them (our MAE with its decoder does).
_FOREIGN_PREFIXES = ("decoder_", "mask_token")


class WeightsError(UserFacingError):
    """A checkpoint that cannot be used as it is (wrong format, wrong shapes, pickled code)."""


@dataclass(frozen=True)
class Banner:
    level: str  # "info" | "warning"
    en: str
    zh: str

    def text(self, lang: str = "en") -> str:
        return pick((self.en, self.zh), lang)


@dataclass
class LoadedModel:
    entry: ModelEntry  # what the user picked
    shown: ModelEntry  # what is actually loaded (a demo stands in when weights are missing)
    model: nn.Module
    source: str  # "file" | "bundled" | "hub-cache" | "hub-download" | "random"
    weights_id: str  # identifies the exact weights, for result-cache keys
    data_config: dict[str, Any]
    class_names: tuple[str, ...] | None
    banner: Banner | None = None
    weights_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def patch_size(self) -> tuple[int, int]:
        return tuple(self.model.patch_embed.patch_size)

    @property
    def device(self) -> torch.device:
        return device_of(self.model)


# --------------------------------------------------------------------------- reading files

# safetensors header dtypes, for checking a file's shapes without reading its tensors
_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool}


def _read_raw(path: Path, lazy: bool) -> Any:
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not lazy:
            return load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as handle:  # reads the header only
            return {k: torch.empty(handle.get_slice(k).get_shape(),
                                   dtype=_SAFETENSORS_DTYPES.get(handle.get_slice(k).get_dtype(), torch.float32),
                                   device="meta") for k in handle.keys()}
    with torch.serialization.safe_globals(_CONFIG_CLASSES):
        if lazy:
            try:  # memory-mapped: tensors are read only if something looks at their values
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as err:
                if "mmap" not in str(err):  # only the legacy (non-zip) format cannot be mapped
                    raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | os.PathLike, lazy: bool = False) -> dict[str, torch.Tensor]:
    """Read a checkpoint without executing code; unwrap ``model``/``state_dict`` containers.

    With ``lazy`` the tensors are not read (safetensors: shapes from the header, on the meta
    device; PyTorch files: memory-mapped), for checking a file's keys and shapes cheaply."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint {path} does not exist.", f"检查点文件 {path} 不存在。")
    try:
        state = _read_raw(path, lazy)
    except pickle.UnpicklingError as err:
        log.warning("refused %s: %s", path, str(err).splitlines()[0][:300])
        raise WeightsError(
            f"{path.name} contains pickled Python objects other than tensors, and loading it could run "
            f"arbitrary code, so it is refused (re-save it as safetensors or as a plain state dict).",
            f"{path.name} 含有张量以外的 pickle 对象，加载它可能执行任意代码，因此被拒绝"
            f"（请另存为 safetensors 或纯 state dict）。",
        ) from err
    except Exception as err:  # truncated zip, bad header, not a checkpoint at all
        log.warning("cannot read %s: %s: %s", path, type(err).__name__, str(err)[:300])
        raise WeightsError(
            f"{path.name} is not a readable checkpoint (it is truncated, or not a safetensors/PyTorch file).",
            f"{path.name} 不是可读取的检查点（文件被截断，或不是 safetensors/PyTorch 格式）。",
        ) from err
    # official repos: "model"; timm's train.py: "state_dict" (and "state_dict_ema", used when alone)
    for container in ("model", "state_dict", "module", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(container), dict):
            state = state[container]
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"{path.name} holds no state dict.", f"{path.name} 中没有 state dict。")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(state):
        bad = [str(k)[:60] for k, v in state.items() if not isinstance(v, torch.Tensor)][:5]
        raise WeightsError(
            f"{path.name}: entries that are not tensors: {bad}",
            f"{path.name}：以下条目不是张量：{bad}",
        )
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in tensors.items()}


def filtered_state(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """``state`` through the architecture's own timm checkpoint filter, which converts official
    layouts and resamples position embeddings (unchecked: see ``fitted_state``)."""
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith(_FOREIGN_PREFIXES)}
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if filter_fn is not None:
        try:
            state = filter_fn(state, model)
        except WeightsError:
            raise
        except ValueError as err:  # the filters' own words for a checkpoint of another layout
            raise WeightsError(f"{name} does not fit this architecture: {str(err)[:300]}",
                               f"{name} 与该模型结构不匹配：{str(err)[:300]}") from err
        except Exception as err:
            log.warning("%s: checkpoint filter failed: %s: %s", name, type(err).__name__, str(err)[:300])
            raise WeightsError(
                f"{name} does not fit {type(model).__name__} (its keys or shapes are of another architecture).",
                f"{name} 与 {type(model).__name__} 不匹配（其键名或形状属于另一种模型结构）。",
            ) from err
    return state


def fitted_state(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """``filtered_state``, checked key by key and shape by shape against ``model``; any mismatch
    raises ``WeightsError`` naming it. Works on meta-device models."""
    own = model.state_dict()
    state = filtered_state(model, state, name)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {[k[:60] for k in unexpected[:3]]})")
        if wrong:
            parts.append(f"wrong shapes: {wrong[:3]}")
        detail = "; ".join(parts)
        raise WeightsError(
            f"{name} does not match {type(model).__name__}: {detail}.",
            f"{name} 与 {type(model).__name__} 不匹配：{detail}。",
        )
    return state


def load_into(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load ``state`` strictly (see ``fitted_state``); explain any mismatch."""
    model.load_state_dict(fitted_state(model, state, name), strict=True)


# --------------------------------------------------------------------------- building models

def build_model(entry: ModelEntry, **overrides) -> nn.Module:
    """The architecture with deterministic random weights (seed 0), in eval mode; ``overrides``
    replace the entry's model arguments (another number of classes)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = timm.create_model(entry.timm_model, pretrained=False, **{**entry.model_kwargs, **overrides})
    return model.eval()


def _classifier_name(model: nn.Module) -> str | None:
    """The module name of the model's classifier (``head``, ``head.fc`` …), None without one.
    DeiT's distilled models have two (``head``, ``head_dist``): the first says the classes; the
    project's CrossFormer and NaViT keep theirs in ``head`` with a ``num_classes`` beside it."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, tuple):
        head = head[0]
    if not isinstance(head, nn.Module) and hasattr(model, "num_classes"):
        head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        return None
    return next((name for name, module in model.named_modules() if module is head and name), None)


def classes_in(model: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """How many classes a checkpoint's classifier has (0: it has none, a backbone), or None when
    the architecture has no classifier to compare (timm's filters have already renamed keys)."""
    name = _classifier_name(model)
    if name is None:
        return None
    weight = state.get(f"{name}.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 1 else 0


def build_model_meta(entry: ModelEntry, **overrides) -> nn.Module:
    with torch.device("meta"):
        return build_model(entry, **overrides)


@functools.lru_cache(maxsize=128)
def skeleton(key: str, num_classes: int | None = None) -> nn.Module:
    """The weightless skeleton of a registry entry (meta device, cached), with another number of
    classes if given: its type, shapes and parameter count, for choosing and checking without
    building anything for real."""
    return build_model_meta(get_entry(key), **({} if num_classes is None else {"num_classes": num_classes}))


def class_override(entry: ModelEntry, state: dict[str, torch.Tensor], name: str) -> dict:
    """``{"num_classes": n}`` when the checkpoint's classifier has another size than ``entry``'s."""
    skeleton = build_model_meta(entry)
    classes = classes_in(skeleton, filtered_state(skeleton, state, name))
    return {} if classes is None or classes == getattr(skeleton, "num_classes", classes) else {"num_classes": classes}


@dataclass(frozen=True)
class FileModel:
    """A model built to fit a checkpoint, and what was done to make it fit."""

    model: nn.Module
    entry: ModelEntry  # the entry as built (a torchvision file: the timm architecture it fits)
    notes_en: tuple[str, ...] = ()
    notes_zh: tuple[str, ...] = ()
    data_config: dict | None = None  # preprocessing the file's layout implies (torchvision's)


def _torchvision_config(img_size: int) -> dict:
    """torchvision's ImageNet evaluation transform for its ViTs: resize the short side to
    256/224 of the input, centre-crop the input, bilinear, ImageNet mean and std."""
    return dict(input_size=(3, img_size, img_size), mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                interpolation="bilinear", crop_pct=224 / 256, crop_mode="center")


def model_for_file(entry: ModelEntry, path: Path, name: str) -> FileModel:
    """``entry``'s architecture with the checkpoint's weights: torchvision ViT layouts converted,
    the classifier sized to the checkpoint's number of classes (no flag needed), strictly loaded."""
    state = read_state_dict(path)
    notes_en, notes_zh, config = [], [], None
    if is_torchvision_vit(state):
        if entry.family not in ("vit", "dino"):
            raise CardError(f"{name} holds a torchvision ViT, not a {entry.timm_model}: open it as vit_b_16 … vit_h_14.",
                            f"{name} 是 torchvision 的 ViT，而不是 {entry.timm_model}：请用 vit_b_16 … vit_h_14 打开。")
        converted = torchvision_to_timm(state)
        config = _torchvision_config(converted.img_size)
        state = converted.state
        entry = dataclasses.replace(entry, timm_model=converted.timm_model, pretrained_tag=None,
                                    model_kwargs={"dynamic_img_size": True, "img_size": converted.img_size})
        notes_en.append(f"torchvision ViT weights, converted to timm's {converted.timm_model}.")
        notes_zh.append(f"torchvision ViT 权重，已转换为 timm 的 {converted.timm_model}。")
    overrides = class_override(entry, state, name)
    classes = overrides.get("num_classes")
    model = build_model(entry, **overrides)
    load_into(model, state, name)
    if overrides:  # the entry as built: its class names only if they still fit
        entry = dataclasses.replace(entry, model_kwargs={**entry.model_kwargs, **overrides},
                                    class_names=entry.class_names if classes == len(entry.class_names or ()) else None)
    return FileModel(model, entry, tuple(notes_en), tuple(notes_zh), config)


@functools.lru_cache(maxsize=32)
def vit_depth_and_heads(key: str) -> tuple[int, int]:
    """(blocks, heads) of a ViT entry, from a weightless skeleton on the meta device (milliseconds,
    no memory): the page sizes its layer slider for the default model before any load."""
    with torch.device("meta"):
        model = build_model(get_entry(key))
    return len(model.blocks), int(model.blocks[0].attn.num_heads)


def _data_config(entry: ModelEntry, model: nn.Module) -> dict[str, Any]:
    config = timm.data.resolve_data_config(model=model)
    if entry.card is not None:
        card = entry.card
        config.update(input_size=tuple(card["input_size"]), mean=tuple(card["mean"]),
                      std=tuple(card["std"]), interpolation=card.get("interpolation", "bicubic"),
                      crop_pct=1.0, crop_mode="center")
    return config


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k's 1000 class descriptions in the models' order (timm's ``ImageNetInfo``)."""
    info = timm.data.ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


def _class_names(entry: ModelEntry, model: nn.Module) -> tuple[str, ...] | None:
    if entry.class_names is not None:
        return entry.class_names
    classes = getattr(model, "num_classes", 0)
    if classes == 1000:
        return imagenet_class_names()
    if classes:  # a classifier without names (a fine-tuned head, no card): its classes by number
        return tuple(f"class {i}" for i in range(classes))
    return None


def local_weight_file(entry: ModelEntry, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path | None:
    if entry.card is not None:
        return checkpoint_dir / entry.card["weights_file"]
    names = [f"{entry.local_weight_stem}{suffix}" for suffix in WEIGHT_SUFFIXES]
    for name in [*names, *entry.release_filenames]:
        if (checkpoint_dir / name).is_file():
            return checkpoint_dir / name
    return None


def _file_id(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _card_id(card: Card) -> str:
    return hashlib.sha256(repr(card).encode()).hexdigest()[:16]


def download_instructions(entry: ModelEntry, checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[str, str]:
    """Exactly which file to fetch and where to put it (English, Chinese)."""
    from huggingface_hub import constants, hf_hub_url

    if entry.hf_hub_id is None and entry.manual_source is None:  # the user's own: no download anywhere
        if entry.key in TORCHVISION_VITS:
            return (f"Its weights are your own file: give it with --weights, or keep it with "
                    f"python -m explorer add FILE --model {entry.key} --name NAME.",
                    f"它的权重是你自己的文件：请用 --weights 指定，或用 "
                    f"python -m explorer add FILE --model {entry.key} --name NAME 保存下来。")
        target = checkpoint_dir / f"{entry.local_weight_stem}.safetensors"
        arch = entry.timm_model.split(".", 1)[0]
        return (f"Its weights are your own file: put it at {target} (python -m explorer add FILE --model {arch} "
                f"--name {entry.key}), or give it with --weights.",
                f"它的权重是你自己的文件：请放到 {target}（python -m explorer add FILE --model {arch} "
                f"--name {entry.key}），或用 --weights 指定。")
    if entry.hf_hub_id is None:
        release = entry.release_filenames[0] if entry.release_filenames else f"{entry.key}.pth"
        target = checkpoint_dir / release
        return (f"These weights are not on the Hugging Face hub: download {release} from "
                f"{entry.manual_source} and save it as {target}.",
                f"这些权重不在 Hugging Face Hub 上：请从 {entry.manual_source} 下载 {release}，"
                f"并保存为 {target}。")

    url = hf_hub_url(entry.hf_hub_id, HUB_FILENAME, endpoint=constants.ENDPOINT)  # HF_ENDPOINT: the mirror's
    target = checkpoint_dir / f"{entry.local_weight_stem}.safetensors"
    return (
        f"Download {url} and save it as {target} (or set HF_ENDPOINT to a mirror and allow "
        f"downloads, or run `python -m explorer fetch {entry.key}` where the hub is reachable).",
        f"请下载 {url} 并保存为 {target}（也可以把 HF_ENDPOINT 设为镜像站并允许下载，"
        f"或在能访问 Hub 的机器上运行 `python -m explorer fetch {entry.key}`）。",
    )


def hub_file(entry: ModelEntry, allow_download: bool) -> tuple[Path, bool]:
    """The hub weights file from the local HF cache, downloading it if allowed.

    Returns (path, downloaded). Raises whatever huggingface_hub raises when unavailable.
    """
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(entry.hf_hub_id, HUB_FILENAME, local_files_only=True)), False
    except Exception:
        if not allow_download:
            raise
    return Path(hf_hub_download(entry.hf_hub_id, HUB_FILENAME)), True


def check_weight_file(entry: ModelEntry, path: Path) -> WeightsError | None:
    """Whether ``path`` would load into ``entry``'s architecture: its header and key names and
    shapes, read without loading tensors it need not (the model is built on the meta device).
    Returns the error the load would raise, or None."""
    try:
        state = read_state_dict(path, lazy=True)
        if is_torchvision_vit(state):
            converted = torchvision_to_timm(state)
            entry, state = dataclasses.replace(entry, timm_model=converted.timm_model, model_kwargs={
                "img_size": converted.img_size}), converted.state
        fitted_state(build_model_meta(entry, **class_override(entry, state, path.name)), state, path.name)
    except (WeightsError, CardError) as err:
        return err
    return None


def _demo_banner(entry: ModelEntry) -> Banner:
    classes = len(entry.class_names or ())
    how_en, how_zh = (f"{classes} classes", f"{classes} 类") if classes else (
        "self-supervised, no labels", "自监督，不用标签")
    # the model's name is in the picker right above; the line says what it was trained on
    return Banner("info", f"Trained offline on the project's synthetic shapes ({how_en}), not on ImageNet.",
                  f"在本项目的合成形状数据上离线训练（{how_zh}），不是 ImageNet 模型。")


def _failed(path: Path, err: WeightsError) -> tuple[str, str]:
    """The error, and which copy it was, without the server's absolute folders (a public page)."""
    from huggingface_hub import constants

    if path.resolve().is_relative_to(Path(constants.HF_HUB_CACHE).resolve()):
        where_en, where_zh = "In the Hugging Face cache", "Hugging Face 缓存中的文件"
    else:
        where_en, where_zh = f"In {path.parent.name}/", f"{path.parent.name}/ 中的文件"
    return f"{where_en}: {err.message_en}", f"{where_zh}：{err.message_zh}"


def load_model(entry: ModelEntry | str, weights_file: str | os.PathLike | None = None,
               allow_download: bool = True, checkpoint_dir: Path = CHECKPOINT_DIR,
               card: Card | None = None, device: torch.device | None = None) -> LoadedModel:
    """Build ``entry`` and give it the best weights available (see the module docstring).

    A source that fails (a broken or foreign file) is skipped like a missing one, and the
    banner names the file and why; an explicit ``weights_file`` must load (no fallback: the
    user asked for that file). A user's file brings its card (``<stem>.json`` beside it), and
    ``card`` (labels, preprocessing given on the command line) goes over it. The model is moved
    to ``device`` (None: the app's, ``EXPLORER_DEVICE``) once it has its weights.
    """
    entry = get_entry(entry) if isinstance(entry, str) else entry
    device = app_device() if device is None else device

    def finish(shown: ModelEntry, mdl: nn.Module, source: str, weights_id: str, banner: Banner | None = None,
               path: Path | None = None, given: Card | None = None, defaults: dict | None = None) -> LoadedModel:
        mdl = mdl.to(device)
        install_hooks(mdl)
        names, config = _class_names(shown, mdl), {**_data_config(shown, mdl), **(defaults or {})}
        if given is not None:
            names, config = _card_names(given, mdl, names), given.data_config(config)
        return LoadedModel(entry=entry, shown=shown, model=mdl, source=source, weights_id=weights_id,
                           data_config=config, class_names=names, banner=banner, weights_path=path)

    def from_file(target: ModelEntry, path: Path, name: str) -> tuple[ModelEntry, nn.Module, FileModel]:
        built = model_for_file(target, path, name)  # built only when there are weights for it (MAE-H: 2.5 GB)
        return built.entry, built.model, built

    def users_file(path: Path, source: str, explicit: bool) -> LoadedModel:
        shown, model, built = from_file(entry, path, path.name)
        if entry.is_demo and not explicit:  # the bundled file itself (a user's file of that shape is theirs)
            return finish(shown, model, source, _file_id(path), _demo_banner(entry), path)
        beside = card_beside(path)
        given = beside.merged(card) if beside is not None and card is not None else beside or card
        # the same file with other labels or preprocessing is another result to the caches
        weights_id = _file_id(path) + ("" if given is None else f"+card:{_card_id(given)}")
        loaded = finish(shown, model, source, weights_id, None, path, given, built.data_config)
        if explicit or given is not None or shown is not entry:  # not a zoo model's own weights
            loaded.banner = _file_banner(path, built, given, loaded)
        return loaded

    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsError(f"Weights file {path} is missing.", f"权重文件 {path} 不存在。")
        return users_file(path, "file", explicit=True)

    failures: list[tuple[str, str]] = []  # (en, zh): each source that was there but failed
    path = local_weight_file(entry, checkpoint_dir)
    if path is not None and path.is_file():
        try:
            return users_file(path, "bundled" if entry.is_demo else "file", explicit=False)
        except (WeightsError, CardError) as err:
            failures.append(_failed(path, err))

    reason = None
    if entry.hf_hub_id is not None:
        try:
            path, downloaded = hub_file(entry, allow_download)
        except Exception as err:
            reason = type(err).__name__
        else:
            try:
                shown, model, _ = from_file(entry, path, f"{entry.hf_hub_id}/{HUB_FILENAME}")
            except (WeightsError, CardError) as err:
                failures.append(_failed(path, err))
            else:
                source = "hub-download" if downloaded else "hub-cache"
                return finish(shown, model, source, _file_id(path), _failures_banner(failures), path, card)

    demo = stand_in_for(entry)
    demo_path = local_weight_file(demo, checkpoint_dir) if demo is not None else None
    if demo_path is not None and demo_path.is_file():
        try:
            _, shown, _ = from_file(demo, demo_path, demo_path.name)
        except (WeightsError, CardError) as err:
            failures.append(_failed(demo_path, err))
        else:
            why_en, why_zh = _missing_sentences(entry, checkpoint_dir, allow_download, reason, failures)
            banner = Banner("warning", f"Showing the bundled {demo.label_en} instead of {entry.label_en}. {why_en}",
                            f"现在显示的是内置的 {demo.label_zh}，而不是 {entry.label_zh}。{why_zh}")
            return finish(demo, shown, "bundled", _file_id(demo_path), banner, demo_path)
    why_en, why_zh = _missing_sentences(entry, checkpoint_dir, allow_download, reason, failures)
    banner = Banner("warning", f"Showing {entry.label_en} with RANDOM weights: the maps show no learned "
                    f"structure and the predictions are meaningless. {why_en}",
                    f"现在显示的是随机初始化权重的 {entry.label_zh}：注意力图没有学到的结构，预测没有意义。{why_zh}")
    return finish(entry, build_model(entry), "random", "random:seed0", banner)


def _card_names(card: Card, model: nn.Module, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The card's class names, which must be one per class of the model."""
    if card.class_names is None:
        return default
    classes = getattr(model, "num_classes", None)
    if classes is not None and len(card.class_names) != classes:
        raise CardError(f"{card.names_source} names {len(card.class_names)} classes, but the model has {classes}.",
                        f"{card.names_source} 给出了 {len(card.class_names)} 个类别名，但模型有 {classes} 类。")
    return card.class_names


def _file_banner(path: Path, built: FileModel, card: Card | None, loaded: LoadedModel) -> Banner:
    """What a user's own checkpoint gave: conversions, classes and their names, preprocessing."""
    classes = getattr(loaded.model, "num_classes", 0)
    config = loaded.data_config
    size = "×".join(str(v) for v in config["input_size"][1:])
    pre = (f"mean {tuple(round(v, 4) for v in config['mean'])}, std {tuple(round(v, 4) for v in config['std'])}, "
           f"{size} px, {config.get('interpolation', 'bicubic')}")
    named = card is not None and card.class_names is not None
    if classes:
        names_en = f"names from {card.names_source}" if named else (
            "ImageNet-1k names" if loaded.class_names and classes == 1000 else "no names: shown as class numbers")
        names_zh = f"类别名来自 {card.names_source}" if named else (
            "ImageNet-1k 类别名" if loaded.class_names and classes == 1000 else "没有类别名：以编号显示")
        what_en, what_zh = f"{classes} classes ({names_en})", f"{classes} 类（{names_zh}）"
    else:
        what_en, what_zh = "no classifier", "无分类头"
    given = card is not None and card.gives_preprocessing
    pre_en = f"preprocessing from {card.preprocessing_source}: {pre}" if given else (
        f"preprocessing: the architecture's default ({pre}); if the model was trained with other values "
        "(CIFAR's mean/std, 0.5/0.5), give them in a card beside the file, with --mean/--std or, on the page, "
        "under Preprocessing")
    pre_zh = f"预处理来自 {card.preprocessing_source}：{pre}" if given else (
        f"预处理：该结构的默认值（{pre}）；如果训练时用的是别的值（CIFAR 的均值/标准差、0.5/0.5），"
        "请在文件旁放一个卡片文件、传入 --mean/--std，或在页面的“预处理”中选择")
    return Banner("info", " ".join([f"Your checkpoint {path.name}: {what_en}; {pre_en}.", *built.notes_en]),
                  "".join([f"你的检查点 {path.name}：{what_zh}；{pre_zh}。", *built.notes_zh]))


def _failures_banner(failures: list[tuple[str, str]]) -> Banner | None:
    if not failures:
        return None
    return Banner("warning", " ".join(en for en, _ in failures), " ".join(zh for _, zh in failures))


# huggingface_hub's exceptions in a user's words (the class name follows in the details)
_HUB_REASONS = {
    "LocalEntryNotFoundError": ("the hub could not be reached", "无法连接到 Hub"),
    "OfflineModeIsEnabled": ("the hub could not be reached", "无法连接到 Hub"),
    "ConnectionError": ("the hub could not be reached", "无法连接到 Hub"),
    "ConnectTimeout": ("the hub could not be reached", "无法连接到 Hub"),
    "ReadTimeout": ("the hub did not answer in time", "Hub 响应超时"),
    "RepositoryNotFoundError": ("the hub has no such model", "Hub 上没有这个模型"),
    "EntryNotFoundError": ("the hub has no such file", "Hub 上没有这个文件"),
    "GatedRepoError": ("the model is gated on the hub", "该模型在 Hub 上需要授权"),
    "URLError": ("the server could not be reached", "无法连接到服务器"),
}


def hub_reason(exception_name: str | None) -> tuple[str, str]:
    """What a download exception means, in a user's words (English, Chinese)."""
    return _HUB_REASONS.get(exception_name or "", ("the download failed", "下载失败"))


def _missing_sentences(entry: ModelEntry, checkpoint_dir: Path, allow_download: bool, reason: str | None,
                       failures: list[tuple[str, str]]) -> tuple[str, str]:
    """After the sentence that says what is shown: exactly which file to put where, then why
    the real weights are not shown (the details, exception names last)."""
    from huggingface_hub import constants

    howto_en, howto_zh = download_instructions(entry, checkpoint_dir)
    parts_en, parts_zh = [en for en, _ in failures], [zh for _, zh in failures]
    if entry.is_demo:
        return " ".join(parts_en), "".join(parts_zh)  # a bundled model has nowhere else to come from
    if entry.hf_hub_id is None or not allow_download or constants.HF_HUB_OFFLINE:
        parts_en.append(f"Its weights are not on this machine{'' if entry.hf_hub_id is None else ' and downloads are off'}.")
        parts_zh.append(f"本机没有它的权重{'' if entry.hf_hub_id is None else '，且下载已关闭'}。")
    else:
        said_en, said_zh = hub_reason(reason)
        parts_en.append(f"Its weights are not on this machine and {said_en} ({reason}).")
        parts_zh.append(f"本机没有它的权重，且{said_zh}（{reason}）。")
    return f"{howto_en} {' '.join(parts_en)}", f"{howto_zh}{''.join(parts_zh)}"


# --------------------------------------------------------------------------- the model cache

_MODELS: LRUCache[LoadedModel] = LRUCache(max_items=int(os.environ.get("EXPLORER_MAX_MODELS", "2")))


def _files_marker(key: str) -> tuple[str, ...]:
    """The identity of the files a load of ``key`` would read first (its own, its stand-in's):
    a file put into (or replaced in) ``checkpoints/`` makes the next request load anew."""
    entry = get_entry(key)
    marks = []
    for candidate in (entry, stand_in_for(entry)):
        path = local_weight_file(candidate, CHECKPOINT_DIR) if candidate is not None else None
        marks.append(_file_id(path) if path is not None and path.is_file() else "-")
        card = path.with_suffix(".json") if path is not None else None  # its classes and preprocessing
        marks.append(_file_id(card) if card is not None and card.is_file() else "-")
    return tuple(marks)


def _download_matters(entry: ModelEntry, weights_file: str | None) -> bool:
    """Whether ``allow_download`` can change what a load of ``entry`` gives: only for a hub model
    with no file of its own on disk and nothing in the Hugging Face cache. Elsewhere the page
    (downloads on) and the API (off) share one loaded model instead of holding two."""
    if weights_file or entry.is_demo or entry.hf_hub_id is None:
        return False
    path = local_weight_file(entry, CHECKPOINT_DIR)
    if path is not None and path.is_file():
        return False
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(entry.hf_hub_id, HUB_FILENAME)
    return not (isinstance(cached, str) and Path(cached).is_file())


def get_model(key: str, weights_file: str | None = None, allow_download: bool = True,
              card: Card | None = None, device: torch.device | None = None) -> LoadedModel:
    """A cached ``load_model``: at most EXPLORER_MAX_MODELS (default 2) models stay loaded.

    The key is what a load would read: the files on disk (so a file put into ``checkpoints/``
    replaces a fallback at once), the card given with a file, and the download switch only
    where it matters."""
    download = allow_download if _download_matters(get_entry(key), weights_file) else "either"
    marker = _files_marker(key) + ((_file_id(Path(weights_file)),) if weights_file and Path(weights_file).is_file() else ())
    device = app_device() if device is None else device
    return _MODELS.get_or_create(
        (key, str(weights_file or ""), download, marker, card, str(device)),
        lambda: load_model(key, weights_file=weights_file, allow_download=allow_download,
                           checkpoint_dir=CHECKPOINT_DIR, card=card, device=device),
    )
