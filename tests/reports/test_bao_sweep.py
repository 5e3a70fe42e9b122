"""``python -m reports.bao_sweep --quick``: linear Fashion-MNIST BYOL at 0.3 and 3 x eta_c.

What the flows predict and the quick runs must show (docs/theory.md (D16), (D9)): above eta_c the
L2 (eq. 1) run's W decays towards 0 (the L2 ODE keeps no mode: measured ||W|| end/start 5e-10)
while the cosine run's W keeps its scale (measured 0.15: SGD on a scale-free loss holds its norm)
and a non-empty normalised spectrum; below eta_c the L2 run keeps the modes the closed form
counts. Trains 5 small runs (minutes on a loaded 2-core machine).
"""

import json

import pytest

from reports import bao_sweep


@pytest.mark.slow
def test_quick_sweep_collapses_l2_above_eta_c_and_not_cosine(tmp_path):
    assert bao_sweep.main(["--out", str(tmp_path), "--quick"]) == 0
    runs = json.loads((tmp_path / "provenance.json").read_text())["runs"]
    eta_c = json.loads((tmp_path / "provenance.json").read_text())["eta_c"]
    by = {(r["loss"], r["weight_decay"] > eta_c): r for r in runs}
    l2_above, cos_above = by[("linear_byol", True)], by[("byol", True)]
    l2_below = by[("linear_byol", False)]
    assert l2_above["predicted_l2"] == 0 and l2_above["alive_absolute"] == 0
    assert l2_above["norm_ratio"] < 1e-4
    assert cos_above["norm_ratio"] > 1e-2
    assert cos_above["alive_normalised"] >= 1
    assert l2_below["predicted_l2"] >= 1
    assert l2_below["alive_absolute"] == l2_below["predicted_l2"]
    assert (tmp_path / "bao_sweep.md").read_text().count("| byol |") == 2
