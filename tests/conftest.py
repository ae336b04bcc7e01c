"""Shared fixtures: the app running in this process, generated test images, and the
headless-Chromium check for browser tests.

The environment is set here, at import time, before anything imports gradio or
huggingface_hub: no test downloads anything or phones home.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/app_server.py

import forward_counter  # noqa: E402
from app_server import (CHROMIUM, AppServer, ImageFiles, set_test_environment,  # noqa: E402
                        start_app, write_test_images)

_GRADIO_TEMP = set_test_environment()
forward_counter.start()  # tests prove controls re-run no model by counting every pass


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_GRADIO_TEMP, ignore_errors=True)


@pytest.fixture(scope="session")
def app() -> AppServer:
    """The whole page, launched in this process on a free 127.0.0.1 port."""
    server = start_app()
    try:
        yield server
    finally:
        server.demo.close()


@pytest.fixture(scope="session")
def app_url(app: AppServer) -> str:
    return app.url


@pytest.fixture
def images(tmp_path: Path) -> ImageFiles:
    """Two different generated pictures, a text file named .png and a truncated PNG."""
    return write_test_images(tmp_path / "images")


@pytest.fixture(scope="session")
def session_images(tmp_path_factory) -> ImageFiles:
    return write_test_images(tmp_path_factory.mktemp("images"))


def missing_browser_parts(chromium: Path = CHROMIUM) -> list[str]:
    missing = []
    if not chromium.is_file():
        missing.append(f"{chromium} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    return missing


def require_browser(chromium: Path = CHROMIUM) -> Path:
    """Skip when Debian's Chromium or playwright is missing, except in CI (which installs
    both), where a missing browser is a failure."""
    missing = missing_browser_parts(chromium)
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if in_ci():
            pytest.fail(f"{message}; CI is set, so this is a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return chromium


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return require_browser()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: on a shared 2-core machine thread hand-offs cost more than the maths
    (about 100× here), so modules of small-model tests run single-threaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
