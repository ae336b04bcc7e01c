"""Safe to host publicly, tried as an outside client would: the API reads only uploads, every
argument is checked before a model loads, memory and disk per session are bounded, and broken
checkpoints fall back with a banner that tells the truth.

Most tests use the app running in this process (conftest.py); the memory and disk bounds are
measured on ``python app.py`` itself, in its own process."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from app_server import start_app_process
from explorer.core.images import WORKING_SIDE, ImageInputError
from explorer.core.zoo import CHECKPOINT_DIR, REPO_ROOT
from explorer.ui.uploads import not_uploaded, sweep_uploads, uploaded_path

pytestmark = pytest.mark.slow

EXAMPLE = REPO_ROOT / "assets" / "examples" / "chelsea.jpg"
REFUSED = not_uploaded().message_en


# ------------------------------------------------------------------- 1. only uploaded files


def server_paths(tmp_path: Path) -> list[str]:
    """Paths of every kind on the server's disk: files, folders, devices, missing ones, tricks."""
    link = Path(os.environ["GRADIO_TEMP_DIR"]) / ("0" * 40)
    link.mkdir(parents=True, exist_ok=True)
    escape = link / "escape.png"
    if not escape.is_symlink():
        escape.symlink_to("/etc/hostname")
    upload_root = os.environ["GRADIO_TEMP_DIR"]
    return [upload_root, f"{upload_root}/missing.png", str(link), str(EXAMPLE.parent), str(EXAMPLE.parent / "nope.png"),
            "/etc/hostname", "/etc/passwd", "/etc", "/dev/zero", "/proc/self/environ",
            str(REPO_ROOT / "README.md"), str(CHECKPOINT_DIR / "demo_vit.safetensors"),
            "/no/such/file.png", "../../../../etc/passwd", str(EXAMPLE.parent / ".." / ".." / "app.py"),
            str(escape), "", "x" * 5000, "/etc/hostname\x00.png"]


def call(app_url: str, api: str, data: list) -> tuple[str, str]:
    """POST the raw /call API (what any HTTP client can send) and read the event stream."""
    event = httpx.post(f"{app_url}gradio_api/call/{api}", json={"data": data}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{app_url}gradio_api/call/{api}/{event}", timeout=120).text
    kind = re.search(r"event: (\w+)", stream).group(1)
    return kind, stream


def test_api_reads_no_file_that_was_not_uploaded(app_url, tmp_path):
    answers = {}
    for path in server_paths(tmp_path):
        # (Gradio answers FileData paths the OS cannot take, too long or with a NUL, itself.)
        odd = len(path) > 4000 or "\x00" in path
        for value in ({"path": path}, {"path": path, "meta": {"_type": "gradio.FileData"}})[:1 if odd else 2]:
            kind, stream = call(app_url, "attention", [value, "demo_vit", "model", -1, -1, 0, "mean"])
            assert kind == "error", (path, stream[:300])
            answers[(path[:40], "meta" in value)] = stream
    # Gradio itself refuses FileData outside its upload folder; what reaches our code gets our
    # one message. Either way nothing says what is (or is not) at the path.
    ours = {k: v for k, v in answers.items() if REFUSED in v}
    assert len(ours) >= len(server_paths(tmp_path)) - 1, "our check was never reached"
    for stream in answers.values():
        assert REFUSED in stream or "not uploaded by a user" in stream, stream[:300]
        for leak in ("not found", "folder", "regular file", "not an image", "truncated", "Traceback", "root:",
                     "Cannot open", "Cannot read"):
            assert leak not in stream, (leak, stream[:300])


def test_uploaded_files_and_examples_are_read(app_url):
    kind, stream = call(app_url, "attention", [{"path": str(EXAMPLE)}, "demo_vit", "model", -1, -1, 0, "mean"])
    assert kind == "complete" and '"grid": [8, 8]' in stream
    client = Client(app_url, verbose=False)
    result = client.predict(handle_file(str(EXAMPLE)), "demo_vit", "model", -1, -1, 0, "mean", api_name="/attention")
    assert result["model"] == "demo_vit"


def test_upload_check_resolves_links_and_dots(tmp_path, monkeypatch):
    upload_root = tmp_path / "uploads"
    (upload_root / ("ab" * 20)).mkdir(parents=True)
    inside = upload_root / ("ab" * 20) / "photo.png"
    Image.new("RGB", (8, 8)).save(inside)
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(outside)
    (upload_root / "link.png").symlink_to(outside)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload_root))
    assert uploaded_path(str(inside)) == inside.resolve()
    assert uploaded_path({"path": str(inside)}) == inside.resolve()
    assert uploaded_path(str(EXAMPLE)) == EXAMPLE.resolve()
    for bad in (str(outside), str(upload_root / "link.png"), str(upload_root / ".." / "secret.png"),
                None, 3, {"path": None}, {"url": "http://x"}, "a" * 10_000):
        with pytest.raises(ValueError) as err:
            uploaded_path(bad)
        assert str(err.value) == REFUSED


# ---------------------------------------------------------------- 5. every argument checked

# (arguments, message, refused before the model runs: False for ranges only the shown model knows)
ARGUMENT_TABLE = [
    (dict(model="demo_swin"), r"cannot read demo_swin .*open it in: Explain, Swin windows, Position bias", True),
    (dict(model="demo_mae"), r"cannot read demo_mae .*open it in: MAE", True),
    (dict(model="demo_twins"), r"open it in: Twins", True),
    (dict(model="demo_navit"), r"open it in: NaViT", True),
    (dict(model="crossformer_tiny"), r"open it in: Position bias, CrossFormer", True),
    (dict(model="mae_visualize_vit_base"), r"open it in: MAE", True),
    (dict(model="x" * 5000), r"Unknown model 'x{20,40}…", True),
    (dict(geometry="sideways"), r"geometry must be one of model, native", True),
    (dict(fusion="evil"), r"fusion must be one of mean, max, min \(got 'evil'\)", True),
    (dict(head=-7), r"head must be a whole number from 0 to \d+, or -1 for the mean of heads \(got -7\)", True),
    (dict(head=-2), r"or -1 for the mean of heads \(got -2\)", True),
    (dict(query=-1), r"query must be a whole number from 0 to", True),
    (dict(query=-1000000), r"query must be a whole number", True),
    (dict(layer=1.5), r"layer must be a whole number.*\(got 1.5\)", True),
    (dict(layer="1"), r"layer must be a whole number.*\(got '1'\)", True),
    (dict(head=3), r"head \(Demo ViT.*\) must be a whole number from 0 to 2", False),
    (dict(query=65), r"query \(Demo ViT.*65 tokens\) must be a whole number from 0 to 64", False),
    (dict(layer=6), r"layer \(Demo ViT.*\) must be a whole number from 0 to 5, or -1 for the last layer", False),
]


def attention_kwargs(**changes) -> dict:
    return dict(dict(model="demo_vit", geometry="model", layer=-1, head=-1, query=0, fusion="mean"), **changes)


@pytest.mark.parametrize("changes, message, before_load", ARGUMENT_TABLE, ids=[str(c)[:30] for c, _, _ in ARGUMENT_TABLE])
def test_bad_arguments_get_one_clear_message_before_any_model_loads(app, changes, message, before_load, caplog,
                                                                    monkeypatch):
    from explorer.lenses.attention import tab

    client = Client(app.url, verbose=False)
    if before_load:  # the server runs in this process: any model run now fails the test
        monkeypatch.setattr(tab, "analysis_for", lambda *a, **k: pytest.fail("the model ran"))
    args = attention_kwargs(**changes)
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(EXAMPLE)), *args.values(), api_name="/attention")
    text = str(err.value)
    assert re.search(message, text), text
    assert re.search(r"[\u4e00-\u9fff]", text), "the message comes in Chinese too"
    assert "Traceback" not in text and "the model ran" not in text
    assert len(text) < 1500, "user input echoed unbounded"
    assert "x" * 100 not in caplog.text


def test_the_server_keeps_serving_after_bad_arguments(app):
    client = Client(app.url, verbose=False)
    result = client.predict(handle_file(str(EXAMPLE)), *attention_kwargs(head=2, query=64).values(),
                            api_name="/attention")
    assert result["num_heads"] == 3 and len(result["attention"]) == 8


# ------------------------------------------------------------ 2-3. memory and disk, measured


def big_png(path: Path, side: int = 8000) -> Path:
    """A 64 MP PNG of a few hundred KB: cheap to send, 192 MB once decoded."""
    picture = Image.new("RGB", (side, side), (20, 30, 60))
    ImageDraw.Draw(picture).ellipse([side // 4, side // 4, 3 * side // 4, 3 * side // 4], fill=(230, 200, 40))
    picture.save(path, compress_level=1)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("public-server")
    process = start_app_process(folder / "gradio", folder / "app.log")
    try:
        yield process
    finally:
        process.stop()


def test_sessions_keep_a_bounded_working_copy_of_a_64_mp_upload(server, tmp_path):
    big = big_png(tmp_path / "big.png")
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64), "white").save(small)
    clients = [Client(server.url, verbose=False) for _ in range(6)]
    clients[0].predict(handle_file(str(small)), "en", api_name="/upload_image")  # decoders warm
    before = server.rss_mb()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak.append(server.rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    infos: list[str] = []
    threads = [threading.Thread(target=lambda c=c: infos.append(
        c.predict(handle_file(str(big)), "en", api_name="/upload_image"))) for c in clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        done.set()
        sampler.join()
    time.sleep(0.5)
    after = server.rss_mb()
    print(f"\nserver RSS: {before:.0f} MiB before, peak {max(peak):.0f} MiB, {after:.0f} MiB after "
          f"six sessions each holding a 64 MP upload")
    assert len(infos) == 6
    assert all(f"{WORKING_SIDE}×{WORKING_SIDE}" in info and "8000×8000" in info for info in infos), infos[0]
    # Six full decodes kept would be 6 × 192 MB; six working copies are 6 × 12.6 MB.
    assert after - before < 300, f"RSS grew by {after - before:.0f} MiB"
    # Large decodes take turns: two at once alone would add ~800 MB.
    assert max(peak) - before < 900, f"RSS peaked {max(peak) - before:.0f} MiB above the start"


def test_a_normal_request_is_answered_while_big_images_decode(server, tmp_path):
    big = big_png(tmp_path / "big2.png")
    slow = [Client(server.url, verbose=False) for _ in range(3)]
    jobs = [c.submit(handle_file(str(big)), "en", api_name="/upload_image") for c in slow]
    time.sleep(0.3)
    start = time.perf_counter()
    result = Client(server.url, verbose=False).predict(handle_file(str(EXAMPLE)), *attention_kwargs().values(),
                                                       api_name="/attention")
    waited = time.perf_counter() - start
    for job in jobs:
        job.result(timeout=300)
    print(f"\n/attention answered in {waited:.2f} s while three 64 MP uploads decoded")
    assert result["grid"] == [8, 8]
    assert waited < 8


def test_page_bounds_sessions_and_uploads():
    from explorer.ui import page

    demo = page.build_demo()
    states = [b for b in demo.blocks.values() if type(b).__name__ == "State" and b.time_to_live != float("inf")]
    assert states and all(s.time_to_live == page.SESSION_TTL_S for s in states)
    assert demo.delete_cache == (min(600, page.UPLOAD_TTL_S // 4), page.UPLOAD_TTL_S)
    kwargs = page.launch_kwargs()
    from explorer.core.uploaded import MAX_CHECKPOINT_BYTES

    # the upload route takes the larger of the two; each kind then checks its own bound
    assert kwargs["max_file_size"] == max(page.MAX_UPLOAD_BYTES, MAX_CHECKPOINT_BYTES)
    assert kwargs["state_session_capacity"] == page.MAX_SESSIONS


def test_sweep_deletes_only_old_gradio_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    old_dir, new_dir, other = tmp_path / ("a1" * 20), tmp_path / ("b2" * 20), tmp_path / "my-notes"
    for folder in (old_dir, new_dir, other):
        folder.mkdir()
        (folder / "file.png").write_bytes(b"x")
    past = time.time() - 7200
    for path in (old_dir / "file.png", other / "file.png"):
        os.utime(path, (past, past))
    assert sweep_uploads(3600) == 1
    assert not old_dir.exists() and (new_dir / "file.png").exists() and (other / "file.png").exists()


SHORT_LIVED_CHECKPOINT_MB = 60  # over the 50 MB of an image: the route's limit is the checkpoints'


@pytest.fixture(scope="module")
def short_lived_server(tmp_path_factory):
    """Uploads live 3 s; a stale upload of an 'earlier run' waits in the folder."""
    folder = tmp_path_factory.mktemp("short-lived")
    temp = folder / "gradio"
    stale = temp / ("c3" * 20) / "stale.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old upload")
    past = time.time() - 10
    os.utime(stale, (past, past))
    process = start_app_process(temp, folder / "app.log", EXPLORER_UPLOAD_TTL="3",
                                EXPLORER_MAX_CHECKPOINT_MB=str(SHORT_LIVED_CHECKPOINT_MB))
    process.stale = stale
    try:
        yield process
    finally:
        process.stop()


def test_uploads_are_deleted_as_they_age_and_at_start(short_lived_server, tmp_path):
    server = short_lived_server
    assert not server.stale.exists(), "an earlier run's upload survived the restart"
    picture = tmp_path / "fresh.png"
    Image.new("RGB", (32, 32), "red").save(picture)
    uploaded = httpx.post(f"{server.url}gradio_api/upload", files={"files": picture.open("rb")}).json()[0]
    assert Path(uploaded).is_file() and Path(uploaded).is_relative_to(server.temp_dir)
    deadline = time.time() + 15
    while Path(uploaded).exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not Path(uploaded).exists(), "the upload outlived its time to live"


def test_uploads_over_the_limit_are_refused(short_lived_server):
    response = httpx.post(f"{short_lived_server.url}gradio_api/upload",
                          files={"files": ("big.png", b"\0" * (SHORT_LIVED_CHECKPOINT_MB * 2**20 + 1))}, timeout=60)
    assert response.status_code == 413, response.text[:200]


def test_an_image_over_its_own_limit_is_refused_and_not_kept(tmp_path, monkeypatch):
    """The route takes checkpoints' sizes; an image that big is refused and deleted at once."""
    from explorer.core.images import MAX_FILE_BYTES
    from explorer.ui.uploads import open_uploaded_image

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    big = tmp_path / ("d4" * 20) / "big.png"
    big.parent.mkdir()
    big.write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ImageInputError, match="the limit is 50 MB"):
        open_uploaded_image(str(big))
    assert not big.exists() and not big.parent.exists()


# ------------------------------------------------------------ 4. broken checkpoints, truthfully


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def broken_checkpoints(tmp_path_factory) -> Path:
    """The bundled demos, a pickled-code ViT-S/16 file and a truncated demo Swin."""
    folder = tmp_path_factory.mktemp("checkpoints")
    for path in CHECKPOINT_DIR.glob("demo_*"):
        shutil.copy(path, folder)
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Evil()},
               folder / "vit_small_patch16_224.augreg_in21k_ft_in1k.pth")
    swin = folder / "demo_swin.safetensors"
    swin.write_bytes(swin.read_bytes()[:1000])
    return folder


def test_models_command_checks_every_file_it_lists(broken_checkpoints):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "explorer", "models"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "EXPLORER_CHECKPOINTS": str(broken_checkpoints),
                                                      "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    vit = lines[[i for i, line in enumerate(lines) if line.startswith("vit_small_patch16_224.augreg")][0] + 1]
    assert "BROKEN" in vit and "pickled" in vit and "arbitrary code" in vit
    swin = lines[[i for i, line in enumerate(lines) if line.startswith("demo_swin ")][0] + 1]
    assert "BROKEN" in swin and "not a readable checkpoint" in swin
    demo_vit = lines[[i for i, line in enumerate(lines) if line.startswith("demo_vit ")][0] + 1]
    assert "on disk" in demo_vit and "BROKEN" not in demo_vit
    assert "2 weight file(s) on disk cannot be used" in out.stderr


@pytest.mark.browser
def test_page_falls_back_from_a_broken_checkpoint_and_says_why(broken_checkpoints, tmp_path, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    from app_server import CHROMIUM_ARGS

    server = start_app_process(tmp_path / "gradio", tmp_path / "app.log",
                               EXPLORER_CHECKPOINTS=str(broken_checkpoints))
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900})
            page = context.pages[0]
            page.set_default_timeout(30_000)
            page.goto(server.url)
            page.wait_for_selector("#att-query-plot .js-plotly-plot svg.main-svg", timeout=90_000)
            page.locator("#att-model input[role=combobox]").click()
            page.get_by_role("option", name="ViT-S/16 (AugReg, IN-21k → IN-1k)", exact=True).click()
            banner = page.locator("#att-banner")
            expect(banner).to_contain_text("Showing the bundled Demo ViT")
            text = banner.inner_text()
            assert "vit_small_patch16_224.augreg_in21k_ft_in1k.pth contains pickled Python objects" in text
            assert "downloads are off" in text and "LocalEntryNotFoundError" not in text
            assert page.locator(".toast-body").count() == 0
            # the corrupt demo Swin: the Swin tab says so and shows random weights instead
            page.get_by_role("tab", name="Swin windows").click()
            expect(page.locator("#swin-banner")).to_contain_text("RANDOM", timeout=90_000)
            assert "demo_swin.safetensors is not a readable checkpoint" in page.locator("#swin-banner").inner_text()
            page.get_by_label("简体中文").check()
            expect(page.locator("#swin-banner")).to_contain_text("不是可读取的检查点", timeout=30_000)
            context.close()
        log = (tmp_path / "app.log").read_text()
        assert "this must never run" not in log
    finally:
        server.stop()


@pytest.mark.parametrize("seed", [-1e30, -1, 2**40, 0.5, float("nan")])
def test_page_seeds_are_checked_before_a_model_loads(seed, monkeypatch):
    """The MAE, NaViT and DINO seed boxes: one message with the range, never an overflow."""
    from explorer.core.arguments import ArgumentError
    from explorer.core.images import load_image
    from explorer.lenses.dino.tab import Controls as DinoControls
    from explorer.lenses.mae.tab import Controls as MAEControls
    from explorer.lenses.navit.tab import Controls as NaViTControls

    for module in ("explorer.lenses.mae.tab", "explorer.lenses.navit.tab"):
        monkeypatch.setattr(f"{module}.lens_model", lambda *a, **k: pytest.fail("a model was loaded"))
    image = load_image(EXAMPLE)
    mae = MAEControls(image, "demo_mae", False, "random", 0.75, seed, False, None, "zh")
    navit = NaViTControls(image, "demo_navit", False, True, [], None, 64, 0.0, seed, None, "en")
    for controls in (mae, navit):
        with pytest.raises(ArgumentError, match=r"0 到 2147483647|0 to 2147483647"):
            controls.analysis()
    dino = DinoControls(image, "demo_dino", "native", False, None, 0.6, None, 8, seed, None, "en")
    with pytest.raises(ArgumentError, match=r"The seed must be a whole number from 0 to 2147483647"):
        dino.crop_settings()


def test_request_bodies_other_than_uploads_are_capped(app_url):
    from explorer.ui.limits import MAX_BODY_BYTES

    huge = {"data": [{"path": str(EXAMPLE)}, "x" * (MAX_BODY_BYTES + 10), "model", -1, -1, 0, "mean"]}
    response = httpx.post(f"{app_url}gradio_api/call/attention", json=huge, timeout=30)
    assert response.status_code == 413
    kind, stream = call(app_url, "attention", [{"path": str(EXAMPLE)}, "demo_vit", "model", -1, -1, 0, "mean"])
    assert kind == "complete"


def test_navit_counts_images_before_decoding_any(monkeypatch):
    from explorer.lenses.navit import tab
    from explorer.lenses.navit.compute import MAX_IMAGES

    monkeypatch.setattr(tab, "open_uploaded_image", lambda path: pytest.fail("decoded before counting"))
    controls = tab.Controls(None, "demo_navit", False, False, [], [str(EXAMPLE)] * (MAX_IMAGES + 1), 64, 0.0, 0,
                            None, "en")
    with pytest.raises(ValueError, match=f"{MAX_IMAGES}"):
        controls.pictures()


def test_gallery_index_must_be_one_the_page_offered():
    from explorer.ui.page import load_upload

    with pytest.raises(Exception, match="not uploaded"):
        load_upload(None, lang="en", example=True)


@pytest.mark.parametrize("api, data", [
    ("swin", ["demo_swin", "model", ""]), ("crossformer", ["demo_crossformer", "model", ""]),
    ("twins", ["demo_twins", "model", ""]), ("dino", ["demo_dino", "native", 0.6, ""]),
    ("mae", ["demo_mae", 0.75, "random", 0, ""])])
def test_every_lens_endpoint_reads_only_uploads(app_url, api, data):
    for path in ("/etc/hostname", str(REPO_ROOT / "README.md"), "/no/such.png"):
        kind, stream = call(app_url, api, [{"path": path}, *data])
        assert kind == "error" and REFUSED in stream, (api, path, stream[:200])
    kind, stream = call(app_url, "navit", [[{"path": "/etc/hostname"}], "demo_navit", 64, 0.0, 0, ""])
    assert kind == "error" and REFUSED in stream


def test_a_repeated_picture_is_written_once_where_gradio_caches_that_content(tmp_path, monkeypatch):
    """Gradio rewrites a PIL output's cache file on every reply that repeats it, and a browser still
    fetching the file gets it cut short (h11: "Too little data for declared Content-Length")."""
    import os

    from gradio import processing_utils
    from PIL import Image

    from explorer.ui.widgets import picture_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    picture = Image.new("RGB", (40, 30), (200, 30, 60))
    first = picture_file(picture)
    inode = os.stat(first).st_ino
    assert picture_file(picture.copy()) == first and os.stat(first).st_ino == inode  # not rewritten
    assert Path(first).parent.name == processing_utils.hash_file(first)  # Gradio's own cache path for it
    assert Path(first).parent.parent == tmp_path and not list(tmp_path.rglob("*.part"))
    assert Image.open(first).size == (40, 30)
    assert picture_file(Image.new("RGB", (40, 30))) != first


def test_a_picture_handed_out_again_is_made_young_for_the_cache_cleaning(tmp_path, monkeypatch):
    import os

    from PIL import Image

    from explorer.ui.widgets import picture_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    path = picture_file(Image.new("RGB", (8, 8), (1, 2, 3)))
    os.utime(path, (1_000_000, 1_000_000))  # written long ago
    assert picture_file(Image.new("RGB", (8, 8), (1, 2, 3))) == path
    assert os.stat(path).st_mtime > 1_000_000  # Gradio ages by ctime, which the touch renews too
