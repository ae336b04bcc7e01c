"""Load on a public server, printed as measured figures (not a pass/fail test).

Starts ``python app.py`` (offline, bundled models) in its own process, then:
1. 8 concurrent gradio_client sessions, each running ROUNDS rounds of a mixed workload through
   the public API — an upload (``/upload_image``), the attention lens on the demo ViT (random
   layer/head/query/fusion) and on the demo DINO ViT, at the model's and the native geometry —
   and prints p50/p95 latency per kind and overall, and the throughput;
2. 500 distinct uploaded images analysed (8 sessions at once), printing the server's RSS every
   100: it must plateau (bounded result and model caches, bounded session images).

Run: ``.venv/bin/python benchmarks/load.py [--rounds 25] [--distinct 500] [--clients 8]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the same launcher the hosting tests use

import numpy as np  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from app_server import start_app_process  # noqa: E402

EXAMPLES = sorted((ROOT / "assets" / "synthetic").glob("*.png")) + sorted((ROOT / "assets" / "examples").glob("*.jpg"))


def noise_image(folder: Path, index: int, side: int = 160) -> Path:
    """A distinct picture per index (so every analysis is a cache miss)."""
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    path = folder / f"distinct-{index:04d}.png"
    Image.fromarray(pixels).save(path)
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def mixed_round(client: Client, rng: random.Random, folder: Path, index: int) -> list[tuple[str, float]]:
    """One round of what a classroom does: upload, then look at it through two models."""
    timings = []

    def timed(kind: str, fn) -> None:
        start = time.perf_counter()
        fn()
        timings.append((kind, time.perf_counter() - start))

    picture = noise_image(folder, 100_000 + index) if rng.random() < 0.5 else rng.choice(EXAMPLES)
    timed("upload_image", lambda: client.predict(handle_file(str(picture)), "en", api_name="/upload_image"))
    layer, head = rng.randint(-1, 5), rng.randint(-1, 2)
    query, fusion = rng.randint(0, 64), rng.choice(["mean", "max", "min"])
    timed("attention demo_vit", lambda: client.predict(handle_file(str(picture)), "demo_vit", "model", layer, head,
                                                       query, fusion, api_name="/attention"))
    timed("attention demo_dino native", lambda: client.predict(handle_file(str(picture)), "demo_dino", "native", -1,
                                                               rng.randint(-1, 3), 0, "mean", api_name="/attention"))
    return timings


def run_concurrently(clients: list[Client], work) -> float:
    """``work(i, client)`` in one thread per client; returns the wall time."""
    errors: list[BaseException] = []

    def run(i: int, client: Client) -> None:
        try:
            work(i, client)
        except BaseException as err:  # reported after the threads end
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=25, help="mixed rounds per client")
    parser.add_argument("--distinct", type=int, default=500, help="distinct uploads for the RSS plateau")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="vit-explorer-load-"))
    server = start_app_process(folder / "gradio", folder / "app.log")
    try:
        clients = [Client(server.url, verbose=False) for _ in range(args.clients)]
        mixed_round(clients[0], random.Random(0), folder, -1)  # models loaded, caches warm
        rss_start = server.rss_mb()
        print(f"server: python app.py, pid {server.pid}, RSS {rss_start:.0f} MiB after warm-up")

        timings: dict[str, list[float]] = defaultdict(list)
        lock = threading.Lock()

        def rounds(i: int, client: Client) -> None:
            rng = random.Random(i)
            for r in range(args.rounds):
                for kind, seconds in mixed_round(client, rng, folder, i * 1000 + r):
                    with lock:
                        timings[kind].append(seconds)

        wall = run_concurrently(clients, rounds)
        every = [s for values in timings.values() for s in values]
        print(f"\n{args.clients} clients x {args.rounds} mixed rounds: {len(every)} requests in {wall:.1f} s "
              f"= {len(every) / wall:.1f} requests/s")
        print(f"{'request':32s} {'n':>5s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
        for kind, values in sorted(timings.items()) + [("all", every)]:
            print(f"{kind:32s} {len(values):5d} {1000 * percentile(values, 50):8.0f} "
                  f"{1000 * percentile(values, 95):8.0f} {1000 * max(values):8.0f}")

        print(f"\n{args.distinct} distinct uploads, each analysed by the demo ViT ({args.clients} clients):")
        done = [0]
        marks = {}
        step = max(1, args.distinct // 5)

        def distinct(i: int, client: Client) -> None:
            for index in range(i, args.distinct, args.clients):
                picture = noise_image(folder, index)
                client.predict(handle_file(str(picture)), "en", api_name="/upload_image")
                client.predict(handle_file(str(picture)), "demo_vit", "model", -1, -1, 0, "mean", api_name="/attention")
                picture.unlink()
                with lock:
                    done[0] += 1
                    if done[0] % step == 0:
                        marks[done[0]] = server.rss_mb()

        wall = run_concurrently(clients, distinct)
        for count, rss in sorted(marks.items()):
            print(f"  after {count:4d}: RSS {rss:6.0f} MiB")
        print(f"  {args.distinct} uploads + analyses in {wall:.1f} s; RSS {rss_start:.0f} -> {server.rss_mb():.0f} MiB; "
              f"growth over the second half {marks[max(marks)] - marks[sorted(marks)[len(marks) // 2]]:+.0f} MiB")
        median_ms = 1000 * statistics.median(timings["attention demo_vit"])
        print(f"\nfor comparison: the attention request alone, median {median_ms:.0f} ms under load")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
