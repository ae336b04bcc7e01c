"""The suggested lesson: a short path through the tabs (ViT → Swin → position bias →
CrossFormer → MAE → DINO), one step per lens with what to look at and a button that opens it.
A tab of its own at the end of the bar, so it adds nothing above the first figure."""

from __future__ import annotations

import gradio as gr

from explorer.ui.i18n import t
from explorer.ui.widgets import PageContext

# (the lens's tab id, the step's text); the order is the lesson's
STEPS: tuple[tuple[str, str], ...] = (
    ("attention", "lesson_vit"),
    ("swin", "lesson_swin"),
    ("bias", "lesson_bias"),
    ("crossformer", "lesson_crossformer"),
    ("mae", "lesson_mae"),
    ("dino", "lesson_dino"),
)

# A step's button clicks the lens's own tab button, as a person would: the tab's select event
# (which runs its model on the current image) fires exactly as on a click.
OPEN_TAB_JS = """() => {{
    const button = [...document.querySelectorAll('button[role=tab]')][{index}];
    if (button) {{ button.click(); window.scrollTo({{top: 0, behavior: 'smooth'}}); }}
}}"""


def build(ctx: PageContext) -> None:
    """The lesson tab, after the lenses' tabs (whose positions its buttons use)."""
    tr = ctx.translations
    order = [hooks.tab_id for hooks in ctx.lenses]
    with gr.Tab(t("tab_lesson", "en"), id="lesson") as tab:
        tr.add(tab, "tab_lesson")
        tr.add(gr.Markdown(t("lesson_intro", "en"), elem_id="lesson-intro"), "lesson_intro", "value")
        for tab_id, key in STEPS:
            if tab_id not in order:  # a lens with no model to show has no tab
                continue
            with gr.Row(equal_height=True, elem_classes="lesson-step"):
                tr.add(gr.Markdown(t(key, "en"), elem_id=f"lesson-{tab_id}"), key, "value")
                button = tr.add(gr.Button(t("lesson_open", "en"), size="sm", scale=0, min_width=110,
                                          elem_id=f"lesson-open-{tab_id}"), "lesson_open", "value")
            button.click(None, None, None, js=OPEN_TAB_JS.format(index=order.index(tab_id)))
