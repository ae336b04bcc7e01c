"""The page: header with the language switch, the shared image input, one tab per lens."""

from __future__ import annotations

import importlib.util
import logging
import os

import gradio as gr
from starlette.middleware import Middleware

from explorer.core.errors import UserFacingError
from explorer.core.images import MAX_FILE_BYTES
from explorer.core.memory import map_large_allocations
from explorer.core.text import is_chinese
from explorer.core.uploaded import MAX_CHECKPOINT_BYTES, UPLOADS
from explorer.core.zoo import REPO_ROOT
from explorer.lenses.registry import LENSES
from explorer.ui.i18n import LANGUAGES, t
from explorer.ui import lesson, own_model, share
from explorer.ui.limits import BodyLimit
from explorer.ui.uploads import discard_upload, not_uploaded, sweep_uploads
from explorer.ui.widgets import (PageContext, Translations, api_errors, example_paths, image_notes_markdown,
                                 read_upload, user_errors)

log = logging.getLogger("explorer.ui")

CSS_PATH = REPO_ROOT / "assets" / "style.css"
# Public-server bounds. An upload is an image: no more bytes than load_image reads. A session's
# image (a working copy of at most WORKING_SIDE px) expires SESSION_TTL_S after its
# upload (Gradio counts from the last write, not the last use: hence hours, not minutes), also for
# API clients that never close their session (a closed tab's go after an hour); uploads are deleted
# UPLOAD_TTL_S after they arrive (and at start-up, those an earlier run left behind).
MAX_UPLOAD_BYTES = MAX_FILE_BYTES
SESSION_TTL_S = int(os.environ.get("EXPLORER_SESSION_TTL", "14400"))
UPLOAD_TTL_S = int(os.environ.get("EXPLORER_UPLOAD_TTL", "3600"))
# Sessions kept at once (the oldest go first): with the working-copy bound, at most ~12.6 MB of
# image each, so ~3 GB in the worst case and far less with ordinary photos.
MAX_SESSIONS = int(os.environ.get("EXPLORER_MAX_SESSIONS", "240"))


def prepare_server() -> None:
    """Before serving: check EXPLORER_DEVICE (a device that is not there stops the start, with
    its one message, instead of failing every request), delete uploads older than UPLOAD_TTL_S
    that an earlier run left behind, and have large buffers (decoded uploads) returned to the OS
    as soon as they are freed."""
    from explorer.core.devices import app_device, describe

    try:
        logging.getLogger("explorer").info("models run on %s (EXPLORER_DEVICE)", describe(app_device()))
    except UserFacingError as err:
        raise SystemExit(err.args[0]) from None
    sweep_uploads(UPLOAD_TTL_S)
    map_large_allocations()


def _header(lang: str) -> str:
    return f"# {t('app_title', lang)}\n{t('app_subtitle', lang)}"


def browser_language(request: gr.Request | None) -> str:
    accept = (request.headers.get("accept-language", "") if request is not None else "").lower()
    return "zh" if is_chinese(accept) else "en"


@user_errors
def load_upload(path: str | None, *, lang: str = "en", example: bool = False):
    if example and path is None:  # a gallery index the page never offered
        raise not_uploaded()
    return read_upload(path, lang)


def shown_key(image, lang_value: str, uploaded: dict | None):
    """What a tab shows: the image, the language and the revision of the session's uploaded
    checkpoint (a new one, or other labels, may change what a tab would show)."""
    return (image.digest, lang_value, (uploaded or {}).get("revision", 0)) if image is not None else None


def only_when_active(tab_id: str, fn, shown: gr.State, n_outputs: int, track_progress: bool = True,
                     skip_if_current: bool = False, only_rerun: bool = False):
    """Run a lens's handler only when its tab is the visible one and there is an image.

    ``shown`` records what the tab now shows (``shown_key``): opening a tab that already shows
    it redraws nothing (``skip_if_current``), so a stale redraw can never land after a newer
    one. With ``only_rerun``, only when the uploaded checkpoint's record asks for it (its picker
    already showed it). Handlers return their outputs by component."""
    def gate(progress=gr.Progress(track_tqdm=True), active=None, shown_now=None, uploaded=None, lang_value=None,
             image=None, *values):
        current = shown_key(image, lang_value, uploaded)
        if (active != tab_id or image is None or (skip_if_current and shown_now == current)
                or (only_rerun and not (uploaded or {}).get("rerun"))):
            return tuple(gr.skip() for _ in range(n_outputs + 1))
        result = fn(image, *values, progress=progress) if track_progress else fn(image, *values)
        return {**result, shown: current}

    return gate


def _is_update(value) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"


def merged(old, new):
    """One component's update from the labels (``old``) and from its tab (``new``): a tab gives a
    value or an update of its own, a label update must not be lost to it."""
    if not _is_update(old):
        return new
    return {**old, **(new if _is_update(new) else {"value": new})}


class language_switch:
    """The language switch as one event: every label, help text and tab name, the image notes and
    the visible tab's texts and figures (redrawn from its cached analysis) change in one reply.
    The other tabs redraw when they are opened (what they show records the language)."""

    def __init__(self, ctx: PageContext, tr: Translations, image_info: gr.Markdown, shown: dict,
                 uploaded: gr.State, own_status: gr.Markdown, pickers: list):
        self.ctx, self.tr, self.image_info, self.shown = ctx, tr, image_info, shown
        self.own_status, self.pickers = own_status, pickers
        extra = []  # each lens's inputs besides the shared image, language and tab, once each
        for lens in ctx.lenses:
            extra += [c for c in lens.inputs if c not in (ctx.image, ctx.lang) and c not in extra]
        self.extra = extra
        self.inputs = [ctx.active_tab, ctx.image, uploaded, ctx.lang, *extra]
        outputs = [*tr.components, image_info, own_status]
        for lens in ctx.lenses:
            outputs += [c for c in lens.relabel_outputs if c not in outputs] + [shown[lens.tab_id]]
        self.outputs = outputs

    def run(self, active, image, uploaded, lang_value, *values):
        updates = dict(zip(self.tr.components, self.tr.updates(lang_value)))
        updates[self.image_info] = image_notes_markdown(image, lang_value)
        updates[self.own_status] = own_model.status_markdown(uploaded, lang_value)
        for lens_key, picker, entries in self.pickers:  # the session's checkpoint stays listed
            updates[picker]["choices"] = own_model.picker_choices(entries, uploaded, lens_key, lang_value,
                                                                  second=picker in self.tr.second_pickers)
        lens = next((lens for lens in self.ctx.lenses if lens.tab_id == active), None)
        if lens is not None and image is not None:
            given = dict(zip(self.extra, values))
            own = [image if c is self.ctx.image else lang_value if c is self.ctx.lang else given[c]
                   for c in lens.inputs]
            try:
                for component, value in lens.relabel(*own).items():
                    if isinstance(component, gr.Image) and not _is_update(value):  # a picture has no words
                        continue
                    updates[component] = merged(updates.get(component), value)
            except gr.Error as err:  # the labels still switch; the tab says what went wrong
                gr.Warning(str(err))
            else:
                updates[self.shown[lens.tab_id]] = shown_key(image, lang_value, uploaded)
        return updates


# Gradio's own texts (the footer, its settings, messages and progress) follow its frontend locale,
# which it takes from the browser (texts a component drew once, as the upload area's hint, stay).
# Its settings panel changes it through ``changeLocale``, exported by its core module; the switch
# calls the same function, found among the page's loaded scripts. A Gradio without it leaves its
# own texts as they were and the page's still switch.
GRADIO_LOCALE_JS = """async (lang) => {
    const core = performance.getEntriesByType('resource').map(e => e.name)
        .find(name => /\\/assets\\/core-[^/]*\\.js(\\?|$)/.test(name));
    const locale = lang === 'zh' ? 'zh-CN' : 'en';
    document.documentElement.lang = locale;  // for fonts and screen readers too
    try { if (core) (await import(core)).changeLocale?.(locale); } catch (err) {}
    return [];
}"""


def forget_session(request: gr.Request) -> None:
    """A closed page's uploaded checkpoint goes with it (its file too)."""
    if request is not None and request.session_hash:
        UPLOADS.drop_session(request.session_hash)


def own_checkpoint_events(panel: own_model.Panel, uploaded: gr.State, ctx: PageContext, pickers: list) -> list:
    """Wire the "your own model" panel: each change opens the checkpoint again and lists it in
    the pickers of the lenses that read it; the visible tab switches to it. Returns the events."""
    outputs = [uploaded, panel.status, *(picker for _, picker, _ in pickers)]

    def on_change(request: gr.Request, checkpoint, labels, architecture, preset, record, active, lang_value,
                  *values):
        new, status = own_model.open_checkpoint(checkpoint, labels, architecture, preset, record,
                                                session=request.session_hash or "", lang=lang_value)
        if new is record:  # nothing opened: nothing to run again either
            return {panel.status: status, uploaded: {**record, "rerun": False} if record else record}
        updates = {panel.status: status}
        new["rerun"] = False
        for (lens_key, picker, entries), value in zip(pickers, values):
            second = picker in ctx.translations.second_pickers
            update = dict(choices=own_model.picker_choices(entries, new, lens_key, lang_value, second=second))
            if second:  # a second model never switches to it; one that showed the session's last follows
                if value and value == (record or {}).get("token"):
                    update["value"] = new["token"] if lens_key in new["lenses"] else ""
            elif lens_key == active and lens_key in new["lenses"]:
                new["rerun"] = value == new["token"]  # no change event will run it
                if value != new["token"]:
                    update["value"] = new["token"]
            elif value == new["token"] and lens_key not in new["lenses"]:  # the new one is not for this lens
                update["value"] = entries[0].key
            updates[picker] = gr.update(**update)
        updates[uploaded] = new
        return updates

    inputs = [panel.checkpoint, panel.labels, panel.architecture, panel.preprocessing, uploaded, ctx.active_tab,
              ctx.lang, *(picker for _, picker, _ in pickers)]
    triggers = (panel.checkpoint.upload, panel.labels.upload, panel.labels.clear, panel.architecture.change,
                panel.preprocessing.input)
    # one checkpoint load at a time for the whole server (each can be hundreds of MB)
    return [trigger(on_change, inputs, outputs, api_visibility="private", concurrency_id="own-checkpoint",
                    concurrency_limit=1) for trigger in triggers]


def build_demo() -> gr.Blocks:
    """Build the whole page (nothing is loaded or run until a user asks)."""
    tr = Translations()
    examples = example_paths()
    UPLOADS.discard = discard_upload  # an evicted checkpoint's file goes, and nothing outside the uploads
    cleanup = (max(1, min(600, UPLOAD_TTL_S // 4)), UPLOAD_TTL_S)  # (every how often, older than) in s
    with gr.Blocks(title="ViT Explorer", analytics_enabled=False, delete_cache=cleanup) as demo:
        with gr.Row(equal_height=True):
            tr.add(gr.Markdown(_header("en"), elem_id="header"),
                            update=lambda lang: dict(value=_header(lang)))
            lang = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value="en",
                            label=t("language"), scale=0, min_width=300, elem_id="language")
        ctx = PageContext(image=gr.State(None, time_to_live=SESSION_TTL_S), lang=lang, translations=tr, active_tab=gr.State("attention"))
        with gr.Row():
            with gr.Column(scale=1, min_width=260, elem_id="image-column"):
                share_panel = share.build(tr)
                upload = tr.add(gr.File(label=t("image_input", "en"), file_types=["image"],
                                        type="filepath", elem_id="upload", height=140), "image_input")
                gallery = tr.add(gr.Gallery(examples, label=t("examples", "en"), columns=2,
                                            allow_preview=False, height=420, elem_id="examples",
                                            buttons=[]), "examples")
                image_info = gr.Markdown(elem_id="image-info")
                panel = own_model.build(tr)
            with gr.Column(scale=4):
                with gr.Tabs() as tabs:
                    for lens in LENSES:
                        lens.tab.build(ctx)
                    lesson.build(ctx)
        uploaded = gr.State(None, time_to_live=SESSION_TTL_S)  # the session's checkpoint (own_model.py)
        pickers = [(hooks.tab_id, picker, tr.pickers[picker]) for hooks in ctx.lenses
                   for picker in hooks.inputs if picker in tr.pickers]

        def on_upload(path, lang_value):
            return load_upload(path, lang=lang_value)

        def on_example(lang_value, evt: gr.SelectData):
            index = evt.index if isinstance(evt.index, int) and 0 <= evt.index < len(examples) else None
            return load_upload(None if index is None else examples[index], lang=lang_value, example=True)

        linkables = share.linkable_controls(ctx)
        tab_ids = [hooks.tab_id for hooks in ctx.lenses]

        def on_start(request: gr.Request):
            """The first image and the browser's language — or what the page's link asks for."""
            link = share.restore(dict(request.query_params), linkables, tab_ids, len(examples))
            lang_value = link.lang or browser_language(request)
            if link.rejected:
                gr.Warning(t("link_rejected", lang_value, names=", ".join(link.rejected)))
            image = link.image
            if image is None and examples:
                image = read_upload(examples[link.example or 0], lang_value)[0]
            updates = {lang: lang_value, ctx.image: image, image_info: image_notes_markdown(image, lang_value),
                       share_panel.presenter: link.presenter}
            if link.tab_id is not None:
                updates[ctx.active_tab] = link.tab_id
                updates[tabs] = gr.Tabs(selected=link.tab_id)
            for control in linkables:
                if control.name in link.values:
                    value = link.values[control.name]
                    component = control.component
                    if isinstance(component, gr.Slider) and value > component.maximum:
                        updates[component] = gr.update(value=value, maximum=value)
                    else:
                        updates[component] = value
            return updates

        def link_to_view(active, image, lang_value, presenter, *values):
            named = {c.name: v for c, v in zip(linkables, values) if c.tab_id == active}
            query = share.link_query(active, lang_value, image, share.example_digests(tuple(examples)), named,
                                     presenter)
            return gr.update(value=query, visible=True)

        share_panel.link_button.click(
            link_to_view, [ctx.active_tab, ctx.image, lang, share_panel.presenter, *(c.component for c in linkables)],
            share_panel.link, api_visibility="private", show_progress="hidden").then(
            None, share_panel.link, share_panel.link, js=share.LINK_JS, api_visibility="private")

        # a new upload is no longer the example that was picked: the gallery lets go of it (its
        # frontend ignores a null selected_index; -1 selects no thumbnail)
        upload.upload(lambda: gr.update(selected_index=-1), None, gallery, api_visibility="private",
                      queue=False)
        new_image = [upload.upload(on_upload, [upload, lang], [ctx.image, image_info], api_name="upload_image"),
                     gallery.select(on_example, [lang], [ctx.image, image_info], api_visibility="private"),
                     demo.load(on_start, None, [lang, ctx.image, image_info, share_panel.presenter, ctx.active_tab,
                                                tabs, *(c.component for c in linkables)], api_visibility="private")]
        # Only the visible lens runs its model; the others catch up when their tab is opened.
        shown = {lens.tab_id: gr.State(None) for lens in ctx.lenses}  # what each tab shows: shown_key
        opened = own_checkpoint_events(panel, uploaded, ctx, pickers)
        for lens in ctx.lenses:
            inputs = [ctx.active_tab, shown[lens.tab_id], uploaded, lang, *lens.inputs]
            analyse = only_when_active(lens.tab_id, lens.analyse, shown[lens.tab_id], len(lens.outputs))
            for event in new_image:
                event.success(analyse, inputs, [*lens.outputs, shown[lens.tab_id]], api_visibility="private")
            # a picker that already showed the checkpoint fires no change: run it again
            rerun = only_when_active(lens.tab_id, lens.analyse, shown[lens.tab_id], len(lens.outputs), only_rerun=True)
            for event in opened:
                event.success(rerun, inputs, [*lens.outputs, shown[lens.tab_id]], api_visibility="private")
            # Unqueued, so the active tab is recorded before any later event reads it.
            lens.tab.select(lambda tab_id=lens.tab_id: tab_id, None, ctx.active_tab,
                            api_visibility="private", queue=False).then(
                only_when_active(lens.tab_id, lens.analyse, shown[lens.tab_id], len(lens.outputs),
                                 skip_if_current=True),
                inputs, [*lens.outputs, shown[lens.tab_id]], api_visibility="private")
        switch = language_switch(ctx, tr, image_info, shown, uploaded, panel.status, pickers)
        # Gradio's own texts turn after the page's: its locale change redraws every component
        lang.change(switch.run, switch.inputs, switch.outputs, api_visibility="private", show_progress="hidden").then(
            None, [lang], None, js=GRADIO_LOCALE_JS, api_visibility="private", queue=False)
        for lens in LENSES:  # one named endpoint per lens, mirroring `python -m explorer export <key>`
            gr.api(api_errors(lens.tab.api), api_name=lens.key)
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=int(os.environ.get("EXPLORER_CONCURRENCY", "2")))
    return demo


def mcp_wanted() -> bool:
    """``EXPLORER_MCP=1`` serves the lens endpoints as MCP tools too, where the ``gradio[mcp]``
    extra is installed (their docstrings describe the tools)."""
    if os.environ.get("EXPLORER_MCP", "0").strip().lower() in ("", "0", "false", "no"):
        return False
    if importlib.util.find_spec("mcp") is None:
        log.warning("EXPLORER_MCP is set but the MCP extra is missing: pip install \"gradio[mcp]\"")
        return False
    return True


def launch_kwargs() -> dict:
    """Arguments for ``demo.launch``: theme and CSS belong to launch() in Gradio 6."""
    return dict(
        mcp_server=mcp_wanted(),
        theme=gr.themes.Default(text_size=gr.themes.sizes.text_lg),
        css_paths=[CSS_PATH] if CSS_PATH.is_file() else None,
        max_file_size=max(MAX_UPLOAD_BYTES, MAX_CHECKPOINT_BYTES),  # each kind checks its own bound
        state_session_capacity=MAX_SESSIONS,
        app_kwargs={"middleware": [Middleware(BodyLimit)]},
        allowed_paths=[str(REPO_ROOT / "assets")],
        show_error=True,
    )

