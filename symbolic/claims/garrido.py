"""Garrido et al.'s duality of sample- and dimension-contrastive criteria (h)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symbolic import losses
from symbolic.claims.base import Verdict, claim, decide, is_zero
from symbolic.derivation import symbol_array


def _sinkhorn(k: np.ndarray, iterations: int = 2000) -> np.ndarray:
    """Alternately l2-normalise rows and columns of a square positive matrix."""
    for _ in range(iterations):
        k = k / np.linalg.norm(k, axis=1, keepdims=True)
        k = k / np.linalg.norm(k, axis=0, keepdims=True)
    return k


@claim("h", "Garrido et al.: L_nc = L_c + N - M under row and column normalisation")
def garrido_duality(rng: np.random.Generator) -> Verdict:
    """(h) Garrido et al.: L_nc = L_c + N - M for K with unit rows and columns (docs/theory.md (h)).

    The identity behind it and the Frobenius bookkeeping (which forces M = N) for symbolic K, then
    doubly and singly normalised numerical K (``garrido_lc``, ``garrido_lnc``).
    """
    lc, lnc = losses.get("garrido_lc"), losses.get("garrido_lnc")
    identity_ok, frobenius_ok = True, True
    for m, n in [(2, 3), (3, 2), (3, 3)]:
        k = symbol_array("k", (m, n))
        rows = sum(sp.Add(*(k[j, :] ** 2)) ** 2 for j in range(m))
        cols = sum(sp.Add(*(k[:, i] ** 2)) ** 2 for i in range(n))
        identity_ok &= is_zero(lnc(k) + rows - lc(k) - cols)
        frobenius_ok &= is_zero(
            sum(sp.Add(*(k[j, :] ** 2)) for j in range(m))
            - sum(sp.Add(*(k[:, i] ** 2)) for i in range(n))
        )
    # both normalisations at once (possible only for M = N): L_nc - L_c = N - M = 0
    square = _sinkhorn(np.abs(rng.normal(size=(4, 4))) + 0.1)
    both_error = abs(float(lnc(square) - lc(square)))
    # one normalisation only, M != N
    k = rng.normal(size=(3, 5))
    cols_unit = k / np.linalg.norm(k, axis=0, keepdims=True)
    rows4 = float(np.sum(np.sum(cols_unit**2, axis=1) ** 2))
    cols_error = abs(float(lnc(cols_unit) - lc(cols_unit) - (5 - rows4)))
    rows_unit = k / np.linalg.norm(k, axis=1, keepdims=True)
    cols4 = float(np.sum(np.sum(rows_unit**2, axis=0) ** 2))
    rows_error = abs(float(lnc(rows_unit) - lc(rows_unit) - (cols4 - 3)))
    general = identity_ok and both_error < 1e-10
    corrected = (
        "True, but N - M is always 0 there: sum_j ||K_j.||^2 = sum_i ||K_.i||^2 = ||K||_F^2 "
        f"({'exact' if frobenius_ok else 'NOT exact'}), so unit rows and unit columns force "
        "M = N and the relation reads L_nc = L_c. The identity behind it holds for every K: "
        "L_nc + sum_j ||K_j.||^4 = L_c + sum_i ||K_.i||^4 "
        f"({'exact' if identity_ok else 'NOT exact'}). With unit columns (embeddings) only: "
        "L_nc = L_c + N - sum_j ||K_j.||^4; with unit rows (dimensions) only: "
        "L_nc = L_c + sum_i ||K_.i||^4 - M."
    )
    return Verdict(
        claim=(
            "K in R^{M x N} (column = sample), L_c = ||K^T K - diag(K^T K)||_F^2, "
            "L_nc = ||K K^T - diag(K K^T)||_F^2: if both rows and columns of K were L2 "
            "normalized, we would have L_nc = L_c + N - M."
        ),
        source="docs/theory.md claim (h), (L12); Garrido et al. 2022, section 3",
        verdict=decide(general, general),
        condition=None,
        corrected_statement=corrected,
        method=(
            "symbolic: symbolic.losses garrido_lc/garrido_lnc on symbolic K (M x N = 2x3, 3x2, "
            "3x3), the identity and the Frobenius bookkeeping expanded to 0; numerical: a "
            "doubly normalised 4x4 K (alternating normalisation) and singly normalised 3x5 K"
        ),
        evidence={
            "identity_exact": bool(identity_ok),
            "row_and_column_sums_of_squares_equal": bool(frobenius_ok),
            "doubly_normalised_abs_error": both_error,
            "unit_columns_abs_error": cols_error,
            "unit_rows_abs_error": rows_error,
        },
    )
