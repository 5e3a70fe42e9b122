"""symbolic.derivation, symbolic.matrix_forms: sympy vs autograd vs finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symbolic import derivation, losses, matrix_forms
from symbolic.derivation import AUTOGRAD_TOL, FINITE_DIFFERENCE_TOL

# Losses whose gradient flows only into some arguments: the others appear only under sg.
STOPPED = {
    "infonce": ["k", "queue"],
    "byol": ["z1", "z2"],
    "simsiam": ["z1", "z2"],
    "linear_byol": ["f2"],
}


def size_params(name, n, extra=None):
    hp = {}
    if name == "liu":
        hp = {"k": 3 if n == 3 else 2}  # N=3: one sample per part, after standardisation
    if name == "linear_byol":
        hp = {"eta": 0.25}
    hp.update(extra or {})
    return hp


def assert_gradient(name, n, d, hp, seed):
    der = derivation.derive(name, n, d, **hp)
    result = derivation.check(der, points=2, seed=seed)
    assert result.autograd_error <= AUTOGRAD_TOL, result
    assert result.finite_difference_error <= FINITE_DIFFERENCE_TOL, result
    assert der.stopped() == STOPPED.get(name, [])


@pytest.mark.parametrize("name", losses.names())
def test_sympy_gradient_matches_autograd_and_finite_differences(name):
    assert_gradient(name, 3, 2, size_params(name, 3), seed=11)


@pytest.mark.parametrize("name", ["linear_byol", "simsiam"])
def test_without_stop_gradient_the_target_is_differentiated(name):
    """Tian's Theorem 2 / Chen & He's Fig. 2 ablation: stop_gradient=False, every argument gets
    a gradient, checked against autograd and finite differences."""
    der = derivation.derive(name, 3, 2, stop_gradient=False)
    result = derivation.check(der, points=2, seed=14)
    assert result.autograd_error <= AUTOGRAD_TOL, result
    assert result.finite_difference_error <= FINITE_DIFFERENCE_TOL, result
    assert der.stopped() == []


def test_liu_with_parts_and_without_standardisation():
    assert_gradient("liu", 4, 2, {"k": 2, "standardize": False, "c_cov": 3.0}, seed=12)


@pytest.mark.slow
@pytest.mark.parametrize("name", losses.names())
def test_sympy_gradient_at_n4_d3(name):
    hp = size_params(name, 4)
    if name == "liu":
        hp["standardize"] = False  # the standardised Liu loss at N=4, d=3 takes ~30 s to derive
    assert_gradient(name, 4, 3, hp, seed=13)


def test_finite_differences_see_a_wrong_gradient():
    """The checks are not vacuous: a gradient off by a factor is caught by both."""
    der = derivation.derive("barlow_twins", 3, 2)
    rng = np.random.default_rng(0)
    arrays = derivation.sample_point(der.loss, 3, 2, rng)
    good = der.gradient(*arrays)
    wrong = [1.01 * g for g in good]
    fd = derivation.finite_difference_gradient(der, arrays)
    auto = derivation.autograd_gradient(der.loss, arrays, {})
    assert derivation.relative_error(good, fd) < 1e-8
    assert derivation.relative_error(wrong, fd) > 1e-3
    assert derivation.relative_error(wrong, auto) > 1e-3


def test_stop_gradient_is_zero_derivative_not_zero_value():
    der = derivation.derive("byol", 2, 2)
    assert all(g == 0 for g in der.gradients[2].ravel())
    # the target values still enter the gradient of the predictions
    target_symbols = set(der.symbols[2].ravel()) | set(der.symbols[3].ravel())
    assert der.gradients[0][0, 0].free_symbols & target_symbols


def test_exact_rational_constants_and_cache():
    der = derivation.derive("vicreg", 3, 2)
    assert derivation.derive("vicreg", 3, 2) is der
    consts = set().union(*(g.atoms(sp.Rational) for g in der.gradients[0].ravel()))
    assert not any(isinstance(c, sp.Float) for c in consts)
    # eps = 1e-4 appears exactly as 1/10000 inside the square roots
    assert sp.Rational(1, 10000) in der.expression.atoms(sp.Rational)


def test_invariance_gradient_is_exactly_the_closed_form():
    """Entry by entry, dL/dz1 = 2 (z1 - z2) / N exactly (no floating point involved)."""
    der = derivation.derive("invariance", 3, 2)
    z1, z2 = der.symbols
    for idx in np.ndindex(z1.shape):
        assert sp.expand(der.gradients[0][idx] - sp.Rational(2, 3) * (z1[idx] - z2[idx])) == 0


@pytest.mark.parametrize(
    "name, hp",
    [
        ("invariance", {}),
        ("linear_byol", {"eta": 0.3}),
        ("liu", {"k": 1}),
        ("liu", {"k": 3, "c_inv": 2.0}),
        ("spectral", {}),
        ("garrido_lc", {}),
        ("garrido_lnc", {}),
    ],
)
def test_closed_matrix_forms_match_entrywise_gradient(name, hp):
    checks = matrix_forms.check_forms(name, 3, 2, points=2, seed=5, **hp)
    assert checks
    for c in checks:
        assert c.error < 1e-12, (c.form.label, c.error)
        assert c.form.text.startswith(c.form.label + " = ")
        assert "=" in c.form.latex


def test_sympy_matrix_calculus_is_not_trusted():
    """sympy's MatrixSymbol calculus drops the weight decay of a sum of traces."""
    checks = {c.form.label: c for c in matrix_forms.check_forms("linear_byol", 3, 2, eta=0.3)}
    assert checks["dL/dW_p"].error < 1e-12  # the hand-written closed form is right ...
    assert checks["dL/dW_p"].sympy_calculus.startswith("DISAGREES")  # ... sympy's is not
    no_decay = {c.form.label: c for c in matrix_forms.check_forms("linear_byol", 3, 2, eta=0.0)}
    assert no_decay["dL/dW_p"].sympy_calculus.startswith("agrees")


def test_conservation_law_time_derivative():
    checks = {c.form.label: c for c in matrix_forms.check_forms("linear_byol", 4, 3)}
    assert checks["d/dt (W W^T - W_p^T W_p / alpha_p)"].error < 1e-12


def test_liu_gradient_through_fused_unbiased_standardisation():
    assert_gradient("liu", 3, 2, {"k": 1, "eps": 1e-3}, seed=15)
