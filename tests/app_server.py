"""Helpers for the end-to-end tests: start the app in this process, write test images, and
find the headless Chromium the browser tests drive.

The app runs in-process (not in a subprocess) so tests can read
``forward_counter.forward_count()`` and prove that sliders never re-run the model.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# From /work/shared/TESTING.md. The host-resolver rule stops Chromium's own lookups of Google
# hosts, which Playwright's request events never see. No --disable-features here: it would
# replace Playwright's own list.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def set_test_environment() -> Path:
    """Offline, quiet Gradio with its own temp dir. Must run before gradio is imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    temp = Path(tempfile.mkdtemp(prefix="vit-explorer-gradio-"))
    os.environ["GRADIO_TEMP_DIR"] = str(temp)
    return temp


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ModelFacts:
    """What the page's default model looks like, read from the model itself."""

    key: str
    grid: tuple[int, int]  # patch grid of the "model" geometry
    input_size: tuple[int, int]  # (height, width) in pixels
    num_layers: int
    num_heads: int
    num_prefix_tokens: int
    source: str

    @property
    def num_tokens(self) -> int:
        return self.num_prefix_tokens + self.grid[0] * self.grid[1]


def default_model_facts() -> ModelFacts:
    """Facts about ``entries_for(("vit",))[0]``, loaded the way the page and the API load it
    (``HF_HUB_OFFLINE=1`` so no download), without running a forward pass."""
    from explorer.core.weights import get_model
    from explorer.core.zoo import entries_for

    key = entries_for(("vit",))[0].key
    loaded = get_model(key, allow_download=False)
    model = loaded.model
    _, height, width = loaded.data_config["input_size"]
    ph, pw = loaded.patch_size
    return ModelFacts(
        key=key,
        grid=(height // ph, width // pw),
        input_size=(height, width),
        num_layers=len(model.blocks),
        num_heads=int(model.blocks[0].attn.num_heads),
        num_prefix_tokens=int(model.num_prefix_tokens),
        source=loaded.source,
    )


@dataclass
class AppServer:
    url: str  # e.g. "http://127.0.0.1:7861/"
    port: int
    demo: object = field(repr=False)
    model: ModelFacts

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_app() -> AppServer:
    from explorer.ui.page import build_demo, launch_kwargs

    # The page's default model, read before build_demo() so both agree even if a bundled
    # demo checkpoint appears while the tests run (its model is then already cached).
    facts = default_model_facts()
    demo = build_demo()
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
                quiet=True, **launch_kwargs())
    return AppServer(url=f"http://127.0.0.1:{port}/", port=port, demo=demo, model=facts)


# --------------------------------------------------------------------------- test images

@dataclass
class ImageFiles:
    red_circle: Path  # red disc on white, 320×240 PNG
    blue_square: Path  # blue square on black, 200×260 PNG
    not_an_image: Path  # text with a .png name
    truncated: Path  # a PNG cut in the middle of its pixel data


def write_test_images(folder: Path, variant: int = 0) -> ImageFiles:
    """``variant`` moves the shapes by that many pixels: same sizes, other pixels (so the
    app's result cache, keyed by the pixels, has not seen them)."""
    import numpy as np
    from PIL import Image, ImageDraw

    v = variant

    folder.mkdir(parents=True, exist_ok=True)
    red = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(red).ellipse([90 + v, 50, 230 + v, 190], fill=(220, 20, 30))
    red_path = folder / "red_circle.png"
    red.save(red_path)

    blue = Image.new("RGB", (200, 260), "black")
    ImageDraw.Draw(blue).rectangle([40, 70 + v, 150, 180 + v], fill=(20, 40, 230))
    blue_path = folder / "blue_square.png"
    blue.save(blue_path)

    text_path = folder / "notes.png"
    text_path.write_text("These are my lecture notes, not a picture.\n" * 20, encoding="utf-8")

    # Noise does not compress, so the PNG is large and cutting it in half lands inside IDAT.
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    full = folder / "noise_full.png"
    Image.fromarray(noise).save(full)
    data = full.read_bytes()
    truncated_path = folder / "truncated.png"
    truncated_path.write_bytes(data[: len(data) // 2])
    return ImageFiles(red_path, blue_path, text_path, truncated_path)


# --------------------------------------------------------------------------- app as a process

@dataclass
class ProcessServer:
    """``python app.py`` in its own process group: what a public server runs."""

    url: str
    process: object = field(repr=False)  # subprocess.Popen
    temp_dir: Path = None  # its GRADIO_TEMP_DIR (the upload folder)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the server process, MiB (from /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, Exception):  # noqa: BLE001 - already gone, or stuck: kill
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_app_process(temp_dir: Path, log: Path, **env: str) -> ProcessServer:
    """Start ``python app.py`` on a free port with ``env`` added (offline, no analytics) and
    wait until it answers."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                   "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                   "GRADIO_TEMP_DIR": str(temp_dir), "PYTHONUNBUFFERED": "1", **env}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=environment, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = ProcessServer(url=f"http://127.0.0.1:{port}/", process=process, temp_dir=temp_dir)
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"app.py did not answer within 120 s:\n{log.read_text()[-3000:]}")
