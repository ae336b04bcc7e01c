"""`python -m explorer export attention` writes what the issue promises, without a browser."""

import subprocess
import sys

import numpy as np

from explorer.cli import main
from explorer.core.zoo import REPO_ROOT, entries_for


def test_export_attention_npz_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = entries_for(("vit",))[0]
    out = tmp_path / "att.npz"
    code = main(["export", "attention", "--model", entry.key, "--image",
                 str(REPO_ROOT / "assets" / "examples" / "chelsea.jpg"), "--out", str(out),
                 "--figures", str(tmp_path / "figs")])
    assert code == 0
    data = np.load(out)
    layers, heads, n, n2 = data["attention"].shape
    rows, cols = data["grid"]
    assert data["attention"].dtype == np.float32 and n == n2 == rows * cols + int(data["num_prefix_tokens"])
    assert data["logits"].ndim == 1
    np.testing.assert_allclose(data["attention"].sum(-1), 1, atol=1e-4)
    assert data["rollout_mean"].shape == (n, n) and data["mean_distance"].shape == (layers, heads)
    figs = tmp_path / "figs"
    assert {p.name for p in figs.iterdir()} >= {"attention.png", "rollout.png", "attention.html",
                                                 "matrix.html", "mean_distance.html", "plotly.min.js"}
    assert "cdn.plot.ly" not in (figs / "attention.html").read_text()


def test_bad_image_gives_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "explorer", "export", "attention", "--model",
                             entries_for(("vit",))[0].key, "--image", str(bad), "--out",
                             str(tmp_path / "x.npz")], capture_output=True, text=True,
                            cwd=REPO_ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_unknown_model(capsys):
    assert main(["export", "attention", "--model", "nope", "--image", "x.png", "--out", "x.npz"]) == 2
    assert "unknown model" in capsys.readouterr().err
