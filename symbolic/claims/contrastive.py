"""Contrastive claims: the NT-Xent similarity gradient (a)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symbolic import losses
from symbolic.claims.base import Verdict, claim, decide, formula_strings
from symbolic.derivation import symbol_array
from symbolic.sympy_backend import SYMPY


@claim("a", "NT-Xent gradient with respect to a similarity")
def nt_xent_similarity_gradient(rng: np.random.Generator) -> Verdict:
    """(a) dl_k/ds_m = p_m/tau for NT-Xent (docs/theory.md claim (a)).

    Differentiates one anchor of :func:`symbolic.losses.nt_xent_anchor_losses` by each free
    similarity (N = 2, symbolic tau) and compares with p_m/tau exactly and at a random point; also
    checks the symmetric form of the full loss's derivative.
    """
    tau = sp.Symbol("tau", positive=True)
    n = 2
    sims = symbol_array("s", (2 * n, 2 * n))
    anchor = losses.nt_xent_anchor_losses(SYMPY, sims, tau)[0]
    positive = n  # rows k and k+N are the two views of sample k
    z_expr = sp.Add(*[sp.exp(sims[0, m] / tau) for m in range(2 * n) if m != 0])
    z_sym = sp.Symbol("Z", positive=True)
    derivative, holds = {}, {}
    for m in range(1, 2 * n):
        p_sym = sp.Symbol("p_+" if m == positive else "p_m", positive=True)
        d_m = sp.diff(anchor, sims[0, m])
        claimed = sp.exp(sims[0, m] / tau) / z_expr / tau
        holds[m] = sp.together(d_m - claimed) == 0
        derivative[m] = sp.factor(
            d_m.subs(z_expr, z_sym).subs(sp.exp(sims[0, m] / tau), p_sym * z_sym)
        )
    negatives = [m for m in holds if m != positive]
    # numerical evidence at a random point
    values = {s: float(v) for s, v in zip(sims.ravel(), rng.uniform(-1, 1, sims.size), strict=True)}
    values[tau] = 0.1
    err = {
        m: abs(
            float(sp.diff(anchor, sims[0, m]).xreplace(values))
            - float((sp.exp(sims[0, m] / tau) / z_expr / tau).xreplace(values))
        )
        for m in holds
    }
    # the full loss (mean of the 2N anchors) with symmetric similarities s_km = s_mk
    sym = symbol_array("r", (2 * n, 2 * n))
    for i in range(2 * n):
        for j in range(i):
            sym[i, j] = sym[j, i]
    full = SYMPY.mean(losses.nt_xent_anchor_losses(SYMPY, sym, tau))
    p_01 = sp.exp(sym[0, 1] / tau) / sp.Add(*[sp.exp(sym[0, m] / tau) for m in range(1, 2 * n)])
    p_10 = sp.exp(sym[0, 1] / tau) / sp.Add(
        *[sp.exp(sym[1, m] / tau) for m in range(2 * n) if m != 1]
    )
    full_ok = sp.together(sp.diff(full, sym[0, 1]) - (p_01 + p_10) / (2 * n * tau)) == 0

    general = all(holds.values())
    conditional = all(holds[m] for m in negatives)
    neg_form, pos_form = derivative[negatives[0]], derivative[positive]
    corrected = (
        f"With Z = sum_{{m != k}} exp(s_km/tau) (all 2N-1 others, the positive included) and "
        f"p_m = exp(s_km/tau)/Z: dl_k/ds_km = {sp.sstr(neg_form)} for every negative "
        f"m not in {{k, k+}}, but for the positive dl_k/ds_k+ = {sp.sstr(pos_form)}, "
        "i.e. -(1 - p_+)/tau. In the full loss L = (1/2N) sum_k l_k, "
        "where s_km = s_mk enters two anchors, dL/ds_km = (p_m|k + p_k|m)/(2N tau)"
        f"{'' if full_ok else ' (NOT confirmed)'}."
    )
    texts, tex = formula_strings(negative=neg_form, positive=pos_form)
    return Verdict(
        claim=(
            "For a fixed anchor z_k with s_+ = sim(z_k, z_k') and s_m = sim(z_k, z_m), m != k: "
            "writing l_k = -s_+/tau + log Z with Z = sum_{m != k} exp(s_m/tau), "
            "dl_k/ds_m = (1/tau) exp(s_m/tau)/Z = p_m/tau, p_m the softmax weight on negative m."
        ),
        source="docs/theory.md claim (a); NT-Xent (L2)",
        verdict=decide(general, conditional),
        condition="m is a negative (m != k+); the positive gets (p_+ - 1)/tau",
        corrected_statement=corrected,
        method=(
            "symbolic: l_k from symbolic.losses.nt_xent_anchor_losses on a 2N x 2N matrix of "
            "free similarity symbols (N=2, symbolic tau), sympy.diff by each s_0m, difference "
            "with the claimed p_m/tau brought to one fraction (together) and tested for 0; "
            "numerical: the same at a random point (tau = 0.1)"
        ),
        evidence={
            "holds_for_m": {str(m): bool(v) for m, v in holds.items()},
            "positive_index": positive,
            "abs_error_negatives": max(err[m] for m in negatives),
            "abs_error_positive": err[positive],
            "full_loss_symmetric_form_confirmed": bool(full_ok),
        },
        formulas=texts,
        formulas_latex=tex,
    )
