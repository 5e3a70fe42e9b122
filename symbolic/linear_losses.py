"""The losses of the linear theory, on feature matrices F = f^T / sqrt(N) (docs/theory.md (L8),
(L9)): Tian et al.'s linear BYOL/SimSiam loss and Liu et al.'s loss without stop-gradient.

Written against :mod:`symbolic.ops` like every loss of :mod:`symbolic.losses`, which registers
them when it is imported (``symbolic.losses.get("liu")``). Each takes the predictor W_p (d, d)
and the two views' features (N, d), rows are samples.
"""

from __future__ import annotations

from symbolic.registry import boolean, integer, real, register

_NxD = ("N", "d")


@register(
    name="linear_byol",
    args=("wp", "f1", "f2"),
    shapes=(("d", "d"), _NxD, _NxD),
    hypers=(
        real(
            "eta",
            0.0,
            "weight decay eta written into the loss as eta/2 (||W_p||^2 + ||F1||^2); "
            "0 is docs/theory.md (L8) exactly",
            minimum=0,
        ),
        boolean(
            "stop_gradient",
            True,
            "stop the gradient through the target features f2 (False: Tian's Theorem 2 "
            "ablation, both branches trained)",
        ),
    ),
    formula=(
        r"L = \tfrac12 \lVert W_p F_1 - \operatorname{sg}(F_2) \rVert_F^2 + \tfrac{\eta}{2}"
        r"\left(\lVert W_p\rVert_F^2 + \lVert F_1\rVert_F^2\right),\ F_v = f_v^\top/\sqrt{N}"
    ),
    source="Tian, Chen, Ganguli, ICML 2021 (arXiv 2102.06810), eq. 1; Liu et al. 2022, eqs. 4-5",
    convention=(
        "f1, f2: online and target features of the two views, rows are samples; F = f^T/sqrt(N) "
        "is the d x N feature matrix of Tian and Liu; f2 under stop-gradient (unless "
        "stop_gradient=False); one direction. "
        "Gradients: dL/dW_p = (W_p F1 - F2) F1^T + eta W_p, dL/dF1 = W_p^T (W_p F1 - F2) + eta F1, "
        "dL/df1 = (dL/dF1)^T / sqrt(N)."
    ),
)
def linear_byol(ops, wp, f1, f2, eta, stop_gradient):
    """Linear BYOL/SimSiam: a linear predictor regressing the stop-gradient target features."""
    root_n = ops.csqrt(f1.shape[0])
    big_f1 = ops.T(f1) / root_n
    big_f2 = ops.T(f2) / root_n
    if stop_gradient:
        big_f2 = ops.stop_gradient(big_f2)
    residual = ops.matmul(wp, big_f1) - big_f2
    decay = ops.sum(wp * wp) + ops.sum(big_f1 * big_f1)
    return ops.sum(residual * residual) / 2 + eta * decay / 2


@register(
    name="liu",
    args=("wp", "z1", "z2"),
    shapes=(("d", "d"), _NxD, _NxD),
    hypers=(
        real("c_inv", 25.0, "weight c_inv of the invariance term", minimum=0),
        real("c_cov", 1.0, "weight c_cov of the covariance-maintaining term", minimum=0),
        integer("k", 8, "number k of equal batch parts of eq. 19 (must divide N)", minimum=1),
        boolean("standardize", True, "standardise each view per feature first (eq. 18)"),
        real(
            "eps",
            0.0,
            "epsilon added to the unbiased variance in eq. 18 (0 is the paper; the authors' code "
            "uses a BatchNorm layer)",
            minimum=0,
        ),
    ),
    formula=(
        r"L = c_{inv}\lVert W_p F_1 - F_2 \rVert_F^2 + \frac{c_{cov}}{d}\sum_{i=1}^{k}"
        r"\lVert W_p^\top W_p - W_p F_{1,i} F_{1,i}^\top W_p^\top \rVert_F^2,\ "
        r"F_v = \bar z_v^\top/\sqrt{N},\ F_{1,i} = \bar z_{1,(i)}^\top/\sqrt{N/k}"
    ),
    source=(
        "Liu, Suganuma, Okatani, NeurIPS 2022 ('Bridging the gap from asymmetry tricks to "
        "decorrelation principles'), eq. 17 (k = 1) and eq. 19 (k parts), standardisation eq. 18"
    ),
    convention=(
        "NO stop-gradient and no EMA; z rows are projector outputs of the two views, standardised "
        "per feature over the whole batch with the UNBIASED standard deviation (eq. 18) when "
        "standardize; F1_i is the i-th block of N/k consecutive rows, scaled by 1/sqrt(N/k); "
        "the correlation terms of the k parts are summed. Best ImageNet setting c_inv=25, c_cov=1, "
        "k=8."
    ),
    min_n=1,
)
def liu(ops, wp, z1, z2, c_inv, c_cov, k, standardize, eps):
    """Liu et al.: invariance plus the covariance-maintaining term on k batch parts."""
    n, d = z1.shape
    if n % k:
        raise ValueError(f"liu: hyperparameter k={k} must divide the batch size N={n}")
    if standardize:
        if n < 2:
            raise ValueError(f"liu: standardize needs a batch size N >= 2, got N={n}")
        z1 = ops.standardize(z1, eps, unbiased=True)
        z2 = ops.standardize(z2, eps, unbiased=True)
    root_n = ops.csqrt(n)
    residual = ops.matmul(wp, ops.T(z1) / root_n) - ops.T(z2) / root_n
    gram = ops.matmul(ops.T(wp), wp)
    size = n // k
    # the k parts at once: W_p F1_i F1_i^T W_p^T = P_i^T P_i / (N/k) with P_i = part_i W_p^T,
    # part i the rows i N/k .. (i+1) N/k - 1 of z1: one (k, d, d) stack, O(N d^2) in all
    projected = ops.matmul(ops.reshape(z1, (k, size, d)), ops.T(wp))
    gaps = gram - ops.matmul(ops.T(projected), projected) / size
    return c_inv * ops.sum(residual * residual) + c_cov * ops.sum(gaps * gaps) / d
