"""``export swin|crossformer|twins --step LAYER HEAD QUERY`` on the bundled demos: the step's
arrays beside the lens's own, consistent with each other and with the lens's captured
probabilities (the arithmetic itself is pinned in test_step.py), and a clear refusal out of range."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.cli import main

IMAGE = "assets/examples/chelsea.jpg"


@pytest.mark.parametrize("lens, model, step", [
    ("swin", "demo_swin", (1, 0, 5)),  # a shifted block
    ("crossformer", "demo_crossformer", (1, 1, 3)),  # an LDA block
    ("twins", "demo_twins", (1, 0, 2)),  # a GSA block
])
def test_export_writes_the_steps_arrays(tmp_path, capsys, lens, model, step):
    out = tmp_path / "step.npz"
    assert main(["export", lens, "--model", model, "--image", IMAGE, "--step", *map(str, step), "--out", str(out)]) == 0
    assert "stepped = the block's own values to" in capsys.readouterr().out
    with np.load(out) as d:
        n, dh = d["step_k"].shape
        assert d["step_v"].shape == (n, dh) and d["step_q"].shape == d["step_out"].shape == (dh,)
        for name in ("step_logits", "step_bias", "step_mask", "step_probs"):
            assert d[name].shape == (n,)
        p = d["step_probs"]
        assert p.sum() == pytest.approx(1, abs=1e-5)
        # softmax of the parts, and the output as Σ p·v, from the written arrays alone
        z = d["step_logits"] + d["step_bias"] + d["step_mask"]
        np.testing.assert_allclose(p, np.exp(z - z.max()) / np.exp(z - z.max()).sum(), atol=1e-5)
        np.testing.assert_allclose(d["step_out"], p @ d["step_v"], atol=1e-5)


def test_a_step_out_of_range_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(SystemExit, match="--step: layer 99 is out of range"):
        main(["export", "swin", "--model", "demo_swin", "--image", IMAGE, "--step", "99", "0", "0",
              "--out", str(tmp_path / "x.npz")])
