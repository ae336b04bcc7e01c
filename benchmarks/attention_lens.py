"""Attention lens speed and memory, printed as measured ratios (not a pass/fail test).

For ViT-S/16 and ViT-B/16 at 224 px: one bare ``model(x)`` forward vs one full analysis (all
views: capture, rollout ×3 fusions, mean distance, position similarity, shape table), the
figure-building time, the server-side time of a slider change (cache hit + redraw), and the
peak RSS with both models loaded; and the time from a model's name to its first figure, for a zoo
key and a timm name outside the zoo. Weights do not change the timings, so random init is used
when no weights are on disk. Run: ``.venv/bin/python benchmarks/attention_lens.py``.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # forward_counter

import torch  # noqa: E402

from forward_counter import counting, forward_count  # noqa: E402
from explorer.core.images import load_image  # noqa: E402
from explorer.core.preprocess import preprocess  # noqa: E402
import explorer.core.weights as weights  # noqa: E402
from explorer.core.weights import get_model  # noqa: E402
from explorer.core.zoo import REPO_ROOT  # noqa: E402
from explorer.lenses.attention.compute import analyze  # noqa: E402
from explorer.lenses.attention.tab import analysis_for, slider_figures, static_outputs  # noqa: E402

# (model, picture): the bundled demo on a synthetic shape, the hub ViTs on a photo
MODELS = (("demo_vit", "synthetic/star.png"),
          ("vit_small_patch16_224.augreg_in21k_ft_in1k", "examples/chelsea.jpg"),
          ("vit_base_patch16_224.augreg_in21k_ft_in1k", "examples/chelsea.jpg"))
REPEATS = 7


def median_seconds(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up (first-call allocations, oneDNN kernels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_medians(first, second, repeats: int = REPEATS) -> tuple[float, float]:
    """Medians of two functions timed alternately, so that any other load on the machine
    weighs on both alike and the ratio stays meaningful."""
    first(), second()
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)



def report_lens(name: str, loaded, x: torch.Tensor, lens: str, analyse, redraw) -> None:
    """Print one lens's bare forward vs full analysis (timed alternately) and the time of a
    control change (``redraw``, from the cache) with the model runs it caused."""
    def bare():
        with torch.inference_mode():
            loaded.model(x)

    t_bare, t_analysis = paired_medians(bare, analyse)
    with counting():  # counted only here: the counting hook must not weigh on the timed passes
        before = forward_count()
        t_redraw = median_seconds(redraw)
        reruns = forward_count() - before
    print(f"{name} [{loaded.source} weights] input {tuple(x.shape)}")
    print(f"  bare forward             {t_bare * 1e3:8.1f} ms")
    print(f"  full {lens + ' analysis':19s} {t_analysis * 1e3:8.1f} ms   ratio {t_analysis / t_bare:.2f}x (target <= 1.5x)")
    print(f"  control change (redraw)  {t_redraw * 1e3:8.1f} ms   model re-runs: {reruns}\n")

def architectures_without_stand_ins() -> None:
    """Measure the hub architectures themselves even without their weights (speed does not depend
    on them): offline, the app would show the bundled demo of the family in their place."""
    weights.stand_in_for = lambda entry: None


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    architectures_without_stand_ins()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {REPEATS} runs "
          f"(bare and full analysis timed alternately)\n")
    for key, picture in MODELS:
        image = load_image(REPO_ROOT / "assets" / picture)
        loaded = get_model(key, allow_download=False)
        x = preprocess(image.image, loaded.data_config, "model", loaded.patch_size).tensor

        def bare():
            with torch.inference_mode():
                loaded.model(x)

        t_bare, t_analysis = paired_medians(bare, lambda: analyze(loaded, image, "model"))
        _, analysis = analysis_for(image, key, "model", False)
        t_figures = median_seconds(lambda: (static_outputs(loaded, analysis, 0, "en"),
                                            slider_figures(analysis, 3, 1, 0, "mean", "Viridis", "en")))
        layers = iter(range(10**6))

        def slider_change():
            layer = next(layers) % analysis.num_layers
            _, cached = analysis_for(image, key, "model", False)
            slider_figures(cached, layer, layer % analysis.num_heads, 5, "max", "Magma", "en")

        with counting():
            before = forward_count()
            t_slider = median_seconds(slider_change, repeats=20)
            reruns = forward_count() - before
        print(f"{loaded.entry.label_en}  [{loaded.source} weights]  input {tuple(x.shape)}")
        print(f"  bare forward            {t_bare * 1e3:8.1f} ms")
        print(f"  full analysis           {t_analysis * 1e3:8.1f} ms   ratio {t_analysis / t_bare:.2f}x (target <= 1.5x)")
        print(f"  figure building (all)   {t_figures * 1e3:8.1f} ms")
        print(f"  slider change (server)  {t_slider * 1e3:8.1f} ms   (target <= 50 ms), model re-runs: {reruns}")
        print(f"  cached analysis size    {sum(a.nbytes for a in (analysis.attention,)) / 2**20:8.1f} MiB of attention\n")
    comparing_two_models()
    opening_by_name()
    opening_uploaded()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS over the run (the model cache keeps 2 loaded): {peak:.0f} MiB")


def comparing_two_models(repeats: int = 20) -> None:
    """The server time of a layer/head change in the Attention tab with a second model side by
    side (ViT-S/16 vs DeiT-S/16, both analysed once), against the first model alone: both maps
    are redrawn from the cached analyses, and no model runs again."""
    from explorer.lenses.attention import tab

    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    first, second = "vit_small_patch16_224.augreg_in21k_ft_in1k", "deit_small_patch16_224.fb_in1k"
    layers = iter(range(10**6))

    def controls(compare: str):
        layer = next(layers) % 12
        return tab.Controls(image, first, "model", False, layer, layer % 6, "mean", "Viridis", False, {"query": 30},
                            compare, "en")

    tab.run_analysis(controls(second))  # each model runs once for this image
    with counting():
        before = forward_count()
        alone = median_seconds(lambda: tab.redraw(controls("")), repeats=repeats)
        both = median_seconds(lambda: tab.redraw(controls(second)), repeats=repeats)
        reruns = forward_count() - before
    print(f"a layer/head change in the Attention tab, {first} alone: {alone * 1e3:.1f} ms; with {second} side by "
          f"side: {both * 1e3:.1f} ms ({both / alone:.2f}x; target <= 50 ms), model re-runs: {reruns}\n")


# A zoo entry and a timm name outside the zoo (another tag of the same architecture): opening
# either is a name lookup, building the model and one analysis, so their times should match.
BY_NAME = (("vit_small_patch16_224.augreg_in21k_ft_in1k", "zoo key"), ("vit_small_patch16_224.augreg_in1k",
                                                                      "any timm name"))


def opening_by_name(repeats: int = 3) -> None:
    """Seconds from a model's name to its first figure (lens check, model built and loaded, one
    analysis, the attention figure), each time from empty caches, for a zoo key and a timm name."""
    from explorer.core.results import RESULTS
    from explorer.lenses.attention.figures import query_attention_figure
    from explorer.lenses.attention.tab import analysis_for

    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    times = {}
    for _ in range(repeats):
        for name, _kind in BY_NAME:
            weights._MODELS.clear()
            RESULTS.clear()
            start = time.perf_counter()
            _, analysis = analysis_for(image, name, "model", False)
            query_attention_figure(analysis, analysis.num_layers - 1, None, 0)
            times.setdefault(name, []).append(time.perf_counter() - start)
    print("time from a model's name to its first figure (empty caches, random init offline):")
    for name, kind in BY_NAME:
        print(f"  {kind:14s} {name:44s} {statistics.median(times[name]):6.2f} s (median of {repeats})")
    zoo, any_name = (statistics.median(times[name]) for name, _ in BY_NAME)
    print(f"  ratio any timm name / zoo key: {any_name / zoo:.2f}x (target <= 1.1x)\n")


def opening_uploaded(repeats: int = 3) -> None:
    """Seconds from a checkpoint uploaded in the page (a 10-class ViT-S/16 fine-tune, its
    architecture found from its keys) to its first figure, against the same file opened by its
    architecture's name (what ``--model … --weights FILE`` does): the difference is the search."""
    import tempfile

    from safetensors.torch import save_file

    from explorer.core.results import RESULTS, cached_analysis
    from explorer.core.uploaded import UPLOADS
    from explorer.core.zoo import get_entry
    from explorer.lenses.attention.figures import query_attention_figure
    from explorer.ui import own_model

    zoo_key = BY_NAME[0][0]
    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    with tempfile.TemporaryDirectory() as root:
        os.environ["GRADIO_TEMP_DIR"] = root  # where Gradio puts uploads
        path = Path(root) / ("ab" * 16) / "vit_s16_cifar10.safetensors"
        path.parent.mkdir()
        model = weights.build_model(get_entry(zoo_key), num_classes=10)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
        size = path.stat().st_size
        times: dict[str, list[float]] = {"named": [], "uploaded": []}
        found = []
        for _ in range(repeats):
            for how in times:
                weights._MODELS.clear()
                RESULTS.clear()
                start = time.perf_counter()
                if how == "uploaded":
                    record, _ = own_model.open_checkpoint(str(path), None, own_model.AUTO, "default", None,
                                                          session="bench", lang="en")
                    found.append(record["architecture"])
                    _, analysis = analysis_for(image, record["token"], "model", False)
                else:
                    _, analysis = cached_analysis("attention", image, zoo_key, "model", False, analyze,
                                                  weights_file=str(path))
                query_attention_figure(analysis, analysis.num_layers - 1, None, 0)
                times[how].append(time.perf_counter() - start)
        UPLOADS.drop_session("bench")
    named, uploaded = (statistics.median(times[how]) for how in ("named", "uploaded"))
    print(f"time from a {size / 2**20:.0f} MB checkpoint to its first figure (empty caches, median of {repeats}):")
    print(f"  by its architecture's name + the file  {named:6.2f} s")
    print(f"  uploaded, architecture found from its keys ({found[0]})  {uploaded:6.2f} s: "
          f"{uploaded / named:.2f}x, {uploaded - named:.2f} s for the search\n")


if __name__ == "__main__":
    main()
