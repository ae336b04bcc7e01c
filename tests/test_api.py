"""The public gradio_client API of the running app: ``/attention`` and ``/upload_image``.

The server runs in this process (see conftest.py), so these tests can count model forward
passes with ``forward_counter.forward_count()``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from forward_counter import forward_count

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def example_image() -> Path:
    from explorer.ui.widgets import example_paths

    paths = example_paths()
    if not paths:
        pytest.fail("no example images in assets/: the page would open empty")
    return Path(paths[0])


def attention(client: Client, image: Path, model: str, geometry: str = "model", layer: int = -1,
              head: int = -1, query: int = 0, fusion: str = "mean") -> dict:
    return client.predict(handle_file(str(image)), model, geometry, layer, head, query, fusion,
                          api_name="/attention")


def maps(result: dict) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(result["attention"], dtype=np.float64),
            np.asarray(result["rollout"], dtype=np.float64))


def test_attention_on_example(client, app, example_image):
    facts = app.model
    result = attention(client, example_image, facts.key)

    assert result["model"] == facts.key
    assert result["weights"] == facts.source
    assert tuple(result["grid"]) == facts.grid
    assert (result["num_layers"], result["num_heads"]) == (facts.num_layers, facts.num_heads)
    assert len(result["image_digest"]) == 64

    att, rollout = maps(result)
    assert att.shape == facts.grid and rollout.shape == facts.grid
    assert np.isfinite(att).all() and np.isfinite(rollout).all()
    assert att.min() >= 0 and rollout.min() >= 0
    # One softmax row restricted to the patches (the CLS column is left out): at most 1.
    assert 0 < att.sum() <= 1 + 1e-4
    # Rollout rows are products of row-stochastic matrices: the CLS row over the patches <= 1.
    assert 0 < rollout.sum() <= 1 + 1e-4

    shapes = result["shapes"]
    height, width = facts.input_size
    assert shapes[0][0] == "input"
    assert shapes[0][1] == f"(B, 3, {height}, {width})"
    names = [row[0] for row in shapes]
    assert "patch_embed" in names
    assert f"(B, {facts.grid[0] * facts.grid[1]}," in dict((r[0], r[1]) for r in shapes)["patch_embed"]
    assert any(n.startswith("blocks 0–") for n in names)

    predictions = result["predictions"]
    assert len(predictions) <= 5
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)


def test_other_options_do_not_rerun_the_model(client, app, example_image):
    facts = app.model
    base = attention(client, example_image, facts.key)  # cached by now, or computed once here
    count = forward_count()
    base_att, base_rollout = maps(base)

    other = attention(client, example_image, facts.key, layer=0, head=facts.num_heads - 1,
                      query=facts.num_prefix_tokens + 3, fusion="max")
    same_again = attention(client, example_image, facts.key)

    assert forward_count() == count, "changing layer/head/query/fusion re-ran the model"
    other_att, other_rollout = maps(other)
    assert other["image_digest"] == base["image_digest"]
    assert not np.allclose(other_att, base_att), "layer/head/query did not change the attention map"
    assert not np.allclose(other_rollout, base_rollout), "query/fusion did not change the rollout map"
    assert np.array_equal(maps(same_again)[0], base_att)
    assert np.array_equal(maps(same_again)[1], base_rollout)


def test_two_clients_at_once_get_their_own_results(app, session_images):
    """Two users, two different images, at the same time: no cross-talk between requests
    sharing the one cached model (the capture hooks write per request)."""
    from explorer.core.results import RESULTS

    facts = app.model
    layer, head = facts.num_layers // 2, 1
    pictures = [session_images.red_circle, session_images.blue_square]
    clients = [Client(app.url, verbose=False), Client(app.url, verbose=False)]

    alone = [attention(clients[0], p, facts.key, layer=layer, head=head) for p in pictures]
    assert alone[0]["image_digest"] != alone[1]["image_digest"]
    assert not np.allclose(maps(alone[0])[0], maps(alone[1])[0]), \
        "the two test images give the same map: cross-talk would go unnoticed"

    for round_ in range(4):
        # Empty the result cache so both requests really run the model, concurrently.
        RESULTS.clear()
        order = [0, 1] if round_ % 2 == 0 else [1, 0]
        before = forward_count()
        barrier = threading.Barrier(2)
        results: dict[int, dict] = {}
        errors: list[BaseException] = []

        def call(who: int) -> None:
            try:
                barrier.wait(timeout=30)
                job = clients[who].submit(handle_file(str(pictures[order[who]])), facts.key,
                                          "model", layer, head, 0, "mean", api_name="/attention")
                results[who] = job.result(timeout=120)
            except BaseException as err:  # reported below, in the test thread
                errors.append(err)

        threads = [threading.Thread(target=call, args=(who,)) for who in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        assert not errors, errors
        assert forward_count() - before == 2, "each image should be analysed exactly once"
        for who in (0, 1):
            expected = alone[order[who]]
            got = results[who]
            assert got["image_digest"] == expected["image_digest"], f"round {round_}: wrong image"
            assert np.allclose(maps(got)[0], maps(expected)[0], atol=1e-5), \
                f"round {round_}: client {who} got another request's attention"
            assert np.allclose(maps(got)[1], maps(expected)[1], atol=1e-5), \
                f"round {round_}: client {who} got another request's rollout"
            assert [p["index"] for p in got["predictions"]] == \
                [p["index"] for p in expected["predictions"]]
            assert [p["probability"] for p in got["predictions"]] == pytest.approx(
                [p["probability"] for p in expected["predictions"]], abs=1e-6)


@pytest.mark.parametrize("which, message", [
    ("not_an_image", r"not an image"),
    ("truncated", r"truncated or corrupt"),
])
def test_bad_file_gives_clear_error_and_server_keeps_serving(client, app, images, example_image,
                                                             which, message):
    with pytest.raises(AppError, match=message) as info:
        attention(client, getattr(images, which), app.model.key)
    assert "Traceback" not in str(info.value)
    assert "try again" in str(info.value)

    good = attention(client, example_image, app.model.key)
    assert tuple(good["grid"]) == app.model.grid


def test_upload_image_endpoint(client, images):
    info = client.predict(handle_file(str(images.red_circle)), "en", api_name="/upload_image")
    assert "320×240" in info and "PNG" in info
    info_zh = client.predict(handle_file(str(images.blue_square)), "zh", api_name="/upload_image")
    assert "200×260" in info_zh and "模式" in info_zh
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(images.not_an_image)), "en", api_name="/upload_image")
    with pytest.raises(AppError, match="不完整或已损坏"):
        client.predict(handle_file(str(images.truncated)), "zh", api_name="/upload_image")


def test_explain_endpoint_mirrors_the_export(client, example_image):
    result = client.predict(handle_file(str(example_image)), "demo_vit", "model", "square", 4, "",
                            api_name="/explain")
    assert result["target"] == 1 and result["arrays"]["target"] == 1
    assert result["arrays"]["methods"] == ["attention", "rollout", "gae", "gradcam", "attnlrp", "random"]
    assert np.asarray(result["arrays"]["map_gae"]).shape == (8, 8)
    assert len(result["arrays"]["deletion_gradcam"]) == 5 and result["fastest_deletion"] in result["arrays"]["methods"]
    with pytest.raises(AppError, match="No class is named 'giraffe'"):
        client.predict(handle_file(str(example_image)), "demo_vit", "model", "giraffe", 4, "", api_name="/explain")
    with pytest.raises(AppError, match="Explain lens cannot read demo_mae"):
        client.predict(handle_file(str(example_image)), "demo_mae", "model", "", 4, "", api_name="/explain")
