"""Where a model's weights come from, in order: a file in ``checkpoints/`` -> the Hugging
Face cache/hub (honours ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE``) -> the bundled demo model
of the family -> random init. Whatever happens, the result carries a banner that says what
is shown and, when weights are missing, exactly which file to put where.

Checkpoints are read with safetensors or ``torch.load(weights_only=True)``: loading never
executes pickled code.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

import explorer.models  # noqa: F401  (registers CrossFormer with timm)
from explorer.core.cache import LRUCache
from explorer.core.capture import install_hooks
from explorer.core.errors import UserFacingError
from explorer.core.text import pick
from explorer.core.zoo import CHECKPOINT_DIR, ModelEntry, get_entry, stand_in_for

log = logging.getLogger("explorer.weights")

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
HUB_FILENAME = "model.safetensors"
# Official training scripts (Swin, CrossFormer) save their yacs config next to the weights.
# Read it as a plain OrderedDict: no class of that package is imported or run.
_CONFIG_CLASSES = [(collections.OrderedDict, "yacs.config.CfgNode")]
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
    for container in ("model", "state_dict", "module"):
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


def fitted_state(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """``state`` through the architecture's own timm checkpoint filter (which converts official
    layouts and resamples position embeddings), checked key by key and shape by shape against
    ``model``; any mismatch raises ``WeightsError`` naming it. Works on meta-device models."""
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

def build_model(entry: ModelEntry) -> nn.Module:
    """The architecture with deterministic random weights (seed 0), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = timm.create_model(entry.timm_model, pretrained=False, **entry.model_kwargs)
    return model.eval()


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


def _class_names(entry: ModelEntry, model: nn.Module) -> tuple[str, ...] | None:
    if entry.class_names is not None:
        return entry.class_names
    if getattr(model, "num_classes", 0) == 1000:
        info = timm.data.ImageNetInfo()
        return tuple(info.index_to_description(i) for i in range(1000))
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


def download_instructions(entry: ModelEntry, checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[str, str]:
    """Exactly which file to fetch and where to put it (English, Chinese)."""
    from huggingface_hub import constants, hf_hub_url

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
        with torch.device("meta"):
            model = build_model(entry)
        fitted_state(model, read_state_dict(path, lazy=True), path.name)
    except WeightsError as err:
        return err
    return None


def _demo_banner(entry: ModelEntry) -> Banner:
    classes = len(entry.class_names or ())
    how_en, how_zh = (f"{classes} classes", f"{classes} 类") if classes else (
        "self-supervised, no labels", "自监督，不用标签")
    return Banner("info", f"{entry.label_en}: trained offline on the project's synthetic "
                  f"shapes ({how_en}), not on ImageNet.",
                  f"{entry.label_zh}：在本项目的合成形状数据上离线训练（{how_zh}），不是 ImageNet 模型。")


def _failed(path: Path, err: WeightsError) -> tuple[str, str]:
    """The error, and which copy it was, without the server's absolute folders (a public page)."""
    from huggingface_hub import constants

    if path.resolve().is_relative_to(Path(constants.HF_HUB_CACHE).resolve()):
        where_en, where_zh = "In the Hugging Face cache", "Hugging Face 缓存中的文件"
    else:
        where_en, where_zh = f"In {path.parent.name}/", f"{path.parent.name}/ 中的文件"
    return f"{where_en}: {err.message_en}", f"{where_zh}：{err.message_zh}"


def load_model(entry: ModelEntry | str, weights_file: str | os.PathLike | None = None,
               allow_download: bool = True, checkpoint_dir: Path = CHECKPOINT_DIR) -> LoadedModel:
    """Build ``entry`` and give it the best weights available (see the module docstring).

    A source that fails (a broken or foreign file) is skipped like a missing one, and the
    banner names the file and why; an explicit ``weights_file`` must load (no fallback: the
    user asked for that file).
    """
    entry = get_entry(entry) if isinstance(entry, str) else entry

    def finish(shown: ModelEntry, mdl: nn.Module, source: str, weights_id: str,
               banner: Banner | None = None, path: Path | None = None) -> LoadedModel:
        install_hooks(mdl)
        return LoadedModel(entry=entry, shown=shown, model=mdl, source=source,
                           weights_id=weights_id, data_config=_data_config(shown, mdl),
                           class_names=_class_names(shown, mdl), banner=banner, weights_path=path)

    def from_file(target: ModelEntry, path: Path, name: str) -> nn.Module:
        model = build_model(target)  # built only when there are weights for it (MAE-H is 2.5 GB)
        load_into(model, read_state_dict(path), name)
        return model

    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsError(f"Weights file {path} is missing.", f"权重文件 {path} 不存在。")
        return finish(entry, from_file(entry, path, path.name), "file", _file_id(path),
                      _demo_banner(entry) if entry.is_demo else None, path)

    failures: list[tuple[str, str]] = []  # (en, zh): each source that was there but failed
    path = local_weight_file(entry, checkpoint_dir)
    if path is not None and path.is_file():
        try:
            model = from_file(entry, path, path.name)
        except WeightsError as err:
            failures.append(_failed(path, err))
        else:
            banner = _demo_banner(entry) if entry.is_demo else None
            return finish(entry, model, "bundled" if entry.is_demo else "file", _file_id(path), banner, path)

    reason = None
    if entry.hf_hub_id is not None:
        try:
            path, downloaded = hub_file(entry, allow_download)
        except Exception as err:
            reason = type(err).__name__
        else:
            try:
                model = from_file(entry, path, f"{entry.hf_hub_id}/{HUB_FILENAME}")
            except WeightsError as err:
                failures.append(_failed(path, err))
            else:
                source = "hub-download" if downloaded else "hub-cache"
                return finish(entry, model, source, _file_id(path), _failures_banner(failures), path)

    demo = stand_in_for(entry)
    demo_path = local_weight_file(demo, checkpoint_dir) if demo is not None else None
    if demo_path is not None and demo_path.is_file():
        try:
            shown = from_file(demo, demo_path, demo_path.name)
        except WeightsError as err:
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


def get_model(key: str, weights_file: str | None = None, allow_download: bool = True) -> LoadedModel:
    """A cached ``load_model``: at most EXPLORER_MAX_MODELS (default 2) models stay loaded.

    The key is what a load would read: the files on disk (so a file put into ``checkpoints/``
    replaces a fallback at once) and the download switch only where it matters."""
    download = allow_download if _download_matters(get_entry(key), weights_file) else "either"
    return _MODELS.get_or_create(
        (key, str(weights_file or ""), download, _files_marker(key)),
        lambda: load_model(key, weights_file=weights_file, allow_download=allow_download,
                           checkpoint_dir=CHECKPOINT_DIR),
    )
