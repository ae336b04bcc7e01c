"""The one list of lenses. The page builds a tab for each, the CLI an ``export`` subcommand and
the server a named API endpoint; which zoo models a lens lists is asked of the lens itself, on a
weightless skeleton of each model (the meta device: no memory, no weights read)."""

from __future__ import annotations

import contextlib
import functools
import os

from explorer.core.arguments import ArgumentError, excerpt
from explorer.core.checkpoints import Card
from explorer.core.results import cached_analysis
from explorer.core.weights import skeleton
from explorer.core.uploaded import UPLOADS, is_token
from explorer.core.zoo import ModelEntry, all_entries, get_entry
from explorer.lenses import attention, bias, crossformer, dino, explain, mae, navit, swin, twins
from explorer.lenses.contract import Lens

LENSES: tuple[Lens, ...] = (attention.LENS, explain.LENS, swin.LENS, bias.LENS, crossformer.LENS, twins.LENS,
                            navit.LENS, dino.LENS, mae.LENS)


def get_lens(key: str) -> Lens:
    for lens in LENSES:
        if lens.key == key:
            return lens
    raise KeyError(f"unknown lens {excerpt(key)}; lenses: {', '.join(lens.key for lens in LENSES)}")


def lens_reads(lens: Lens, entry: ModelEntry) -> bool:
    return lens.reads(skeleton(entry.key))


def entries_for_lens(key: str) -> tuple[ModelEntry, ...]:
    """The zoo models ``key`` can read, in zoo order (bundled demos first)."""
    lens = get_lens(key)
    return tuple(entry for entry in all_entries() if lens_reads(lens, entry))


def readers_of(entry: ModelEntry) -> list[Lens]:
    return [lens for lens in LENSES if lens_reads(lens, entry)]


# A timm name outside the zoo is opened only up to this size (parameters, counted on its weightless
# skeleton): a public page must not be made to download and build a 3-billion-parameter model.
# The zoo's models are the operator's choice and are not limited.
MAX_PARAMETERS = int(float(os.environ.get("EXPLORER_MAX_PARAMETERS", "350e6")))


def in_zoo(entry: ModelEntry) -> bool:
    return any(e.key == entry.key for e in all_entries())


@functools.lru_cache(maxsize=128)
def parameter_count(key: str) -> int:
    return sum(p.numel() for p in skeleton(key).parameters())


def model_for_lens(key: str, model: object) -> ModelEntry:
    """The registry entry for ``model`` if lens ``key`` can read it; otherwise one clear message
    (the model is unknown, too large, or which lenses can read it). Nothing is loaded."""
    lens = get_lens(key)
    entry = _readable_entry(model, lens)
    if not lens_reads(lens, entry):
        kind = type(skeleton(entry.key)).__name__
        en = ", ".join(o.title("en") for o in readers_of(entry))
        zh = "、".join(o.title("zh") for o in readers_of(entry))
        raise ArgumentError(
            f"The {lens.title('en')} lens cannot read {entry.key} (a {kind}); open it in: {en}.",
            f"{lens.title('zh')} 视图无法读取 {entry.key}（{kind}）；请在以下视图中打开：{zh}。")
    return entry


def model_some_lens_reads(model: object) -> ModelEntry:
    """``model_for_lens`` for commands tied to no lens (``fetch``): some lens must read it."""
    return _readable_entry(model, None)


def _readable_entry(model: object, lens: Lens | None) -> ModelEntry:
    """The entry for ``model`` if it is known, within the size bound and read by some lens."""
    try:
        entry = get_entry(model) if isinstance(model, str) else None
    except KeyError:
        entry = None
    if entry is None:
        if lens is None:
            raise ArgumentError(f"Unknown model {excerpt(model)} (`python -m explorer models --all` lists them).",
                                f"未知的模型 {excerpt(model)}（`python -m explorer models --all` 会列出它们）。")
        known = [e.key for e in entries_for_lens(lens.key)]
        raise ArgumentError(
            f"Unknown model {excerpt(model)}. The {lens.title('en')} lens reads: {', '.join(known)} "
            "(`python -m explorer models` lists every model).",
            f"未知的模型 {excerpt(model)}。{lens.title('zh')} 视图可以读取：{'、'.join(known)}"
            "（`python -m explorer models` 会列出所有模型）。")
    if not in_zoo(entry) and parameter_count(entry.key) > MAX_PARAMETERS:
        size, limit = parameter_count(entry.key) / 1e6, MAX_PARAMETERS / 1e6
        raise ArgumentError(
            f"{entry.key} has {size:,.0f} M parameters; this server opens models outside its list up to "
            f"{limit:,.0f} M (EXPLORER_MAX_PARAMETERS).",
            f"{entry.key} 有 {size:,.0f} M 个参数；本服务器只打开列表之外不超过 {limit:,.0f} M 参数的模型"
            "（EXPLORER_MAX_PARAMETERS）。")
    if not readers_of(entry):
        kind = type(skeleton(entry.key)).__name__
        raise ArgumentError(
            f"No lens reads {entry.key} (a {kind}): they read ViT/DeiT/DINO, Swin and SwinV2, Twins, "
            "CrossFormer, NaViT and MAE models.",
            f"没有视图能读取 {entry.key}（{kind}）：各视图读取 ViT/DeiT/DINO、Swin 和 SwinV2、Twins、"
            "CrossFormer、NaViT 和 MAE 模型。")
    return entry


def _downloads(entry: ModelEntry, allow_download: bool) -> bool:
    """The page's download switch is the browser's: a timm name outside the zoo downloads only
    where the operator allows it (EXPLORER_DOWNLOAD_ANY_MODEL=1; the command line asks itself)."""
    return allow_download and (in_zoo(entry) or os.environ.get("EXPLORER_DOWNLOAD_ANY_MODEL", "0") == "1")


def lens_source(key: str, model_key: str) -> tuple[ModelEntry, str | None, Card | None]:
    """What lens ``key`` opens for ``model_key``: the entry, and the file and card it comes with.
    ``model_key`` is a zoo key or any timm name, or the token of a checkpoint a session uploaded
    (core/uploaded.py), which lasts as long as its upload does."""
    if not is_token(model_key):
        return model_for_lens(key, model_key), None, None
    upload = UPLOADS.get(model_key)
    if upload is None or not upload.path.is_file():
        raise ArgumentError("The uploaded checkpoint is no longer on this server (uploads are kept for a while "
                            "and for one session): upload it again.",
                            "上传的检查点已不在本服务器上（上传的文件只保留一段时间，且只属于一个会话）：请重新上传。")
    with contextlib.suppress(OSError):  # in use: the upload folder's cleaning ages files by ctime, which
        stat = upload.path.stat()      # setting the same times renews; the mtime (the weights' identity) stays
        os.utime(upload.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return model_for_lens(key, upload.found.entry.key), str(upload.path), upload.card


def lens_analysis(key: str, image, model_key: str, geometry: str, allow_download: bool, compute,
                  part: str | None = None):
    """``cached_analysis`` for a model lens ``key`` reads (``lens_source``), checked (with one
    clear message) before anything loads; ``part`` names a second result of the lens, cached
    beside its main one (e.g. the attention lens's block inputs for stepping through a head)."""
    entry, weights_file, card = lens_source(key, model_key)
    return cached_analysis(key if part is None else f"{key}:{part}", image, entry.key, geometry,
                           _downloads(entry, allow_download), compute, weights_file=weights_file, card=card)


def lens_model(key: str, model_key: str, allow_download: bool):
    """The loaded model (``get_model``) for a lens that runs it itself, checked first."""
    from explorer.core.weights import get_model

    entry, weights_file, card = lens_source(key, model_key)
    return get_model(entry.key, weights_file=weights_file, allow_download=_downloads(entry, allow_download),
                     card=card)
