"""What a teacher sees at a 1280×720 projector, in headless Chromium: the language switch turns
the whole page (header, tab names, labels, help, figures) in one go, from several tabs and on
fresh pages; a Chinese browser opens fully in Chinese; a figure is on the first screen; no figure
title is wider than its figure. Screenshots go to artifacts/screenshots/teacher_*.png."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app_server import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 720}
FIRST_PLOT = 90_000  # ms: a fresh page, the plotly chunk and the first model run
# (tab name in English, in Chinese, its first figure)
TABS = {"attention": ("Attention", "注意力", "#att-query-plot"),
        "swin": ("Swin windows", "Swin 窗口", "#swin-windows-plot"),
        "crossformer": ("CrossFormer", "CrossFormer", "#cf-sda-groups-plot"),
        "twins": ("Twins", "Twins", "#tw-layout-plot"),
        "dino": ("DINO", "DINO", "#dn-heads-plot"),
        "mae": ("MAE", "MAE", "#mae-panels-plot")}

# Everything that must be Chinese after the switch: header, every tab name that is a word, the
# visible tab's model label and its first figure's title (CJK characters), in one check.
ALL_CHINESE = """([plot, label]) => {
    const cjk = /[\\u4e00-\\u9fff]/;
    const header = document.querySelector('#header');
    const tabs = [...document.querySelectorAll('button[role=tab]')].map(b => b.innerText.trim());
    const title = document.querySelector(plot + ' .js-plotly-plot .gtitle');
    const labels = [...document.querySelectorAll(label + ' [data-testid=block-info]')].map(e => e.innerText);
    return header && header.innerText.includes('可视化探索器') && tabs.includes('注意力')
        && tabs.includes('位置偏置') && !tabs.includes('Attention')
        && title && cjk.test(title.textContent) && labels.length > 0 && labels.every(t => cjk.test(t));
}"""


def expect(target, **kwargs):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target, **kwargs)


@pytest.fixture(scope="module")
def chromium(app, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def fresh_page(chromium, app, locale: str = "en-US"):
    context = chromium.new_context(viewport=VIEWPORT, locale=locale)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        (app.origin, "data:", "blob:")) else route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app.url)
    page.wait_for_selector("#att-query-plot .js-plotly-plot svg.main-svg", timeout=FIRST_PLOT)
    return page


def open_tab(page, key: str, lang: str = "en") -> str:
    english, chinese, plot = TABS[key]
    page.get_by_role("tab", name=english if lang == "en" else chinese, exact=True).click()
    page.wait_for_selector(f"{plot} .js-plotly-plot .gtitle", timeout=FIRST_PLOT)
    return plot


def model_label(key: str) -> str:
    return {"attention": "#att-model", "swin": "#swin-model", "crossformer": "#cf-model", "twins": "#tw-model",
            "dino": "#dn-model", "mae": "#mae-model"}[key]


def save(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"teacher_{name}.png"))


# The words only (no figure): what one reply must have changed together.
LABELS_CHINESE = ALL_CHINESE.replace("&& title && cjk.test(title.textContent) ", "")


def test_the_language_switch_turns_the_whole_page_in_one_reply(chromium, app):
    """Fresh pages, switched from three tabs. The header, every tab name and the tab's labels turn
    together (one reply, not a chain of updates); its figures follow within the bound.
    The time to the whole page is printed; benchmarks/language_switch.py measures it on its own
    (here: 0.8–1.0 s from Attention, 1.0–1.1 s from Swin, 1.3–1.6 s from DINO with its six
    figures; 2–8 s and sometimes never before). The labels' bound (1.5 s) is what tells one reply from
    a chain; the whole page's bound leaves room for the browser drawing DINO's seven figures while the
    app and pytest share one busy CI box (3.2 s there once, against 1.6–1.9 s for the others)."""
    seconds = []
    for key in ("attention", "swin", "dino", "attention", "swin"):
        page = fresh_page(chromium, app)
        try:
            plot = open_tab(page, key)
            page.wait_for_timeout(300)  # the tab's first drawing settles
            start = time.perf_counter()
            page.locator("#language").get_by_text("简体中文", exact=True).click()
            page.wait_for_function("() => document.querySelector('#header').innerText.includes('可视化探索器')",
                                   timeout=10_000, polling="raf")
            # the tab bar redraws a frame or two after the header: the same reply (a chain of
            # updates took 2–8 s); the bound leaves room for a busy CI box
            page.wait_for_function(LABELS_CHINESE, arg=[plot, model_label(key)], timeout=1_500, polling="raf")
            page.wait_for_function(ALL_CHINESE, arg=[plot, model_label(key)], timeout=10_000, polling=50)
            seconds.append(time.perf_counter() - start)
            expect(page.locator(f"{model_label(key)} [data-testid=block-info]")).to_have_text("模型")
            # Gradio's own texts follow the page's switch, not only the browser's language
            expect(page.locator("footer")).to_contain_text("设置")
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
            save(page, f"switched_from_{key}")
        finally:
            page.context.close()
    print("language switch, seconds to the whole page:", [round(s, 2) for s in seconds])
    assert max(seconds) <= 5.0, seconds


def test_a_chinese_browser_opens_the_whole_page_in_chinese(chromium, app):
    page = fresh_page(chromium, app, locale="zh-CN")
    try:
        page.wait_for_function(ALL_CHINESE, arg=["#att-query-plot", "#att-model"], timeout=10_000)
        expect(page.locator("#language input[value=zh]")).to_be_checked()
        for selector, text in (("#att-layer [data-testid=block-info]", "层"), ("#att-banner", "权重来源"),
                               ("#att-steps", "模型输入"), ("#att-demo-note", "合成形状")):
            expect(page.locator(selector)).to_contain_text(text)
        page.wait_for_timeout(2000)  # and it stays Chinese (nothing late switches it back)
        assert page.evaluate(ALL_CHINESE, ["#att-query-plot", "#att-model"])
        save(page, "first_load_zh")
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_figure_is_on_the_first_screen_and_no_title_is_cut(chromium, app, lang):
    page = fresh_page(chromium, app, locale="zh-CN" if lang == "zh" else "en-US")
    try:
        top = page.locator("#att-query-plot .js-plotly-plot").bounding_box()["y"]
        assert top < VIEWPORT["height"] - 200, f"the first figure starts at y = {top} px"
        save(page, f"first_screen_{lang}")
        cut = []
        for key in TABS:
            open_tab(page, key, lang)
            page.wait_for_timeout(500)
            cut += page.evaluate("""key => [...document.querySelectorAll('.js-plotly-plot')]
                .filter(p => p.offsetParent !== null)
                .flatMap(p => {
                    const svg = p.querySelector('svg.main-svg').getBoundingClientRect();
                    const name = p.parentElement.id || p.closest('[id]').id;
                    const title = p.querySelector('.gtitle');
                    const T = title ? title.getBoundingClientRect() : null;
                    return [...p.querySelectorAll('.gtitle, .annotation-text')].map(t => {
                        const r = t.getBoundingClientRect();
                        if (r.width > 0 && (r.left < svg.left - 1 || r.right > svg.right + 1))
                            return `${key}: ${name}: cut: ${t.textContent}`;
                        // no text (a panel's title, a label) lies on the figure's wrapped title
                        if (T && t !== title && r.width > 0 && r.left < T.right - 1 && r.right > T.left + 1
                                && r.top < T.bottom - 1 && r.bottom > T.top + 1)
                            return `${key}: ${name}: on the title: ${t.textContent}`;
                        return null;
                    }).filter(Boolean);
                })""", key)
            save(page, f"{key}_{lang}")
        print("\n".join(cut))
        assert not cut, "titles wider than their figure or covered by its title at 1280 px:\n" + "\n".join(cut)
    finally:
        page.context.close()


def test_a_student_opens_the_guide_and_the_lesson_opens_each_tab(chromium, app):
    """The guide's button opens the lens's three sentences under the banner (hidden, the first
    figure stays on the first screen) and they follow the language switch while open; the lesson
    tab lists the course's path and its buttons open the lens tabs, drawn as on a click."""
    page = fresh_page(chromium, app)
    try:
        guide = page.locator("#att-guide")
        expect(guide).to_be_hidden()
        page.locator("#att-guide-button").click()
        expect(guide).to_be_visible()
        expect(guide).to_contain_text("What you see:")
        expect(guide).to_contain_text("Try this:")
        save(page, "guide_en")
        page.locator("#language").get_by_text("简体中文", exact=True).click()
        expect(guide).to_contain_text("你看到的：")
        expect(page.locator("#att-guide-button")).to_have_text("学生导读")
        expect(guide).to_be_visible()  # the switch redraws the text, not the open state
        page.locator("#att-guide-button").click()
        expect(guide).to_be_hidden()
        page.get_by_role("tab", name="课程", exact=True).click()
        for tab in ("attention", "swin", "bias", "crossformer", "mae", "dino"):
            expect(page.locator(f"#lesson-{tab}")).to_be_visible()
        expect(page.locator("#lesson-swin")).to_contain_text("提问")
        save(page, "lesson_zh")
        page.locator("#lesson-open-swin").click()
        expect(page.locator("button[role=tab][aria-selected=true]")).to_have_text("Swin 窗口")
        page.wait_for_selector("#swin-windows-plot .js-plotly-plot .gtitle", timeout=FIRST_PLOT)
        expect(page.locator("#swin-guide-button")).to_be_visible()
    finally:
        page.context.close()


PLOT_DATA = """(plot) => JSON.stringify(document.querySelector(plot + ' .js-plotly-plot').data.map(t => t.z || t.y))"""


def test_a_link_reopens_the_same_view_and_presenter_mode_reads_from_the_back(chromium, app):
    """Click a patch, move the layer, ask for the link: a fresh page opened on it
    shows the same figure (title and numbers), in the same tab. Presenter mode hides the image
    column, enlarges the text and keeps its switch in view (screenshot at 1280×720)."""
    page = fresh_page(chromium, app)  # the first example, analysed (a newly picked one could still be
    try:                                # running, and its analysis would reset the click below)
        box = page.locator("#att-picker img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
        expect(page.locator("#att-query-plot .gtitle")).to_contain_text("patch (2,5)")
        layer = page.locator("#att-layer input[type=number]")
        layer.fill("2")
        layer.press("Enter")
        expect(page.locator("#att-query-plot .gtitle")).to_contain_text("Layer 2")
        title = page.locator("#att-query-plot .gtitle").text_content()
        numbers = page.evaluate(PLOT_DATA, "#att-query-plot")
        page.locator("#link-button").click()
        link_box = page.locator("#link textarea, #link input").first
        expect(link_box).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?tab=attention&"))
        link = link_box.input_value()
        assert "image=example-0" in link and "att-layer=2" in link and "%22query%22%3A22" in link
        assert page.url == link  # the address bar holds it too
    finally:
        page.context.close()
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        again = context.new_page()
        again.goto(link)
        again.wait_for_selector("#att-query-plot .js-plotly-plot svg.main-svg", timeout=FIRST_PLOT)
        expect(again.locator("#att-query-plot .gtitle")).to_have_text(title)
        assert again.evaluate(PLOT_DATA, "#att-query-plot") == numbers
        # another tab, the language and a threshold, and presenter mode, from a hand-written link
        again.goto(link.split("?")[0] + "?tab=dino&lang=zh&image=example-1&dn-threshold=0.3&presenter=1")
        again.wait_for_selector("#dn-heads-plot .js-plotly-plot .gtitle", timeout=FIRST_PLOT)
        expect(again.locator("#dn-threshold input[type=number]")).to_have_value("0.3")
        expect(again.locator("#header")).to_contain_text("可视化探索器")
        expect(again.locator("#upload")).to_be_hidden()
        expect(again.locator("#presenter")).to_be_in_viewport()
        size = again.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#dn-banner p')).fontSize)")
        assert size >= 18, size
        save(again, "presenter_dino_zh")
        again.locator("#presenter input").uncheck()
        expect(again.locator("#upload")).to_be_visible()
    finally:
        context.close()


def test_a_student_steps_through_one_head_for_the_clicked_patch(chromium, app):
    """Open the step-through, walk to the softmax with Next, move the layer and the head, switch
    the language: each step shows its formula with this image's numbers and its figure."""
    page = fresh_page(chromium, app)
    try:
        box = page.locator("#att-picker img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
        expect(page.locator("#att-query-plot .gtitle")).to_contain_text("patch (2,5)")
        page.locator("#att-step").get_by_text("Step through one head").click()
        title = page.locator("#att-step-plot .gtitle")
        expect(title).to_contain_text("Step 1: x, the attention's input")
        text = page.locator("#att-step-text")
        expect(text).to_contain_text("query #22 · (2, 5)")
        expect(text).to_contain_text("stepping through head 0")  # the mean of heads has no arithmetic
        for n in range(2, 8):  # one step a reply: a click reads the step the page shows
            page.locator("#att-step-next").click()
            expect(title).to_contain_text(f"Step {n}: ")
        expect(title).to_contain_text("Step 7: softmax weight")
        expect(text).to_contain_text(re.compile(r"The weights sum to 1\.000"))
        expect(page.locator("#att-step-plot .colorbar")).to_have_count(1)
        page.locator("#att-head input[role=combobox]").click()
        page.get_by_role("option", name="head 2", exact=True).click()
        expect(text).to_contain_text("head 2, query #22")
        layer = page.locator("#att-layer input[type=number]")
        layer.fill("1")
        layer.press("Enter")
        expect(text).to_contain_text("Layer 1, head 2")
        page.locator("#att-step-prev").click()
        expect(title).to_contain_text("Step 6: mask")
        expect(text).to_contain_text("nothing is masked for this query")
        save(page, "step_en")
        page.locator("#language").get_by_text("简体中文", exact=True).click()
        expect(title).to_contain_text("第 6 步")
        expect(text).to_contain_text("第 1 层，第 2 个头")
        expect(page.locator("#header")).to_contain_text("可视化探索器")
        page.locator("#att-step-plot").scroll_into_view_if_needed()
        save(page, "step_zh")
    finally:
        page.context.close()


def test_the_swin_tab_steps_through_a_shifted_window_with_its_bias_and_mask(chromium, app):
    """The Swin tab's step-through: the default view is the first shifted block near the corner,
    where the mask matters; the bias step names each key's offset and table row, the mask step
    the −100 between regions, and a click on another token moves the step with it."""
    page = fresh_page(chromium, app)
    try:
        open_tab(page, "swin")
        page.locator("#swin-step").get_by_text("Step through one head").click()
        title, text = page.locator("#swin-step-plot .gtitle"), page.locator("#swin-step-text")
        expect(title).to_contain_text("Step 1: x, the attention's input")
        expect(text).to_contain_text("Stage 0, block 1, head 0")
        index = page.locator("#swin-step-index input[type=number]")
        index.fill("5")
        index.press("Enter")
        expect(title).to_contain_text("Step 5: position bias")
        expect(text).to_contain_text(re.compile(r"Δ=\(-?\d+, -?\d+\) B\[\d+\]"))
        page.locator("#swin-step-next").click()
        expect(title).to_contain_text("Step 6: mask")
        expect(text).to_contain_text("get −100")
        expect(page.locator("#swin-step-plot .colorbar")).to_have_count(1)
        page.locator("#swin-step-plot").scroll_into_view_if_needed()
        save(page, "swin_step_en")
        before = re.search(r"query #\d+ · \(\d+, \d+\)", text.inner_text()).group(0)
        page.locator("#swin-picker img").scroll_into_view_if_needed()
        box = page.locator("#swin-picker img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
        expect(text).not_to_contain_text(before)
        expect(text).to_contain_text("6 · + mask")  # the same step, for the clicked token
    finally:
        page.context.close()


def test_a_second_model_follows_the_first_by_depth_head_and_place(chromium, app):
    """Supervised ViT vs DINO on one image: pick the second model, then the layer, the head and a
    clicked patch move both; the second model's figures say its own linked layer and patch, and
    the language switch turns them too."""
    page = fresh_page(chromium, app)
    try:
        page.locator("#att-compare-panel").get_by_text("Compare with a second model").click()
        compare = page.locator("#att-compare input[role=combobox]")
        compare.click()
        page.get_by_role("option", name=re.compile("DINO")).first.click()
        second = page.locator("#att-compare-query-plot .gtitle")
        expect(second).to_contain_text("demo_dino")
        expect(second).to_contain_text("attention of CLS")
        expect(page.locator("#att-compare-rollout-plot .gtitle")).to_contain_text("Rollout")
        expect(page.locator("#att-compare-query-plot .colorbar")).to_have_count(1)
        page.locator("#att-picker img").scroll_into_view_if_needed()  # opening the panel scrolled the page
        box = page.locator("#att-picker img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
        expect(page.locator("#att-query-plot .gtitle")).to_contain_text("patch (2,5)")
        expect(second).to_contain_text("patch (2,5)")  # the same grid: the same patch
        layer = page.locator("#att-layer input[type=number]")
        layer.fill("2")
        layer.press("Enter")
        expect(second).to_contain_text("Layer 2")
        info = page.locator("#att-compare-line")
        expect(info).to_contain_text(re.compile(r"layer 2 of \d+ \(layer 2 of \d+ here\)"))
        page.locator("#att-compare-panel").scroll_into_view_if_needed()
        save(page, "compare_en")
        page.locator("#language").get_by_text("简体中文", exact=True).click()
        expect(second).to_contain_text("第 2 层")
        expect(page.locator("#att-compare-panel")).to_contain_text("与第二个模型")
        expect(info).to_contain_text("第 2 层")
    finally:
        page.context.close()
