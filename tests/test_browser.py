"""The real page in headless Chromium, used as a person would use it, fully offline.

One browser context for the module, on the app running in this process (conftest.py), so
``forward_count()`` proves that sliders, clicks and the language switch never re-run the
model. Every request that is not to the app's 127.0.0.1 origin is aborted and recorded;
console and page errors are collected; the last test asserts both lists are empty and saves
screenshots to artifacts/screenshots/. The tests share one page and are meant to run in file
order, but each one only assumes that the page has loaded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app_server import CHROMIUM_ARGS, AppServer, ImageFiles, ModelFacts, write_test_images
from forward_counter import forward_count

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
FIRST_PLOT_TIMEOUT = 60_000  # ms: fresh browser, 4.6 MB plotly chunk, first model run
TIMEOUT = 20_000  # ms: any later update
CJK = re.compile(r"[\u4e00-\u9fff]")

QUERY_PLOT = "#att-query-plot"


@dataclass
class Browser:
    page: object  # playwright.sync_api.Page
    app: AppServer
    images: ImageFiles
    blocked: list[str] = field(default_factory=list)  # requests that tried to leave 127.0.0.1
    errors: list[str] = field(default_factory=list)  # console errors and page errors

    @property
    def facts(self) -> ModelFacts:
        return self.app.model

    def title(self, plot: str):
        """The plotly title (SVG text) of the figure in the element ``plot``."""
        return self.page.locator(f"{plot} .js-plotly-plot .gtitle").first


def expect(target, **kwargs):
    # Imported here so that a missing playwright skips (or, in CI, fails) in the fixture
    # instead of breaking collection.
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target, **kwargs)


@pytest.fixture(scope="module")
def browser(app, chromium_path, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # Other pixels than the API tests use, so the result cache has not seen them.
    images = write_test_images(tmp_path_factory.mktemp("browser-images"), variant=3)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1500, "height": 1000}, locale="en-US")
        try:
            session = Browser(page=None, app=app, images=images)

            def route(route_):
                url = route_.request.url
                if url == app.origin or url.startswith((app.origin + "/", "data:", "blob:")):
                    route_.continue_()
                else:
                    session.blocked.append(url)
                    route_.abort()

            context.route("**/*", route)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda msg: session.errors.append(f"console: {msg.text}")
                    if msg.type == "error" else None)
            page.on("pageerror", lambda err: session.errors.append(f"page error: {err}"))
            page.set_default_timeout(TIMEOUT)
            session.page = page
            page.goto(app.url)
            yield session
        finally:
            context.close()


# ------------------------------------------------------------------------------ helpers


def english_title(layer: int, head: str, query: str) -> str:
    return f"Layer {layer} · {head} · attention of {query}"


def mean_of_heads(b: Browser) -> str:
    return f"mean of {b.facts.num_heads} heads"


def wait_until_analysed(b: Browser) -> None:
    """The page has loaded and drawn the query plot (the example is analysed on load)."""
    b.page.wait_for_selector(f"{QUERY_PLOT} .js-plotly-plot svg.main-svg", timeout=FIRST_PLOT_TIMEOUT)
    expect(b.title(QUERY_PLOT)).not_to_be_empty(timeout=FIRST_PLOT_TIMEOUT)


def toasts(b: Browser):
    return b.page.locator(".toast-body")


def toast_texts(b: Browser) -> str:
    return " | ".join(toasts(b).all_inner_texts())


def close_toasts(b: Browser) -> None:
    for close in reversed(b.page.locator(".toast-body .toast-close").all()):
        close.click()
    expect(toasts(b)).to_have_count(0)


def expect_update(b: Browser, locator, text: str) -> None:
    """Wait until ``locator`` contains ``text``; fail at once (not after the timeout) when an
    error toast appears instead."""
    expect(locator.filter(has_text=text).or_(toasts(b)).first).to_be_visible()
    assert toasts(b).count() == 0, f"error toast instead of {text!r}: {toast_texts(b)}"
    expect(locator).to_contain_text(text)


def set_layer(b: Browser, layer: int) -> None:
    """Type into the number box of the layer slider and press Enter."""
    number = b.page.locator("#att-layer input[type=number]")
    number.fill(str(layer))
    number.press("Enter")


def current_layer(b: Browser) -> int:
    return int(b.page.locator("#att-layer input[type=number]").input_value())


def choose_head(b: Browser, label: str) -> None:
    b.page.locator("#att-head input[role=combobox]").click()
    b.page.get_by_role("option", name=label, exact=True).click()


def upload(b: Browser, path: Path) -> None:
    """Choose a file in the #upload box, removing a file already shown there first."""
    page = b.page
    clear = page.locator("#upload").get_by_role("button", name=re.compile("clear|remove", re.I))
    if clear.count():
        clear.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(path))


def picker_geometry(b: Browser, picker: str = "#att-picker") -> dict:
    """Where the picker's pixels are on screen. Gradio fits the picture into its box, centred,
    without upscaling: the arithmetic of its own select event."""
    b.page.wait_for_function(
        f"() => {{ const i = document.querySelector('{picker} img');"
        " return i && i.complete && i.naturalWidth > 0; }")
    return b.page.locator(f"{picker} img").evaluate(
        """img => {
            const r = img.getBoundingClientRect();
            const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
            return {left: r.left + (r.width - img.naturalWidth * s) / 2,
                    top: r.top + (r.height - img.naturalHeight * s) / 2,
                    width: img.naturalWidth * s, height: img.naturalHeight * s};
        }""")


def open_tab(b: Browser, name: str, first_plot: str) -> int:
    """Once the page has analysed its example, open a lens tab and wait for its first plot;
    returns the model's forward count from before the tab was opened."""
    wait_until_analysed(b)
    close_toasts(b)
    before = forward_count()
    b.page.get_by_role("tab", name=name).click()
    b.page.wait_for_selector(f"{first_plot} .js-plotly-plot svg.main-svg", timeout=FIRST_PLOT_TIMEOUT)
    return before


def save_screenshot(b: Browser, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    b.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


# ------------------------------------------------------------------------------ the tests


def test_page_loads_and_analyses_the_example(browser):
    b, facts, page = browser, browser.facts, browser.page
    wait_until_analysed(b)
    expect(b.title(QUERY_PLOT)).to_have_text(
        english_title(facts.num_layers - 1, mean_of_heads(b), "CLS"))

    rows, cols = facts.grid
    height, width = facts.input_size
    expect(b.title("#att-matrix-plot")).to_have_text(
        f"Layer {facts.num_layers - 1} · {mean_of_heads(b)} · full attention matrix "
        f"({facts.num_tokens}×{facts.num_tokens} tokens)")
    expect(b.title("#att-distance-plot")).to_have_text(
        f"Mean attention distance per head ({width}×{height} px input)")
    expect(b.title("#att-rollout-plot")).to_have_text(
        f"Rollout (mean of heads, {facts.num_layers} layers) · CLS")
    for plot in (QUERY_PLOT, "#att-rollout-plot", "#att-matrix-plot", "#att-distance-plot"):
        expect(page.locator(f"{plot} .colorbar").first).to_be_attached()
        expect(page.locator(f"{plot} .colorbar .cbtitle").first).not_to_be_empty()
        expect(page.locator(f"{plot} .xtitle").first).not_to_be_empty()
        expect(page.locator(f"{plot} .ytitle").first).not_to_be_empty()

    expect(page.locator("#att-query")).to_contain_text("#0 — CLS")
    expect(page.locator("#image-info")).to_contain_text("mode RGB")
    expect(page.locator("#att-steps")).to_contain_text(f"{width}×{height} px = {rows}×{cols} patches")
    expect(page.locator("#att-banner")).to_contain_text("Weights:")
    if facts.source == "random":
        expect(page.locator("#att-banner")).to_contain_text("RANDOM weights")
    expect(page.locator("#att-shapes")).to_contain_text(f"(B, 3, {height}, {width})")
    # The layer slider spans this model's depth and starts at the last layer.
    expect(page.locator("#att-layer input[type=range]")).to_have_attribute(
        "max", str(facts.num_layers - 1))
    assert current_layer(b) == facts.num_layers - 1
    assert toasts(b).count() == 0, toast_texts(b)


def test_layer_and_head_redraw_without_running_the_model(browser):
    b, facts = browser, browser.facts
    wait_until_analysed(b)
    before = forward_count()
    layer = facts.num_layers // 2
    head = min(2, facts.num_heads - 1)

    set_layer(b, layer)
    expect_update(b, b.title(QUERY_PLOT), english_title(layer, mean_of_heads(b), "CLS"))
    choose_head(b, f"head {head}")
    expect_update(b, b.title(QUERY_PLOT), english_title(layer, f"head {head}", "CLS"))
    expect(b.title("#att-matrix-plot")).to_contain_text(f"Layer {layer} · head {head} ·")

    # Once more with the keyboard on the slider itself.
    b.page.locator("#att-layer input[type=range]").press("ArrowRight")
    expect_update(b, b.title(QUERY_PLOT), english_title(layer + 1, f"head {head}", "CLS"))
    expect(b.title(QUERY_PLOT)).to_have_text(english_title(layer + 1, f"head {head}", "CLS"))

    assert forward_count() == before, "moving the layer slider / head dropdown re-ran the model"


def test_click_on_patch_makes_it_the_query(browser):
    b, facts, page = browser, browser.facts, browser.page
    wait_until_analysed(b)
    rows, cols = facts.grid
    box = picker_geometry(b)
    # Aim at the centre of a patch in the lower left.
    aim = (3 * rows) // 4, cols // 4
    x = box["left"] + (aim[1] + 0.5) / cols * box["width"]
    y = box["top"] + (aim[0] + 0.5) / rows * box["height"]
    # The patch under that point, from the displayed size of the picture and the grid.
    row = math.floor((y - box["top"]) / box["height"] * rows)
    col = math.floor((x - box["left"]) / box["width"] * cols)
    assert (row, col) == aim

    before = forward_count()
    old_src = page.locator("#att-picker img").get_attribute("src")
    page.mouse.click(x, y)
    token = facts.num_prefix_tokens + row * cols + col
    expect_update(b, page.locator("#att-query"), f"#{token} — patch ({row},{col})")
    expect(b.title(QUERY_PLOT)).to_contain_text(f"· attention of patch ({row},{col})")
    expect(b.title("#att-rollout-plot")).to_contain_text(f"· patch ({row},{col})")
    # The picker is redrawn with the chosen patch boxed.
    expect(page.locator("#att-picker img")).not_to_have_attribute("src", old_src or "")
    assert forward_count() == before, "clicking a patch re-ran the model"

    page.get_by_role("button", name="Query = CLS").click()
    expect_update(b, page.locator("#att-query"), "#0 — CLS")
    expect(b.title(QUERY_PLOT)).to_contain_text("attention of CLS")


def test_upload_updates_picker_and_plots(browser):
    b, page = browser, browser.page
    wait_until_analysed(b)
    close_toasts(b)  # a failed test before may have left one
    old_src = page.locator("#att-picker img").get_attribute("src")
    old_steps = page.locator("#att-steps").inner_text()
    before = forward_count()

    upload(b, b.images.red_circle)
    expect_update(b, page.locator("#image-info"), "PNG 320×240, mode RGB")
    # The new picture's analysis: its preprocessing steps start from 320×240.
    expect(page.locator("#att-steps")).to_contain_text("320×240 →")
    assert page.locator("#att-steps").inner_text() != old_steps
    expect(page.locator("#att-picker img")).not_to_have_attribute("src", old_src or "")
    expect(b.title(QUERY_PLOT)).to_contain_text("attention of CLS")
    expect(page.locator("#att-query")).to_contain_text("#0 — CLS")
    assert forward_count() == before + 1, "a new image should run the model exactly once"


def test_an_upload_unmarks_the_example_that_was_picked(browser):
    b, page = browser, browser.page
    wait_until_analysed(b)
    close_toasts(b)
    page.locator("#examples .thumbnail-item").nth(1).click()
    expect(page.locator("#examples .thumbnail-item.selected")).to_have_count(1)
    upload(b, b.images.blue_square)
    expect_update(b, page.locator("#image-info"), "PNG 200×260")
    expect(page.locator("#att-steps")).to_contain_text("200×260 →")  # its analysis is done
    expect(page.locator("#examples .thumbnail-item.selected")).to_have_count(0)


def test_bad_upload_shows_clear_error_and_page_keeps_working(browser):
    b, page = browser, browser.page
    wait_until_analysed(b)
    close_toasts(b)
    info = page.locator("#image-info [data-testid=markdown]")
    info_before = info.inner_text()
    title_before = b.title(QUERY_PLOT).text_content()
    before = forward_count()

    upload(b, b.images.not_an_image)
    toast = toasts(b).filter(has_text="not an image")
    expect(toast.first).to_be_visible()
    expect(toast.first).to_contain_text("Convert it to PNG or JPEG")
    assert "Traceback" not in toast_texts(b)
    # The previous picture and its analysis stay.
    expect(info).to_have_text(info_before)
    expect(b.title(QUERY_PLOT)).to_have_text(title_before)
    assert forward_count() == before

    # The error stays until closed (duration=None); then the page is used as before.
    toast.first.locator(".toast-close").click()
    expect(toasts(b)).to_have_count(0)
    set_layer(b, 0)
    expect_update(b, b.title(QUERY_PLOT), "Layer 0 · ")
    upload(b, b.images.blue_square)
    expect_update(b, page.locator("#image-info"), "PNG 200×260, mode RGB")
    expect(page.locator("#att-steps")).to_contain_text("200×260 →")
    expect(b.title(QUERY_PLOT)).to_contain_text("Layer 0 · ")


def test_swin_tab_windows_masks_and_click(browser):
    b, page = browser, browser.page
    before = open_tab(b, "Swin windows", "#swin-split-plot")
    expect(b.title("#swin-windows-plot")).to_contain_text("Stage 0 · block 1: shifted windows (SW-MSA)")
    expect(b.title("#swin-shift-plot")).to_contain_text("Cyclic shift step by step")
    expect(b.title("#swin-mask-plot")).to_contain_text("Mask of window")
    expect(b.title("#swin-split-plot")).to_contain_text("logit = content + bias + mask")
    assert forward_count() == before + 1, "opening the Swin tab should run the Swin model once"

    # A click on the top-left token: on the shifted block it was rolled to the last window.
    box = picker_geometry(b, "#swin-picker")
    page.mouse.click(box["left"] + 1, box["top"] + 1)
    expect_update(b, page.locator("#swin-query"), "(0,0) of stage 0")
    windows = int(re.search(r"(\d+) windows", b.title("#swin-windows-plot").text_content()).group(1))
    expect(b.title("#swin-mask-plot")).to_contain_text(f"Mask of window {windows - 1}")

    after_click = forward_count()
    page.locator("#swin-block input[role=combobox]").click()
    page.get_by_role("option", name=re.compile("^0 · regular")).click()
    expect_update(b, b.title("#swin-windows-plot"), "block 0: regular windows (W-MSA)")
    expect(page.locator("#swin-query")).to_contain_text("window 0, slot 0")
    assert forward_count() == after_click, "changing the block re-ran the model"
    save_screenshot(b, "swin.png")
    page.get_by_role("tab", name="Attention").click()


def test_bias_tab_crossformer_dpb_equals_rpb(browser):
    b, page = browser, browser.page
    before = open_tab(b, "Position bias", "#bias-table-plot")
    expect(b.title("#bias-table-plot")).to_contain_text("RPB table")
    expect(b.title("#bias-index-plot")).to_contain_text("relative_position_index")
    expect(b.title("#bias-gathered-plot")).to_contain_text("Gathered bias B")

    page.locator("#bias-model input[role=combobox]").click()
    page.get_by_role("option", name=re.compile("^CrossFormer-T")).click()
    expect_update(b, b.title("#bias-dpb-plot"), "DPB MLP output at G′")
    expect(page.locator("#bias-info")).to_contain_text("max |DPB − RPB|")
    expect(b.title("#bias-groups-plot")).to_contain_text("groups")
    assert forward_count() == before, "bias tables need no forward pass"
    save_screenshot(b, "bias.png")
    page.get_by_role("tab", name="Attention").click()


def test_crossformer_tab_groups_and_click_on_the_bundled_model(browser):
    b, page = browser, browser.page
    before = open_tab(b, "CrossFormer", "#cf-sda-groups-plot")
    # Offline the default is the bundled demo: 8x8 tokens, groups of 4x4 (SDA squares, LDA every 2nd token)
    expect(page.locator("#cf-model input[role=combobox]")).to_have_value(re.compile("^Demo CrossFormer"))
    expect(page.locator("#cf-info")).to_contain_text("Stage 0:")
    expect(page.locator("#cf-info")).to_contain_text("8×8 tokens")
    expect(page.locator("#cf-info")).to_contain_text("G = 4")
    expect(b.title("#cf-sda-groups-plot")).to_contain_text("groups")
    assert forward_count() == before + 1, "opening the CrossFormer tab should run the model once"

    box = picker_geometry(b, "#cf-picker")
    page.mouse.click(box["left"] + box["width"] * 0.9, box["top"] + box["height"] * 0.9)
    expect_update(b, page.locator("#cf-info"), "Query (7,7)")
    expect(b.title("#cf-sda-attention-plot")).to_contain_text("token (7,7)")
    assert forward_count() == before + 1, "a click re-ran the model"
    save_screenshot(b, "crossformer.png")
    page.get_by_role("tab", name="Attention").click()


def test_twins_tab_windows_key_grid_and_click_on_the_bundled_model(browser):
    b, page = browser, browser.page
    before = open_tab(b, "Twins", "#tw-layout-plot")
    # Offline the default is the bundled demo Twins-SVT: 16x16 tokens of 4 px, 4x4 windows, sr 4
    expect(page.locator("#tw-model input[role=combobox]")).to_have_value(re.compile("^Demo Twins"))
    expect(page.locator("#tw-info")).to_contain_text("16×16 tokens")
    expect(b.title("#tw-layout-plot")).to_contain_text("LSA: 16 windows of 4×4 tokens")
    expect(b.title("#tw-layout-plot")).to_contain_text("GSA: 4×4 keys")
    expect(b.title("#tw-gsa-plot")).to_contain_text("over 4×4 sub-sampled keys")
    expect(page.locator("#tw-shapes")).to_contain_text("pos_block.0")
    for plot in ("#tw-layout-plot", "#tw-lsa-plot", "#tw-gsa-plot", "#tw-peg-bars", "#tw-peg-map"):
        expect(page.locator(f"{plot} .colorbar").first).to_be_attached()
        expect(page.locator(f"{plot} .xtitle").first).not_to_be_empty()
    assert forward_count() == before + 1, "opening the Twins tab should run the model once"

    box = picker_geometry(b, "#tw-picker")
    page.mouse.click(box["left"] + box["width"] * 0.97, box["top"] + box["height"] * 0.03)
    expect_update(b, b.title("#tw-lsa-plot"), "token (0,15) in window 3")
    expect(b.title("#tw-gsa-plot")).to_contain_text("token (0,15)")
    assert forward_count() == before + 1, "a click re-ran the model"
    save_screenshot(b, "twins.png")
    page.get_by_role("tab", name="Attention").click()


def test_navit_tab_packs_the_examples_and_shows_packed_equals_alone(browser):
    b, page = browser, browser.page
    open_tab(b, "NaViT", "#nv-packing-plot")
    expect(page.locator("#nv-equivalence")).to_contain_text("Packed = separate")
    # the six aspect-ratio examples and, by default, the page's own image
    expect(page.locator("#nv-equivalence")).to_contain_text("7 images")
    expect(b.title("#nv-packing-plot")).to_contain_text("Packing: 7 images")
    expect(b.title("#nv-mask-plot")).to_contain_text("block-diagonal attention mask")
    expect(page.locator("#nv-table")).to_contain_text("ring_1x3")
    expect(page.locator("#nv-table")).to_contain_text("page image / 页面图片")
    # token dropout: half the patches of each image go, and packing still changes nothing
    number = page.locator("#nv-dropout input[type=number]")
    number.fill("0.5")
    number.press("Enter")
    expect_update(b, b.title("#nv-patches-plot"), "p = 0.50")
    expect(page.locator("#nv-equivalence")).to_contain_text("Packed = separate")
    save_screenshot(b, "navit.png")
    page.get_by_role("tab", name="Attention").click()


def test_mae_tab_ratio_slider_and_painted_mask_on_the_bundled_model(browser):
    b, page = browser, browser.page
    before = open_tab(b, "MAE", "#mae-panels-plot")
    expect(page.locator("#mae-model input[role=combobox]")).to_have_value(re.compile("^Demo MAE"))
    expect(page.locator("#mae-summary")).to_contain_text("Hidden 48 of 64 patches")
    expect(b.title("#mae-panels-plot")).to_contain_text("75% of the patches hidden")
    expect(b.title("#mae-error-plot")).to_contain_text("Reconstruction error per hidden patch")
    expect(page.locator("#mae-error-plot .colorbar").first).to_be_attached()
    for plot in ("#mae-panels-plot", "#mae-error-plot"):
        expect(page.locator(f"{plot} .xtitle").first).not_to_be_empty()
    assert forward_count() == before + 1, "opening the MAE tab should run the model once"

    # the mask ratio slider: 0.5 hides 32 of 64 patches
    number = page.locator("#mae-ratio input[type=number]")
    number.fill("0.5")
    number.press("Enter")
    expect_update(b, page.locator("#mae-summary"), "Hidden 32 of 64 patches")
    expect(b.title("#mae-panels-plot")).to_contain_text("50% of the patches hidden")

    # paint: "Clear" shows every patch, then two clicks hide the top-left and bottom-right patches
    page.locator("#mae-clear").click()
    expect_update(b, page.locator("#mae-summary"), "Hidden 0 of 64 patches")
    box = picker_geometry(b, "#mae-picker")
    page.mouse.click(box["left"] + box["width"] * 0.03, box["top"] + box["height"] * 0.03)
    expect_update(b, page.locator("#mae-summary"), "Hidden 1 of 64 patches")
    page.locator("#mae-picker").scroll_into_view_if_needed()  # its bottom row may lie below the window
    box = picker_geometry(b, "#mae-picker")
    page.mouse.click(box["left"] + box["width"] * 0.97, box["top"] + box["height"] * 0.97)
    expect_update(b, page.locator("#mae-summary"), "Hidden 2 of 64 patches")
    expect(page.locator("#mae-strategy input[value=painted]")).to_be_checked()
    expect(page.locator("#mae-summary")).to_contain_text("Painted mask")
    # in painted mode the ratio and the seed do nothing: they are greyed out until another mode
    expect(page.locator("#mae-ratio input[type=number]")).to_be_disabled()
    expect(page.locator("#mae-seed input")).to_be_disabled()
    save_screenshot(b, "mae.png")
    page.locator("#mae-strategy").get_by_text("random (paper)", exact=True).click()
    expect_update(b, page.locator("#mae-summary"), "Hidden 32 of 64 patches")
    expect(page.locator("#mae-ratio input[type=number]")).to_be_enabled()
    expect(page.locator("#mae-seed input")).to_be_enabled()
    page.get_by_role("tab", name="Attention").click()


def test_language_switch_to_chinese(browser):
    b, page = browser, browser.page
    wait_until_analysed(b)
    close_toasts(b)
    layer = current_layer(b)
    before = forward_count()

    page.locator("#language").get_by_text("简体中文", exact=True).click()
    expect_update(b, b.title(QUERY_PLOT), f"第 {layer} 层")
    title = b.title(QUERY_PLOT).text_content()
    assert "第" in title and "层" in title and CJK.search(title), title
    expect(b.title("#att-rollout-plot")).to_contain_text("注意力 rollout")
    expect(b.title("#att-matrix-plot")).to_contain_text("完整注意力矩阵")
    expect(b.title("#att-distance-plot")).to_contain_text("平均注意力距离")
    expect(page.locator(f"{QUERY_PLOT} .xtitle").first).to_contain_text("模型输入的像素")
    expect(page.locator("#header")).to_contain_text("ViT 可视化探索器")
    expect(page.locator("#att-layer [data-testid=block-info]")).to_have_text("层")
    expect(page.locator("#att-head [data-testid=block-info]")).to_have_text("注意力头")
    expect(page.locator("#att-head input[role=combobox]")).to_have_value(re.compile("头|各头平均"))
    expect(page.locator("#att-query")).to_contain_text("查询 token")
    expect(page.locator("#image-info")).to_contain_text("模式")
    expect(page.locator("#att-steps")).to_contain_text("模型输入")
    expect(page.locator("#att-banner")).to_contain_text("权重来源")
    expect(page.locator("#att-shapes")).to_contain_text("阶段")
    assert forward_count() == before, "switching the language re-ran the model"
    save_screenshot(b, "attention_zh.png")

    # Errors speak Chinese too.
    upload(b, b.images.truncated)
    toast = toasts(b).filter(has_text="不完整或已损坏")
    expect(toast.first).to_be_visible()
    close_toasts(b)


def test_back_to_english_offline_and_without_errors(browser):
    b, page = browser, browser.page
    wait_until_analysed(b)
    close_toasts(b)
    layer = current_layer(b)
    page.locator("#language").get_by_text("English", exact=True).click()
    expect_update(b, b.title(QUERY_PLOT), f"Layer {layer} · ")
    expect(page.locator("#header")).to_contain_text("ViT Explorer")
    expect(page.locator("#att-layer [data-testid=block-info]")).to_have_text("Layer")
    save_screenshot(b, "attention.png")

    assert b.blocked == [], f"the page tried to reach other hosts: {b.blocked}"
    assert b.errors == [], f"console/page errors: {b.errors}"
