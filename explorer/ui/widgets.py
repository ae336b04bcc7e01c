"""Pieces of the page every lens tab shares: the language switch, the image input, the
model picker and the way errors reach the user."""

from __future__ import annotations

import functools
import inspect
import io
import logging
import os
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr
from PIL import Image

from explorer.core.devices import describe
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.text import numbered, pick
from explorer.core.weights import LoadedModel
from explorer.core.zoo import REPO_ROOT, ModelEntry
from explorer.ui.i18n import LANGUAGES, STRINGS, t
from explorer.ui.uploads import open_uploaded_image

log = logging.getLogger("explorer.ui")

# synthetic shapes first: the bundled demo models (the offline defaults) were trained on them
EXAMPLE_DIRS = (REPO_ROOT / "assets" / "synthetic", REPO_ROOT / "assets" / "examples")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class Translations:
    """Components whose text depends on the language, and how to update each."""

    def __init__(self) -> None:
        self._items: list[tuple[gr.components.Component, Callable[[str], dict]]] = []
        # each lens's model picker and the zoo models it lists: their choices also hold the
        # session's uploaded checkpoint, which the page adds (ui/own_model.py)
        self.pickers: dict[gr.Dropdown, tuple[ModelEntry, ...]] = {}
        self.second_pickers: set[gr.Dropdown] = set()  # of those, the ones for a second model ("none" first)

    def add(self, component, key: str | None = None, attr: str = "label",
            update: Callable[[str], dict] | None = None):
        self._items.append((component, update or (lambda lang: {attr: t(key, lang)})))
        return component

    @property
    def components(self) -> list:
        return [c for c, _ in self._items]

    def updates(self, lang: str) -> list:
        return [gr.update(**make(lang)) for _, make in self._items]


@dataclass
class TabHooks:
    """A tab's hooks into the page: how to analyse a new image and how to redraw in another
    language. ``inputs[0]`` is the shared image."""

    tab_id: str
    tab: gr.Tab
    analyse: Callable
    relabel: Callable
    inputs: list
    outputs: list
    relabel_outputs: list


@dataclass
class PageContext:
    """What tabs share: the current image, the language, the active tab, and the lenses."""

    image: gr.State
    lang: gr.Radio
    translations: Translations
    active_tab: gr.State
    lenses: list[TabHooks] = field(default_factory=list)  # each tab's hooks, in page order


def with_progress(fn: Callable) -> Callable:
    """Give ``fn(*values, progress=...)`` a Gradio progress tracker (tqdm bars of hub
    downloads show on the page). Gradio injects it only into a parameter before *values."""
    def run(progress=gr.Progress(track_tqdm=True), *values):
        return fn(*values, progress=progress)

    return run


def user_errors(fn: Callable, both_languages: bool = False) -> Callable:
    """Turn the backend's errors into messages on the page, in the page's language.

    The language comes from a ``lang`` argument (by keyword or position) or from an argument
    with a ``lang`` field; with ``both_languages`` (API endpoints, which have no language) the
    message is the English one, then the Chinese one. Unexpected errors are logged with their
    traceback and reach the user as one short sentence that names no internals; the server
    keeps serving other users either way.
    """
    signature = inspect.signature(fn)

    def language(args, kwargs) -> str:
        try:
            bound = signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = kwargs
        lang = bound.get("lang") or next((a.lang for a in args if hasattr(a, "lang")), "en")
        return lang if lang in LANGUAGES else "en"

    def say(message: Callable[[str], str], args, kwargs) -> str:
        if both_languages:
            return f"{message('en')}\n{message('zh')}"
        return message(language(args, kwargs))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserFacingError as err:  # the user's to fix: a message, no traceback in the log
            log.info("%s: %s", fn.__name__, err.message_en[:300])
            raise gr.Error(say(err.message, args, kwargs), duration=None, print_exception=False) from err
        except Exception as err:
            log.error("unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            kind = type(err).__name__
            raise gr.Error(say(lambda lang: t("unexpected_error", lang, kind=kind), args, kwargs),
                           duration=None) from err

    return wrapper


def api_errors(fn: Callable) -> Callable:
    """``user_errors`` for a public API endpoint: every message in English and in Chinese."""
    return user_errors(fn, both_languages=True)


def picture_file(image: Image.Image) -> str:
    """``image`` as a PNG in Gradio's cache, at the path Gradio itself gives that content, written
    once (under a temporary name, then renamed) and reused. Handed a PIL image, Gradio rewrites
    that same file on every reply that repeats the picture (a redraw that keeps the token map),
    and a browser still fetching it gets it cut short ("Too little data for declared
    Content-Length" in the server log). Gradio's cache cleaning deletes these files too."""
    from gradio import processing_utils, utils

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    folder = Path(utils.get_upload_folder()) / processing_utils.hash_bytes(data)
    path = folder / "picture.png"
    if path.is_file():
        try:  # Gradio's cleaning ages files by ctime: a picture handed out again must not go now
            os.utime(path)
        except OSError:
            pass
        return str(path)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".picture.{os.getpid()}.{threading.get_ident()}.part"
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return str(path)


def example_paths() -> list[str]:
    return [str(p) for d in EXAMPLE_DIRS if d.is_dir()
            for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


def image_notes_markdown(image: LoadedImage | None, lang: str) -> str:
    if image is None:
        return ""
    w, h = image.source_size
    head = pick((f"**{image.source_format or 'image'}** {w}×{h}, mode {image.source_mode}",
                 f"**{image.source_format or '图像'}** {w}×{h}，模式 {image.source_mode}"), lang)
    return "\n".join([head, numbered(image.notes, lang, bullet="-")]) if image.notes else head


def read_upload(path: str | None, lang: str) -> tuple[LoadedImage | None, str]:
    """Validate an uploaded file; on a bad file say why on the page and keep the old image."""
    if not path:
        return None, ""
    image = open_uploaded_image(path)
    return image, image_notes_markdown(image, lang)


def banner_markdown(loaded: LoadedModel, lang: str) -> str:
    source = t(f"source_{loaded.source}", lang)
    colon = pick((":", "："), lang)  # Chinese text takes the full-width colon
    line = f"**{t('weights_source', lang)}{colon}** {source}"
    if loaded.weights_path is not None:
        line += f" · `{Path(loaded.weights_path).name}`"
    line += f" · **{t('device', lang)}{colon}** {describe(loaded.device)}"
    if loaded.banner is None:
        return line
    level = t("banner_warning" if loaded.banner.level == "warning" else "banner_note", lang)
    return f"{line}\n\n**{level}{colon}** {loaded.banner.text(lang)}"


def demo_note(loaded: LoadedModel, lang: str) -> str:
    """Said next to the predictions when a bundled demo classifier is shown: its labels are
    shapes, whatever the picture."""
    names = loaded.class_names or ()
    if not loaded.shown.is_demo or not names:
        return ""
    from explorer.ui.i18n import class_label

    sep = pick((", ", "、"), lang)
    return t("demo_note", lang, n=len(names), classes=sep.join(class_label(c, lang) for c in names))


def model_choices(entries: tuple[ModelEntry, ...], lang: str) -> list[tuple[str, str]]:
    return [(e.label(lang), e.key) for e in entries]



def compare_choices(entries: tuple[ModelEntry, ...], lang: str) -> list[tuple[str, str]]:
    return [(t("compare_none", lang), ""), *model_choices(entries, lang)]


def second_model_row(tr: Translations, entries: tuple[ModelEntry, ...], prefix: str) -> tuple[gr.Dropdown, gr.Markdown]:
    """A second model to stand beside the lens's first on the same image (none at first: nothing
    runs until one is picked; any model name may be typed, checked by the lens), with the line
    that says what of it is shown; its help is the lens's ``<prefix>_compare_info``. Returns
    (picker, line)."""
    with gr.Row(equal_height=False):
        picker = tr.add(gr.Dropdown(compare_choices(entries, "en"), value="", label=t("compare", "en"),
                                    info=t(f"{prefix}_compare_info", "en"), allow_custom_value=True, filterable=True,
                                    elem_id=f"{prefix}-compare", scale=2),
                        update=lambda lang: dict(label=t("compare", lang), info=t(f"{prefix}_compare_info", lang),
                                                 choices=compare_choices(entries, lang)))
        line = gr.Markdown(elem_id=f"{prefix}-compare-line")
    tr.pickers[picker] = entries  # the session's uploaded checkpoint is listed too (before vs after fine-tuning)
    tr.second_pickers.add(picker)
    return picker, line


def geometry_choices(lang: str, geometries: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(t(f"geometry_{g}", lang), g) for g in geometries]


def model_controls(tr: Translations, entries: tuple[ModelEntry, ...], default: str, prefix: str,
                   geometries: tuple[str, ...] = ("model", "native")):
    """The row every lens starts with: model picker, input geometry, hub downloads; and the
    banner under it that says which weights are shown, with the button that opens the lens's
    student guide (``<prefix>_guide`` in its text) under it. Returns (model, geometry, allow, banner)."""
    with gr.Row():
        # the lens's zoo models to pick from, and any timm model name typed in (checked by the lens)
        model = tr.add(gr.Dropdown(model_choices(entries, "en"), value=default, label=t("model", "en"),
                                   info=t("model_info", "en"), allow_custom_value=True, filterable=True,
                                   scale=3, elem_id=f"{prefix}-model"),
                       update=lambda lang: dict(label=t("model", lang), info=t("model_info", lang),
                                                choices=model_choices(entries, lang)))
        tr.pickers[model] = entries
        geometry = tr.add(gr.Radio(geometry_choices("en", geometries), value=geometries[0],
                                   label=t("geometry", "en"), scale=2, elem_id=f"{prefix}-geometry",
                                   visible=len(geometries) > 1),
                          update=lambda lang: dict(label=t("geometry", lang),
                                                   choices=geometry_choices(lang, geometries)))
        allow = tr.add(gr.Checkbox(value=os.environ.get("HF_HUB_OFFLINE", "0") in ("0", ""),
                                   label=t("allow_download", "en"), scale=1), "allow_download")
    key = f"{prefix}_guide"
    with gr.Row(equal_height=False, elem_classes="banner-row"):
        banner = gr.Markdown(elem_id=f"{prefix}-banner")
        # the lens's three sentences for a student, behind a button on the banner's line (the
        # first figure stays on a 1280×720 screen until a student asks)
        button = tr.add(gr.Button(t("guide_button", "en"), size="sm", scale=0, min_width=120,
                                  elem_id=f"{prefix}-guide-button", elem_classes="guide-button"),
                        "guide_button", "value") if key in STRINGS else None
    if button is not None:
        tr.add(gr.Markdown(t(key, "en"), elem_id=f"{prefix}-guide", elem_classes="student-guide"), key, "value")
        # shown and hidden in the browser alone (no server round trip, nothing to queue)
        button.click(None, None, None, js=f"() => {{ document.getElementById('{prefix}-guide').classList.toggle('open'); }}")
    return model, geometry, allow, banner


def picker_column(tr: Translations, prefix: str, picker_key: str):
    """The left column of a lens with a clickable image: the picker, the query line, the
    top-5 with the demo-model note under it, and the preprocessing steps. Returns (picker, query,
    predictions, note, steps)."""
    picker = tr.add(gr.Image(label=t(picker_key, "en"), interactive=False, type="pil",
                             elem_id=f"{prefix}-picker", buttons=[]), picker_key)
    query = gr.Markdown(elem_id=f"{prefix}-query")
    predictions = tr.add(gr.Label(label=t("predictions", "en"), num_top_classes=5,
                                  elem_id=f"{prefix}-predictions"), "predictions")
    note = gr.Markdown(elem_id=f"{prefix}-demo-note")
    steps = gr.Markdown()
    return picker, query, predictions, note, steps


HEAD_MEAN = -1  # head dropdown value meaning "mean of heads"


def head_choices(heads: int, lang: str) -> list[tuple[str, int]]:
    """The head dropdown: the mean of heads first, then each head."""
    return [(t("head_mean", lang), HEAD_MEAN)] + [(t("head_n", lang, n=h), h) for h in range(heads)]


def by_component(parts: dict, step: Callable) -> Callable:
    """``step`` (already wrapped in ``user_errors``) returns its outputs by name; Gradio wants
    them by component, and updates only the components named (no counted ``gr.skip()``s)."""
    def run(*args, **kwargs):
        return {parts[name]: value for name, value in step(*args, **kwargs).items()}

    return functools.wraps(step)(run)
