"""Links that reopen a view, and presenter mode.

A view's state — tab, language, image (an example by number, or an upload by digest while this
server still holds it), model and the tab's controls (layer, head, query, thresholds, mask ratio,
seed…) — is written into the page URL's query string, and read back when a page opens with one.
Every value in a link is checked against its control (range, choices, size) before anything
runs: a link is user input. A link never turns hub downloads on. Presenter mode is a class on the
page's root (CSS enlarges text and figure labels and drops the image column), switched in the
browser alone.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import gradio as gr

from explorer.core.cache import LRUCache
from explorer.core.images import LoadedImage
from explorer.ui.i18n import LANGUAGES, t
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import PageContext, Translations

# uploads a link may name, by digest: the last few, bounded in count and in pixels' memory
LINKED_UPLOADS: LRUCache[LoadedImage] = LRUCache(max_items=16, max_bytes=256 * 2**20,
                                                 sizeof=lambda image: image.nbytes)
MAX_VALUE_CHARS = 2000  # a control's value in a link (MAE's painted patches are the longest)
# a zoo key, a timm or hub name, a checkpoint token: never a path (no "..", no leading "/")
MODEL_NAME = re.compile(r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.\-/:]{0,119}$")
DIGEST = re.compile(r"^[0-9a-f]{16,64}$")
PRESENTER_JS = """(on) => {
    document.documentElement.classList.toggle('presenter', !!on);
    setTimeout(() => window.dispatchEvent(new Event('resize')), 50);  // figures take the new width
}"""
# the page's address with the link's query, shown for copying and put in the address bar
LINK_JS = """(query) => {
    if (!query) return '';
    const link = location.origin + location.pathname + '?' + query;
    history.replaceState(null, '', '?' + query);
    return link;
}"""


@dataclass(frozen=True)
class Linkable:
    """One control a link can carry: its name in the URL, its tab and the component."""

    name: str
    tab_id: str
    component: object


def linkable_controls(ctx: PageContext) -> list[Linkable]:
    """Every lens's controls by URL name: components by their ``elem_id``, a tab's own state
    (the clicked query, MAE's painted patches) as ``<tab>-state<i>``. Controls without an
    ``elem_id`` stay out — the hub-download checkbox among them: a link must not make the server
    download anything."""
    found, seen = [], set()
    for hooks in ctx.lenses:
        states = 0
        for component in hooks.inputs:
            if component is ctx.image or component is ctx.lang or id(component) in seen:
                continue
            if isinstance(component, gr.State):
                name, states = f"{hooks.tab_id}-state{states}", states + 1
            elif isinstance(component, (gr.Slider, gr.Dropdown, gr.Radio, gr.Number, gr.Checkbox)) \
                    and component.elem_id:
                name = component.elem_id
            else:
                continue
            seen.add(id(component))
            found.append(Linkable(name, hooks.tab_id, component))
    return found


def _encode(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def link_query(tab_id: str, lang: str, image: LoadedImage | None, example_digests: dict[str, int],
               values: dict[str, object], presenter: bool = False) -> str:
    """The query string of this view: the tab, language, image and the tab's controls."""
    params = {"tab": tab_id, "lang": lang}
    if image is not None:
        if image.digest in example_digests:
            params["image"] = f"example-{example_digests[image.digest]}"
        else:
            LINKED_UPLOADS.put(image.digest, image)  # the link works while the server keeps it
            params["image"] = f"upload-{image.digest}"
    if presenter:
        params["presenter"] = "1"
    for name, value in values.items():
        encoded = _encode(value)
        if encoded is not None and len(encoded) <= MAX_VALUE_CHARS:
            params[name] = encoded
    return urlencode(params)


@functools.lru_cache(maxsize=4)
def example_digests(paths: tuple[str, ...]) -> dict[str, int]:
    """The example images' digests -> their place in the gallery (a link names them by number)."""
    return {open_uploaded_image(path).digest: i for i, path in enumerate(paths)}


class BadLink(ValueError):
    """A value in a link that its control cannot take."""


def _choice_values(component) -> list:
    return [c[1] if isinstance(c, (list, tuple)) else c for c in (component.choices or [])]


def _number(text: str, lower: float | None = None, upper: float | None = None) -> float:
    value = float(text)
    if not math.isfinite(value) or (lower is not None and value < lower) or (upper is not None and value > upper):
        raise BadLink(text)
    return value


def _plain_json(value, depth: int = 0) -> bool:
    """Numbers, strings, None and small lists/dicts of them: what the tabs' states hold."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth < 2 and isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if depth < 2 and isinstance(value, dict):
        return len(value) <= 16 and all(isinstance(k, str) and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def parse_value(component, text: str):
    """A link's text as the value ``component`` takes, or ``BadLink``."""
    if len(text) > MAX_VALUE_CHARS:
        raise BadLink("too long")
    try:
        if isinstance(component, gr.State):
            value = json.loads(text)
            if not isinstance(value, (dict, list)) or not _plain_json(value):
                raise BadLink(text)
            # a tab's analysis of a new image keeps a picked query only when a link brought it
            return {**value, "linked": True} if isinstance(value, dict) else value
        if isinstance(component, gr.Checkbox):
            if text not in ("0", "1"):
                raise BadLink(text)
            return text == "1"
        if isinstance(component, gr.Slider):
            # the upper end stays open: a deeper model's layer is above the default model's
            # maximum (the tab clamps to the model it shows)
            value = _number(text, component.minimum, 10_000)
            return int(value) if float(component.step or 1).is_integer() and value.is_integer() else value
        if isinstance(component, gr.Number):
            value = _number(text, component.minimum, component.maximum)
            return int(value) if component.precision == 0 else value
        if isinstance(component, (gr.Dropdown, gr.Radio)):
            choices = _choice_values(component)
            if choices and all(isinstance(c, int) for c in choices):  # heads: their count is the model's
                value = int(_number(text, -1, 1024))
                return value
            if text in [str(c) for c in choices]:
                return next(c for c in choices if str(c) == text)
            if getattr(component, "allow_custom_value", False) and MODEL_NAME.match(text):
                return text  # a model name: the tab checks it before anything loads
            raise BadLink(text)
    except (ValueError, TypeError) as err:
        raise BadLink(text) from err
    raise BadLink(text)


@dataclass
class Restored:
    """What a link asks for, checked."""

    tab_id: str | None
    lang: str | None
    image: LoadedImage | None
    example: int | None
    presenter: bool
    values: dict[str, object]  # URL name -> value
    rejected: list[str]  # URL names whose values were refused


def restore(params: dict[str, str], controls: list[Linkable], tab_ids: list[str], examples: int) -> Restored:
    """Read a link's query parameters; unknown names are ignored, bad values refused by name."""
    rejected = []
    tab_id = params.get("tab")
    if tab_id is not None and tab_id not in tab_ids:
        rejected.append("tab")
        tab_id = None
    lang = params.get("lang")
    if lang is not None and lang not in LANGUAGES:
        rejected.append("lang")
        lang = None
    image, example = None, None
    ref = params.get("image", "")
    if ref.startswith("example-") and ref[8:].isdigit() and int(ref[8:]) < examples:
        example = int(ref[8:])
    elif ref.startswith("upload-") and DIGEST.match(ref[7:]):
        image = LINKED_UPLOADS.get(ref[7:])
        if image is None:
            rejected.append("image")
    elif ref:
        rejected.append("image")
    values = {}
    for control in controls:
        if control.name in params and control.tab_id == tab_id:
            try:
                values[control.name] = parse_value(control.component, params[control.name])
            except BadLink:
                rejected.append(control.name)
    return Restored(tab_id, lang, image, example, params.get("presenter") == "1", values, rejected)


@dataclass
class SharePanel:
    presenter: gr.Checkbox
    link_button: gr.Button
    link: gr.Textbox


def build(tr: Translations) -> SharePanel:
    """The presenter switch and the link button, at the top of the image column."""
    presenter = tr.add(gr.Checkbox(value=False, label=t("presenter", "en"), elem_id="presenter",
                                   container=False), "presenter")
    link_button = tr.add(gr.Button(t("link_button", "en"), size="sm", elem_id="link-button"), "link_button", "value")
    link = tr.add(gr.Textbox(label=t("link", "en"), interactive=False, visible=False, elem_id="link",
                             buttons=["copy"], max_lines=3), "link")
    presenter.change(None, [presenter], None, js=PRESENTER_JS)
    return SharePanel(presenter, link_button, link)
