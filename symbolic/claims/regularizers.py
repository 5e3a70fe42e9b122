"""Variance and covariance regularisers: VICReg's hinge (b), Barlow Twins vs VICReg (g)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symbolic import losses
from symbolic.claims.base import Verdict, claim, decide, formula_strings, rational_array, sqrt_bases
from symbolic.derivation import symbol_array
from symbolic.sympy_backend import SYMPY


def _seed_variance_term(ops, z, eps):
    """The seed's v(Z) = (1/d) sum_j max(0, 1 - sqrt(Var_b(z^j) + eps)), Var with 1/N."""
    n = z.shape[0]
    centred = z - ops.mean(z, axis=0, keepdims=True)
    std = ops.sqrt(ops.sum(centred * centred, axis=0) / n + eps)
    return ops.mean(ops.relu(1 - std))


def _hinge_factor(n: int, d: int, official: bool) -> sp.Expr:
    """dv/dz_{0,0} divided by the claimed -(z_00 - zbar_0)/(d N sigma_0), hinge active."""
    eps, sigma = sp.Symbol("epsilon", positive=True), sp.Symbol("sigma", positive=True)
    z = symbol_array("z", (n, d))
    if official:
        other = symbol_array("y", (n, d))
        # the official loss with only the variance term: mu [v(Z) + v(Z')]/2, mu = 1
        loss = losses.get("vicreg")(z, other, sim_coeff=0, std_coeff=1, cov_coeff=0, eps=eps)
        dv = 2 * sp.diff(loss, z[0, 0])
    else:
        dv = sp.diff(_seed_variance_term(SYMPY, z, eps), z[0, 0])
    dv = dv.replace(lambda e: isinstance(e, sp.Heaviside), lambda e: sp.S.One)  # active hinge
    (base,) = sqrt_bases(dv, eps)
    dv = dv.subs(base, sigma**2)  # sigma_0 = sqrt(Var_0 + eps) of the estimator in use
    mean = sp.Add(*z[:, 0]) / n
    claimed = -(z[0, 0] - mean) / (d * n * sigma)
    return sp.cancel(dv / claimed)


@claim("b", "VICReg variance-hinge gradient")
def vicreg_hinge_gradient(rng: np.random.Generator) -> Verdict:
    """(b) VICReg's hinge gradient dv/dz_bj = -(z_bj - zbar_j)/(d N sigma_j) (docs/theory.md (b)).

    The ratio of the derivative to the claimed expression, active hinge, for the seed's v(Z)
    (biased Var) and for the variance term of the official ``vicreg`` (unbiased Var, halved).
    """
    sizes = [(3, 2), (4, 3)]
    seed_factor = {f"N={n},d={d}": _hinge_factor(n, d, official=False) for n, d in sizes}
    official_factor = {(n, d): _hinge_factor(n, d, official=True) for n, d in sizes}
    general = all(f == 1 for f in seed_factor.values()) and all(
        f == 1 for f in official_factor.values()
    )
    conditional = all(f == 1 for f in seed_factor.values())
    # what the official denominator is: N / factor, compared with N - 1 for every size
    denominators = {(n, d): sp.nsimplify(n / f) for (n, d), f in official_factor.items()}
    n_sym = sp.Symbol("N")
    official_is_n_minus_1 = all(den == n - 1 for (n, d), den in denominators.items())
    den_text = "N - 1" if official_is_n_minus_1 else "(not of the form N - 1)"
    z_b, z_bar, d_sym, sigma = sp.symbols("z_bj zbar_j d sigma_j")
    official_form = -(z_b - z_bar) / (d_sym * (n_sym - 1) * sigma)
    corrected = (
        "True for the seed's estimator Var_b = (1/N) sum_b (z_bj - zbar_j)^2 (factor "
        f"{', '.join(str(v) for v in seed_factor.values())} at {', '.join(seed_factor)}): "
        "dv/dz_bj = -(z_bj - zbar_j)/(d N sigma_j), sigma_j = sqrt(Var_b + eps), for an active "
        "hinge (0 otherwise); gradient descent moves z_bj away from the mean. With the official "
        f"VICReg (unbiased Var, 1/(N-1)) the denominator is d ({den_text}) sigma_j: dv/dz_bj = "
        f"{sp.sstr(official_form)}, sigma_j = sqrt(Var_unbiased + eps), and the loss term "
        "mu [v(Z) + v(Z')]/2 contributes -mu (z_bj - zbar_j)/(2 d (N-1) sigma_j)."
    )
    texts, tex = formula_strings(official=official_form)
    return Verdict(
        claim=(
            "For a dimension j with active hinge (sigma_j < gamma), with "
            "v(Z) = (1/d) sum_j max(0, gamma - sqrt(Var_b(z^j) + eps)) and "
            "Var_b(z^j) = (1/N) sum_b (z_bj - zbar_j)^2: dv(Z)/dz_bj = "
            "-(z_bj - zbar_j)/(d N sigma_j), pushing z_bj away from the batch mean."
        ),
        source="docs/theory.md claim (b); VICReg (L7)",
        verdict=decide(general, conditional),
        condition="Var is the biased (1/N) estimator, as the seed defines it",
        corrected_statement=corrected,
        method=(
            "symbolic: sympy.diff of the seed's v(Z) (biased Var) and of symbolic.losses vicreg "
            "with only its variance term (official: unbiased Var, halved), Heaviside of the "
            "active hinge set to 1, sqrt(Var + eps) replaced by sigma, ratio to the claimed "
            "expression reduced with cancel; at N=3, d=2 and N=4, d=3"
        ),
        evidence={
            "seed_estimator_ratio": {k: str(v) for k, v in seed_factor.items()},
            "official_estimator_ratio": {
                f"N={n},d={d}": str(v) for (n, d), v in official_factor.items()
            },
            "official_denominator_over_d_sigma": {
                f"N={n},d={d}": str(v) for (n, d), v in denominators.items()
            },
        },
        formulas=texts,
        formulas_latex=tex,
    )


@claim("g", "Barlow Twins off-diagonal vs VICReg covariance")
def barlow_vicreg_ratio(rng: np.random.Generator) -> Verdict:
    """(g) Barlow Twins' off-diagonal term / VICReg's covariance term = d((N-1)/N)^2
    (docs/theory.md claim (g)).

    Exact ratios of the ``barlow_twins`` and ``vicreg`` terms on batch-normalised rational batches
    with Z^A = Z^B, at four (N, d).
    """
    ratios, claimed, errors = {}, {}, []
    for n, d in [(3, 2), (4, 3), (5, 2), (6, 4)]:
        raw = rational_array(rng, (n, d))
        z = losses.batch_standardize(SYMPY, raw, 0, unbiased=False)  # exactly batch-normalised
        barlow = losses.get("barlow_twins")
        off = barlow(z, z, lambd=1, eps=0) - barlow(z, z, lambd=0, eps=0)
        cov_both = losses.get("vicreg")(z, z, sim_coeff=0, std_coeff=0, cov_coeff=1)
        ratio = sp.nsimplify(sp.N(off / (cov_both / 2), 60), rational=True, tolerance=1e-45)
        ratios[(n, d)] = ratio
        claimed[(n, d)] = sp.Rational(d * (n - 1) ** 2, n**2)
        errors.append(abs(float(sp.N(off / (cov_both / 2) - claimed[(n, d)], 50))))
    general = all(ratios[k] == claimed[k] for k in ratios)
    corrected = (
        "True: with Z^A = Z^B = Z batch-normalised, Barlow's off-diagonal sum over VICReg's "
        "c(Z) is exactly d ((N-1)/N)^2 ("
        + ", ".join(f"N={n}, d={d}: {r}" for (n, d), r in ratios.items())
        + "). Against VICReg's whole covariance term c(Z) + c(Z') = 2 c(Z) the ratio is "
        "d ((N-1)/N)^2 / 2; the loss weights lambda = 0.0051 and nu = 1 multiply these."
    )
    return Verdict(
        claim=(
            "With Z^A = Z^B = Z batch-normalised, the Barlow Twins off-diagonal term "
            "sum_{i != j} [(Z^T Z/N)_ij]^2 and VICReg's covariance term "
            "(1/d) sum_{i != j} [(Z^T Z/(N-1))_ij]^2 differ by the factor d ((N-1)/N)^2 ~ d."
        ),
        source="docs/theory.md claim (g); Barlow Twins (L6), VICReg (L7)",
        verdict=decide(general, general),
        condition=None,
        corrected_statement=corrected,
        method=(
            "exact: symbolic.losses barlow_twins (lambda = 1 minus lambda = 0, eps = 0) and "
            "vicreg (covariance term only) on exactly batch-normalised rational batches, the "
            "ratio evaluated to 60 digits and identified as a rational with nsimplify, at four "
            "(N, d)"
        ),
        evidence={
            "ratios": {f"N={n},d={d}": str(r) for (n, d), r in ratios.items()},
            "max_abs_error_vs_claim": max(errors),
        },
    )
