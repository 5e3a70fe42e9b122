"""The optimal linear predictor of SimSiam/BYOL (f)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symbolic.claims.base import Verdict, claim, decide, rational_array
from symbolic.derivation import derive


@claim("f", "Optimal linear predictor")
def optimal_linear_predictor(rng: np.random.Generator) -> Verdict:
    """(f) The optimal linear predictor A* = Sigma_21 Sigma_11^{-1}, I for equal views
    (docs/theory.md claim (f)).

    The exact least-squares (``linear_byol``) gradient at A*, SimSiam's cosine gradient there, and
    A* for views that differ by noise uncorrelated with z1.
    """
    n, d = 4, 2
    z1 = rational_array(rng, (n, d))
    z2 = rational_array(rng, (n, d))
    s11 = sp.Matrix(z1.T @ z1) / n  # E[z1 z1^T] over the batch
    s21 = sp.Matrix(z2.T @ z1) / n  # E[z2 z1^T]
    a_star = s21 * s11.inv()
    # least squares: gradient of the batch loss 1/2 E||A z1 - z2||^2 (linear_byol, eta = 0)
    der = derive("linear_byol", n, d)
    point = {
        s: v
        for sym, val in zip(der.symbols, (np.array(a_star), z1, z2), strict=True)
        for s, v in zip(sym.ravel(), np.asarray(val, dtype=object).ravel(), strict=True)
    }
    mse_grad = [g.xreplace(point) for g in der.gradients[0].ravel()]
    mse_ok = all(sp.nsimplify(g) == 0 for g in mse_grad)
    # cosine loss D(A z1, sg z2) (SimSiam's criterion): gradient in A at A* = sum_b dL/dp_b z1_b^T
    a_num = np.array(a_star, dtype=float)
    z1f, z2f = np.array(z1, dtype=float), np.array(z2, dtype=float)
    p = z1f @ a_num.T
    cos_der = derive("simsiam", n, d)
    g1, g2, _, _ = cos_der.gradient(p, p, z2f, z2f)  # simsiam(P, P, Z2, Z2) = D(P, sg Z2)
    cos_grad = (g1 + g2).T @ z1f
    cos_rel = float(np.linalg.norm(cos_grad) / np.linalg.norm(g1 + g2) / np.linalg.norm(z1f))
    cos_ok = cos_rel < 1e-10
    # A* = I without identical views: z2 = z1 + e with e orthogonal to the columns of z1
    z1m = sp.Matrix(z1)
    proj = sp.eye(n) - z1m * (z1m.T * z1m).inv() * z1m.T
    noise = proj * sp.Matrix(rational_array(rng, (n, d)))
    z2n = z1m + noise
    a_noise = (z2n.T * z1m / n) * (z1m.T * z1m / n).inv()
    identity_without_equal_views = a_noise == sp.eye(d) and noise != sp.zeros(n, d)
    general = mse_ok and cos_ok and not identity_without_equal_views
    conditional = mse_ok
    corrected = (
        "For the least-squares E-step min_A E||A z1 - z2||^2 with Sigma_11 = E[z1 z1^T] "
        "invertible, A* = Sigma_21 Sigma_11^{-1} is the unique minimiser (gradient "
        f"{'exactly 0' if mse_ok else 'NOT 0'} there; the loss is a convex quadratic with Hessian "
        "Sigma_11 (x) I); for singular Sigma_11 the minimisers are Sigma_21 Sigma_11^+ plus any "
        "A with A Sigma_11 = 0. It is not the optimum of SimSiam's cosine criterion "
        f"D(A z1, sg z2): the gradient there is {cos_rel:.2g} (relative), so 'equivalent to the "
        "cosine loss for normalized vectors' fails. A* = I iff Sigma_21 = Sigma_11, i.e. "
        "E[(z2 - z1) z1^T] = 0: views differing by noise uncorrelated with z1 give A* = I "
        f"({'found' if identity_without_equal_views else 'not found'} with z2 != z1), so "
        "identical views are sufficient but not necessary."
    )
    return Verdict(
        claim=(
            "For z = W x and a linear predictor h(z) = A z, the E-step min_A E||A z1 - z2||^2 "
            "(the MSE surrogate, 'equivalent to cosine loss for normalized vectors') gives "
            "A* = Sigma_21 Sigma_11^{-1}, Sigma_11 = E[z1 z1^T], Sigma_21 = E[z2 z1^T]; A* = I "
            "when the views are identical, and non-trivial augmentations make A* != I."
        ),
        source="docs/theory.md claim (f); SimSiam's E-step (Chen & He 2021, section 5)",
        verdict=decide(general, conditional),
        condition=(
            "the E-step is least squares (MSE) and Sigma_11 is invertible; not for the cosine "
            "loss; A* = I exactly when Sigma_21 = Sigma_11"
        ),
        corrected_statement=corrected,
        method=(
            "symbolic: entry-wise sympy gradient of symbolic.losses linear_byol (the batch "
            "least-squares loss) at A* = Sigma_21 Sigma_11^{-1} built from exact rational "
            "batches (N=4, d=2); sympy projection for z2 = z1 + e with z1^T e = 0; numerical: "
            "gradient of symbolic.losses simsiam (negative cosine) with respect to A at A*"
        ),
        evidence={
            "mse_gradient_exactly_zero": bool(mse_ok),
            "cosine_gradient_relative_norm": cos_rel,
            "identity_with_unequal_views": bool(identity_without_equal_views),
        },
    )
