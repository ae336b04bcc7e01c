"""The page's "your own model" panel: a checkpoint uploaded for this session, with its labels or
card and a choice of preprocessing where no card gives one.

The checkpoint is opened as the architecture its card names, the one typed in, or the one its
keys fit (core/uploaded.py), checked against the same bounds as a typed model name before
anything loads; then it is loaded once (a file that does not fit says what differs) and appears
in the model picker of every lens that reads it, under its file name, in this session only.
The picker's value for it is the session's random token, the only way to reach the record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from explorer.core.arguments import ArgumentError
from explorer.core.images import ImageInputError
from explorer.core.checkpoints import PRESETS, Card, CardError, read_labels_or_card
from explorer.core.uploaded import MAX_CHECKPOINT_BYTES, UPLOADS, Found, Upload, find_architecture, new_token
from explorer.core.weights import WEIGHT_SUFFIXES, get_model
from explorer.core.zoo import TORCHVISION_VITS, ModelEntry, all_entries
from explorer.lenses.registry import LENSES, model_some_lens_reads, readers_of
from explorer.ui.i18n import t
from explorer.ui.uploads import discard_upload, uploaded_path
from explorer.ui.widgets import Translations, compare_choices, model_choices, user_errors

AUTO = "auto"
PRESET_CHOICES = ("default", *PRESETS)


def enabled() -> bool:
    return MAX_CHECKPOINT_BYTES > 0


@dataclass
class Panel:
    checkpoint: gr.File
    labels: gr.File
    architecture: gr.Dropdown
    preprocessing: gr.Radio
    status: gr.Markdown


def _architecture_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("own_arch_auto", lang), AUTO), *((f"torchvision {name}", name) for name in TORCHVISION_VITS),
            *((e.key, e.key) for e in all_entries() if not e.is_demo)]


def _preset_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"own_pre_{name}", lang), name) for name in PRESET_CHOICES]


def build(tr: Translations) -> Panel:
    """The panel's components, in a closed accordion under the image input."""
    limit = MAX_CHECKPOINT_BYTES // 2**20
    with tr.add(gr.Accordion(t("own_model", "en"), open=False, elem_id="own-model", visible=enabled()),
                "own_model"):
        tr.add(gr.Markdown(t("own_help", "en", mb=limit), elem_classes="caption"),
               update=lambda lang: dict(value=t("own_help", lang, mb=limit)))
        checkpoint = tr.add(gr.File(label=t("own_checkpoint", "en"), file_types=list(WEIGHT_SUFFIXES),
                                    type="filepath", elem_id="own-checkpoint", height=110), "own_checkpoint")
        labels = tr.add(gr.File(label=t("own_labels", "en"), file_types=[".txt", ".json"], type="filepath",
                                elem_id="own-labels", height=110), "own_labels")
        architecture = tr.add(gr.Dropdown(_architecture_choices("en"), value=AUTO, label=t("own_arch", "en"),
                                          allow_custom_value=True, filterable=True, elem_id="own-arch"),
                              update=lambda lang: dict(label=t("own_arch", lang), choices=_architecture_choices(lang)))
        preprocessing = tr.add(gr.Radio(_preset_choices("en"), value="default", label=t("own_pre", "en"),
                                        elem_id="own-pre"),
                               update=lambda lang: dict(label=t("own_pre", lang), choices=_preset_choices(lang)))
        status = gr.Markdown(elem_id="own-status")
    return Panel(checkpoint, labels, architecture, preprocessing, status)


def choice(uploaded: dict | None, lens_key: str, lang: str) -> list[tuple[str, str]]:
    """The picker choice of this session's checkpoint, for a lens that reads it."""
    if not uploaded or lens_key not in uploaded["lenses"]:
        return []
    return [(t("own_choice", lang, name=uploaded["name"]), uploaded["token"])]


def picker_choices(entries: tuple[ModelEntry, ...], uploaded: dict | None, lens_key: str, lang: str,
                   second: bool = False) -> list:
    """A picker's choices: the lens's models (led by "none" in a second model's picker) and this
    session's checkpoint where the lens reads it."""
    return (compare_choices if second else model_choices)(entries, lang) + choice(uploaded, lens_key, lang)


def _refuse(path: Path, en: str, zh: str) -> ArgumentError:
    discard_upload(path)  # nothing of it is kept
    return ArgumentError(en, zh)


def _uploaded(value, what: tuple[str, str]) -> Path:
    """The uploaded file's path; one that is gone (the folder's cleaning, an evicted record)
    or never came through the upload route is named for what it is."""
    try:
        return uploaded_path(value, examples=False)
    except ImageInputError:
        raise ArgumentError(f"The {what[0]} is not among this server's uploads (they are kept for a while): "
                            "upload it again.", f"{what[1]}不在本服务器的上传文件中（上传的文件只保留一段时间）：请重新上传。") from None


def _checkpoint_path(value) -> Path:
    path = _uploaded(value, ("checkpoint", "检查点"))
    if not enabled():
        raise _refuse(path, "This server does not open uploaded checkpoints (EXPLORER_MAX_CHECKPOINT_MB=0).",
                      "本服务器不打开上传的检查点（EXPLORER_MAX_CHECKPOINT_MB=0）。")
    size, limit = path.stat().st_size, MAX_CHECKPOINT_BYTES // 2**20
    if size > MAX_CHECKPOINT_BYTES:
        raise _refuse(path, f"{path.name} is {size / 2**20:,.0f} MB; this server opens checkpoints up to {limit} MB "
                      "(EXPLORER_MAX_CHECKPOINT_MB).",
                      f"{path.name} 有 {size / 2**20:,.0f} MB；本服务器只打开不超过 {limit} MB 的检查点"
                      "（EXPLORER_MAX_CHECKPOINT_MB）。")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise _refuse(path, f"{path.name} is not a checkpoint: upload a {', '.join(WEIGHT_SUFFIXES)} file.",
                      f"{path.name} 不是检查点：请上传 {'、'.join(WEIGHT_SUFFIXES)} 文件。")
    return path


def _architecture(path: Path, typed: str | None, card_arch: str | None, card_name: str) -> Found:
    """The architecture to open the file as, checked like a typed model name (known, read by a
    lens, within the size bound) before anything is built for real."""
    if typed and typed != AUTO:
        return Found(model_some_lens_reads(typed.strip()), "as given", "按指定的结构")
    if card_arch:
        return Found(model_some_lens_reads(card_arch), f"named by {card_name}", f"由 {card_name} 指定")
    readable = [e for e in all_entries() if readers_of(e)]
    return find_architecture(path, path.name, readable)


def _with_preset(card: Card | None, preset: Card | None) -> Card | None:
    """The card with the preset's normalisation over it (either may be missing)."""
    return card.merged(preset) if card is not None and preset is not None else card or preset


@user_errors
def open_checkpoint(checkpoint, labels, architecture, preset, uploaded, session: str, lang: str):
    """Open the session's checkpoint (after an upload or a change of labels, architecture or
    preprocessing): returns the session's record for the page, and the status text."""
    if checkpoint is None:
        return uploaded, gr.skip()  # cleared: what was opened stays open
    path = _checkpoint_path(checkpoint)
    given, card_arch, card_name = None, None, ""
    if labels is not None:
        labels_path = _uploaded(labels, ("labels or card file", "类别名或卡片文件"))
        given, card_arch = read_labels_or_card(labels_path)
        card_name = labels_path.name
    preset_card = PRESETS.get(preset)
    card = _with_preset(given, preset_card)
    found = _architecture(path, architecture, card_arch, card_name)
    entry = found.entry
    unused = ("", "")
    try:
        loaded = get_model(entry.key, weights_file=str(path), allow_download=False, card=card)
    except CardError as err:
        if given is None or given.class_names is None:
            raise
        # names for another number of classes (a previous checkpoint's labels, say): opened
        # without them, and the status says why
        unused = (f"⚠ {err.message_en} They are not used.", f"⚠ {err.message_zh}未使用这些类别名。")
        card = _with_preset(dataclasses.replace(given, class_names=None, names_source=""), preset_card)
        loaded = get_model(entry.key, weights_file=str(path), allow_download=False, card=card)
    token = uploaded["token"] if uploaded else new_token()
    UPLOADS.put(token, Upload(session=session, file_name=path.name, path=path, size=path.stat().st_size,
                              found=found, card=card))
    lenses = [lens.key for lens in readers_of(entry)]
    record = {"token": token, "name": path.name, "lenses": lenses, "architecture": loaded.shown.key,
              "revision": (uploaded or {}).get("revision", 0) + 1, "how": (found.how_en, found.how_zh),
              "banner": (loaded.banner.en, loaded.banner.zh) if loaded.banner is not None else ("", ""),
              "unused": unused}
    return record, status_markdown(record, lang)


def status_markdown(record: dict | None, lang: str) -> str:
    if not record:
        return ""
    zh = lang == "zh"
    tabs = ("、" if zh else ", ").join(lens.title(lang) for lens in LENSES if lens.key in record["lenses"])
    how = record["how"][1 if zh else 0]
    head = t("own_opened", lang, name=record["name"], architecture=record["architecture"], how=how, tabs=tabs)
    parts = [head, record["banner"][1 if zh else 0], record.get("unused", ("", ""))[1 if zh else 0]]
    return "\n\n".join(part for part in parts if part)
