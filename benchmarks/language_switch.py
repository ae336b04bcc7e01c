"""The language switch in a real browser, printed as measured seconds (not a test).

Starts the app on a free port, opens it in headless Chromium at 1280×720 and, from the
Attention, Swin and DINO tabs of a fresh page each time, clicks 简体中文 and times how long until
the header, every tab name, the tab's labels and its first figure's title are all Chinese, and
back to English. Prints each time and the median. Needs the Playwright driver and Chromium that
the browser tests use. Run: ``.venv/bin/python benchmarks/language_switch.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app_server import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402
from test_browser_teacher import ALL_CHINESE, TABS, VIEWPORT, model_label  # noqa: E402

REPEATS = 3
ALL_ENGLISH = """([plot]) => document.querySelector('#header').innerText.includes('ViT Explorer')
    && [...document.querySelectorAll('button[role=tab]')].some(b => b.innerText.trim() === 'Attention')
    && !/[\\u4e00-\\u9fff]/.test(document.querySelector(plot + ' .js-plotly-plot .gtitle').textContent)"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    from explorer.ui.page import build_demo, launch_kwargs

    port = free_port()
    demo = build_demo()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    url = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {"zh": [], "en": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            for _ in range(REPEATS):
                for key in ("attention", "swin", "dino"):
                    page = browser.new_context(viewport=VIEWPORT, locale="en-US").new_page()
                    page.goto(url)
                    page.wait_for_selector("#att-query-plot .js-plotly-plot svg.main-svg", timeout=90_000)
                    english, _, plot = TABS[key]
                    page.get_by_role("tab", name=english, exact=True).click()
                    page.wait_for_selector(f"{plot} .js-plotly-plot .gtitle", timeout=90_000)
                    page.wait_for_timeout(1000)
                    for lang, button, check, arg in (("zh", "简体中文", ALL_CHINESE, [plot, model_label(key)]),
                                                     ("en", "English", ALL_ENGLISH, [plot])):
                        start = time.perf_counter()
                        page.locator("#language").get_by_text(button, exact=True).click()
                        page.wait_for_function(check, arg=arg, timeout=20_000, polling="raf")
                        times[lang].append(time.perf_counter() - start)
                        page.wait_for_timeout(500)
                    print(f"{key:10s} to Chinese {times['zh'][-1]:.2f} s   back to English {times['en'][-1]:.2f} s")
                    page.context.close()
            browser.close()
    finally:
        demo.close()
    for lang, name in (("zh", "to Chinese"), ("en", "to English")):
        print(f"{name}: median {statistics.median(times[lang]):.2f} s, max {max(times[lang]):.2f} s "
              f"over {len(times[lang])} switches (whole page: header, tab names, labels, figures)")


if __name__ == "__main__":
    main()
