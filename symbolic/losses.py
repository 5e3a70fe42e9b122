"""Every loss of docs/theory.md section 1, (L1)-(L13), written once against :mod:`symbolic.ops`.

``get(name)`` returns a callable :class:`~symbolic.registry.Loss`; ``names()`` lists them. The
losses of the linear theory, on feature matrices (``linear_byol``, ``liu``), are written in
:mod:`symbolic.linear_losses` and registered with the others when this module is imported.
Arrays have samples in rows, shape (N, d), unless the loss says otherwise (Garrido's K is
(d, N), a column per sample; predictor matrices are (d, d)). The back end follows the array
type: numpy float arrays give a numpy scalar, torch tensors a 0-d tensor with autograd (any device
and dtype, autocast kept), numpy object arrays of sympy symbols a sympy expression. Each
loss states its formula, its source and its convention; the defaults are the official values.
"""

from __future__ import annotations

from symbolic.registry import (
    Loss,
    boolean,
    get,
    hyper_param,
    hyperparameters_of,
    names,
    real,
    register,
)

__all__ = [
    "Loss",
    "get",
    "names",
    "hyper_param",
    "hyperparameters_of",
    "batch_standardize",
    "cosine_rows",
    "nt_xent_anchor_losses",
]

_NxD = ("N", "d")


def scale_hyper(peers: str):
    """The ``scale`` hyperparameter s (L -> s L) of a loss whose peer convention is a pure scale.

    s multiplies the value and the gradient, hence the step of plain SGD at a given learning rate
    and the flow time of a step (a run records it, :mod:`empirical.flow`); ``peers`` names the
    peer conventions it reproduces.
    """
    return real(
        "scale", 1.0, f"factor s multiplying the loss and its gradient ({peers})", positive=True
    )


def batch_standardize(ops, z, eps, unbiased):
    """(z - mean) / sqrt(Var + eps) per column over the batch; Var biased (1/N) or unbiased.

    ``ops.standardize``: elementary operations in numpy and sympy, BatchNorm's fused kernel in
    torch.
    """
    return ops.standardize(z, eps, unbiased)


def cosine_rows(ops, a, b):
    """cos(a_b, b_b) for every row b: <a_b, b_b> / (||a_b|| ||b_b||)."""
    return ops.sum(ops.normalize(a, axis=-1) * ops.normalize(b, axis=-1), axis=-1)


@register(
    name="invariance",
    args=("z1", "z2"),
    shapes=(_NxD, _NxD),
    hypers=(),
    formula=r"L = \frac{1}{N}\sum_{b=1}^{N} \lVert z_b - z'_b \rVert_2^2",
    source="docs/theory.md (L1): the naive similarity-only objective, minimised by collapse",
    convention="mean over the batch of the squared Euclidean distance (summed over features).",
)
def invariance(ops, z1, z2):
    """Naive invariance loss: the mean squared distance between the two views' embeddings."""
    diff = z1 - z2
    return ops.sum(diff * diff) / z1.shape[0]


@register(
    name="nt_xent",
    args=("z1", "z2"),
    shapes=(_NxD, _NxD),
    hypers=(
        real(
            "temperature",
            0.1,
            "SimCLR temperature tau (0.1 ImageNet default of the official code; 0.5 CIFAR-10)",
            positive=True,
        ),
        scale_hyper("2: the official TF code's loss_a + loss_b"),
    ),
    formula=(
        r"s_{km} = \frac{u_k^\top u_m}{\lVert u_k\rVert \lVert u_m\rVert},\ "
        r"u = [z_1; z_2] \in \mathbb{R}^{2N\times d};\ "
        r"\ell_k = -\frac{s_{k,k^+}}{\tau} + \log \sum_{m \ne k} e^{s_{km}/\tau};\ "
        r"L = \frac{s}{2N}\sum_{k=1}^{2N} \ell_k"
    ),
    source=(
        "Chen, Kornblith, Norouzi, Hinton, ICML 2020 (SimCLR, arXiv 2002.05709), eq. 1 and "
        "Algorithm 1; google-research/simclr objective.py add_contrastive_loss"
    ),
    convention=(
        "2N anchors (both views), the positive of anchor k is the other view of the same sample, "
        "the denominator sums over all 2N-1 others (positive included); mean over the 2N anchors "
        "as in the paper. The official TF code returns loss_a + loss_b (two means over N), i.e. "
        "twice this value."
    ),
)
def nt_xent(ops, z1, z2, temperature, scale):
    """SimCLR NT-Xent: cross-entropy of each view against the other view among 2N-1 candidates."""
    u = ops.concat([ops.normalize(z1, axis=-1), ops.normalize(z2, axis=-1)], axis=0)
    return scale * ops.mean(nt_xent_anchor_losses(ops, ops.matmul(u, ops.T(u)), temperature))


def nt_xent_anchor_losses(ops, similarities, temperature):
    """The 2N terms l_k = -s_{k,k+}/tau + log sum_{m != k} exp(s_{km}/tau) of NT-Xent.

    ``similarities`` is (2N, 2N); rows k and k+N are the two views of sample k, so the positive of
    anchor k is k+N (and of k+N, k). Used by :func:`nt_xent` and by the claims audit.
    """
    n = similarities.shape[0] // 2
    logits = similarities / temperature
    positives = ops.concat([ops.diagonal(logits, n), ops.diagonal(logits, -n)], axis=0)
    return ops.logsumexp(logits, axis=-1, where=~ops.eye(2 * n)) - positives


@register(
    name="infonce",
    args=("q", "k", "queue"),
    shapes=(_NxD, _NxD, ("K", "d")),
    hypers=(
        real(
            "temperature",
            0.07,
            "MoCo temperature tau (0.07 MoCo v1 and the official code default; 0.2 MoCo v2)",
            positive=True,
        ),
    ),
    formula=(
        r"L = \frac{1}{N}\sum_{b=1}^{N} -\log \frac{e^{\hat q_b^\top \operatorname{sg}(\hat k_b)"
        r"/\tau}}{e^{\hat q_b^\top \operatorname{sg}(\hat k_b)/\tau} + \sum_{j=1}^{K} "
        r"e^{\hat q_b^\top \operatorname{sg}(\hat Q_j)/\tau}},\ \hat x = x/\lVert x\rVert"
    ),
    source=(
        "He, Fan, Wu, Xie, Girshick, CVPR 2020 (MoCo, arXiv 1911.05722), eq. 1 and Algorithm 1; "
        "facebookresearch/moco builder.py"
    ),
    convention=(
        "query q from the online encoder, positive key k from the momentum encoder and the queue "
        "(K, d) of negatives, rows l2-normalised here (MoCo normalises in the encoder), k and the "
        "queue under stop-gradient; cross-entropy with the positive as class 0, batch mean."
    ),
)
def infonce(ops, q, k, queue, temperature):
    """MoCo InfoNCE with a queue of negatives."""
    qn = ops.normalize(q, axis=-1)
    kn = ops.stop_gradient(ops.normalize(k, axis=-1))
    negatives = ops.stop_gradient(ops.normalize(queue, axis=-1))
    positive = ops.sum(qn * kn, axis=-1, keepdims=True) / temperature
    logits = ops.concat([positive, ops.matmul(qn, ops.T(negatives)) / temperature], axis=1)
    return ops.mean(ops.logsumexp(logits, axis=-1) - positive[:, 0])


@register(
    name="byol",
    args=("p1", "p2", "z1", "z2"),
    shapes=(_NxD, _NxD, _NxD, _NxD),
    hypers=(scale_hyper("1/4: lightly's example, 0.5 (NegCos + NegCos), up to a constant"),),
    formula=(
        r"L = \frac{s}{N}\sum_b \left[2 - 2\cos\left(p_{1b}, \operatorname{sg}(z_{2b})\right)"
        r"\right] + \frac{s}{N}\sum_b \left[2 - 2\cos\left(p_{2b}, \operatorname{sg}(z_{1b})"
        r"\right)\right]"
    ),
    source=(
        "Grill et al., NeurIPS 2020 (BYOL, arXiv 2006.07733), eq. 2 and the symmetrised "
        "L + L~; google-deepmind/deepmind-research byol regression_loss"
    ),
    convention=(
        "p1, p2: online predictions of view 1 and 2; z1, z2: target projections of view 1 and 2 "
        "(stop-gradient). p1 is compared with z2 and p2 with z1; the two directions are SUMMED "
        "(DeepMind), each a batch mean of 2 - 2 cos."
    ),
)
def byol(ops, p1, p2, z1, z2, scale):
    """BYOL: normalised squared error of each view's prediction against the other view's target."""
    first = 2 - 2 * cosine_rows(ops, p1, ops.stop_gradient(z2))
    second = 2 - 2 * cosine_rows(ops, p2, ops.stop_gradient(z1))
    return scale * (ops.mean(first) + ops.mean(second))


@register(
    name="simsiam",
    args=("p1", "p2", "z1", "z2"),
    shapes=(_NxD, _NxD, _NxD, _NxD),
    hypers=(
        boolean(
            "stop_gradient",
            True,
            "stop the gradient through the projections z (False: the ablation of Chen & He's "
            "Fig. 2, which collapses)",
        ),
    ),
    formula=(
        r"L = \tfrac12 D(p_1, \operatorname{sg} z_2) + \tfrac12 D(p_2, \operatorname{sg} z_1),\ "
        r"D(p, z) = -\frac{1}{N}\sum_b \cos(p_b, z_b)"
    ),
    source=(
        "Chen and He, CVPR 2021 (SimSiam, arXiv 2011.10566), eqs. 1-2 and Algorithm 1; "
        "facebookresearch/simsiam main_simsiam.py"
    ),
    convention=(
        "p1, p2: predictions h(z1), h(z2); z1, z2: projections (stop-gradient unless "
        "stop_gradient=False); the two directions "
        "are AVERAGED (1/2 + 1/2), D is the negative cosine averaged over the batch."
    ),
)
def simsiam(ops, p1, p2, z1, z2, stop_gradient):
    """SimSiam: symmetrised negative cosine of each prediction against the other view."""
    if stop_gradient:
        z1, z2 = ops.stop_gradient(z1), ops.stop_gradient(z2)
    first = ops.mean(cosine_rows(ops, p1, z2))
    second = ops.mean(cosine_rows(ops, p2, z1))
    return -(first + second) / 2


@register(
    name="barlow_twins",
    args=("z1", "z2"),
    shapes=(_NxD, _NxD),
    hypers=(
        real("lambd", 0.0051, "weight lambda of the off-diagonal (redundancy) term", minimum=0),
        real("eps", 1e-5, "BatchNorm epsilon of the per-view standardisation", minimum=0),
        scale_hyper("solo-learn's scale_loss, 0.024 to 0.1"),
    ),
    formula=(
        r"\hat z = \frac{z - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}},\ "
        r"C = \frac{1}{N}\hat z_1^\top \hat z_2,\ "
        r"L = s\left[\sum_i (1 - C_{ii})^2 + \lambda \sum_{i \ne j} C_{ij}^2\right]"
    ),
    source=(
        "Zbontar, Jing, Misra, LeCun, Deny, ICML 2021 (Barlow Twins, arXiv 2103.03230), eqs. 1-2; "
        "facebookresearch/barlowtwins main.py (no scale-loss since June 2021)"
    ),
    convention=(
        "each view standardised per feature with its own batch statistics and the BIASED variance "
        "(BatchNorm1d(affine=False) in training mode, eps 1e-5); C divided by N; no scale-loss "
        "factor by default (solo-learn multiplies by scale_loss 0.024..0.1: scale=)."
    ),
    min_n=2,
)
def barlow_twins(ops, z1, z2, lambd, eps, scale):
    """Barlow Twins: drive the cross-correlation of the standardised views to the identity."""
    n = z1.shape[0]
    a = batch_standardize(ops, z1, eps, unbiased=False)
    b = batch_standardize(ops, z2, eps, unbiased=False)
    c = ops.matmul(ops.T(a), b) / n
    on = 1 - ops.diagonal(c)
    off = ops.offdiag(c)
    return scale * (ops.sum(on * on) + lambd * ops.sum(off * off))


@register(
    name="vicreg",
    args=("z1", "z2"),
    shapes=(_NxD, _NxD),
    hypers=(
        real("sim_coeff", 25.0, "weight lambda of the invariance (MSE) term", minimum=0),
        real(
            "std_coeff",
            25.0,
            "weight mu of the variance term (official halving convention)",
            minimum=0,
        ),
        real("cov_coeff", 1.0, "weight nu of the covariance term", minimum=0),
        real("eps", 1e-4, "epsilon inside the square root of the variance", minimum=0),
    ),
    formula=(
        r"L = \lambda\, \frac{1}{Nd}\lVert Z - Z'\rVert_F^2 + \mu\, \frac{v(Z) + v(Z')}{2} "
        r"+ \nu\,[c(Z) + c(Z')],\ v(Z) = \frac{1}{d}\sum_j \max(0, 1 - \sqrt{\mathrm{Var}_j(Z)"
        r" + \epsilon}),\ c(Z) = \frac{1}{d}\sum_{i\ne j} \mathrm{Cov}(Z)_{ij}^2"
    ),
    source=(
        "Bardes, Ponce, LeCun, ICLR 2022 (VICReg, arXiv 2105.04906), eqs. 1-6; "
        "facebookresearch/vicreg main_vicreg.py"
    ),
    convention=(
        "the official code: invariance = F.mse_loss, the mean over all N*d entries (the paper's "
        "eq. 5 has 1/N only); Var and Cov UNBIASED (1/(N-1)) on the centred batch; the two "
        "variance terms are HALVED, mu [v(Z) + v(Z')]/2 (solo-learn sums them: its mu=25 is the "
        "official mu=50); covariance off-diagonal squares summed and divided by d, per view, "
        "summed over the two views."
    ),
    min_n=2,
)
def vicreg(ops, z1, z2, sim_coeff, std_coeff, cov_coeff, eps):
    """VICReg: invariance + variance hinge + covariance decorrelation, per branch."""
    n, d = z1.shape
    diff = z1 - z2
    invariance_term = ops.sum(diff * diff) / (n * d)
    variance_term = 0
    covariance_term = 0
    for z in (z1, z2):
        centred = z - ops.mean(z, axis=0, keepdims=True)
        std = ops.sqrt(ops.sum(centred * centred, axis=0) / (n - 1) + eps)
        variance_term = variance_term + ops.mean(ops.relu(1 - std)) / 2
        cov = ops.offdiag(ops.matmul(ops.T(centred), centred) / (n - 1))
        covariance_term = covariance_term + ops.sum(cov * cov) / d
    return sim_coeff * invariance_term + std_coeff * variance_term + cov_coeff * covariance_term


# (L8), (L9): the linear theory's losses, registered here, in docs/theory.md's order
from symbolic import linear_losses as _linear_losses  # noqa: E402, F401


@register(
    name="spectral",
    args=("z1", "z2"),
    shapes=(_NxD, _NxD),
    hypers=(),
    formula=(
        r"L = -\frac{2}{N}\sum_i z_i^\top z'_i + \frac{1}{N(N-1)}\sum_{i\ne j}"
        r"\left(z_i^\top z'_j\right)^2"
    ),
    source=(
        "HaoChen, Wei, Gaidon, Ma, NeurIPS 2021 (spectral contrastive loss, arXiv 2106.04156), "
        "empirical form of docs/theory.md (L11)"
    ),
    convention="no normalisation of z; negatives are the cross-view pairs i != j of the batch.",
    min_n=2,
)
def spectral(ops, z1, z2):
    """Spectral contrastive loss."""
    n = z1.shape[0]
    gram = ops.matmul(z1, ops.T(z2))
    off = ops.offdiag(gram)
    return -2 * ops.sum(ops.diagonal(gram)) / n + ops.sum(off * off) / (n * (n - 1))


@register(
    name="garrido_lc",
    args=("k",),
    shapes=(("d", "N"),),
    hypers=(),
    formula=r"L_c = \lVert K^\top K - \operatorname{diag}(K^\top K)\rVert_F^2",
    source="Garrido, Chen, Bardes, Najman, LeCun, ICLR 2023 (arXiv 2206.02574), L_c",
    convention="K is (d, N): a COLUMN per sample (embedding); sample-contrastive Gram criterion.",
)
def garrido_lc(ops, k):
    """Garrido et al. sample-contrastive criterion: off-diagonal energy of the Gram matrix."""
    off = ops.offdiag(ops.matmul(ops.T(k), k))
    return ops.sum(off * off)


@register(
    name="garrido_lnc",
    args=("k",),
    shapes=(("d", "N"),),
    hypers=(),
    formula=r"L_{nc} = \lVert K K^\top - \operatorname{diag}(K K^\top)\rVert_F^2",
    source="Garrido, Chen, Bardes, Najman, LeCun, ICLR 2023 (arXiv 2206.02574), L_nc",
    convention="K is (d, N): a COLUMN per sample; dimension-contrastive (covariance) criterion.",
)
def garrido_lnc(ops, k):
    """Garrido et al. dimension-contrastive criterion: off-diagonal energy of K K^T."""
    off = ops.offdiag(ops.matmul(k, ops.T(k)))
    return ops.sum(off * off)


@register(
    name="batchnorm",
    args=("z", "g"),
    shapes=(_NxD, _NxD),
    hypers=(real("eps", 1e-5, "BatchNorm epsilon", minimum=0),),
    formula=(
        r"L = \sum_{b,j} g_{bj}\,\hat z_{bj},\ \hat z = \frac{z - \mu_B}{\sqrt{\sigma_B^2 + "
        r"\epsilon}}"
    ),
    source=(
        "Ioffe and Szegedy 2015 (arXiv 1502.03167), Algorithm 1 in training mode; "
        "torch.nn.functional.batch_norm(training=True)"
    ),
    convention=(
        "a probe of the BatchNorm layer, not a training loss: z (N, d) the pre-BN batch, g (N, d) "
        "a fixed upstream gradient (probe direction); dL/dz = J^T g is BatchNorm's "
        "vector-Jacobian product (g = e_{i,c} gives the row d z_hat_{ic} / d z) and dL/dg = z_hat. "
        "Biased batch variance sigma_B^2 (1/N), no affine parameters."
    ),
    min_n=2,
)
def batchnorm(ops, z, g, eps):
    """BatchNorm layer probe <g, BN(z)>: its gradients are J_BN^T g (in z) and BN(z) (in g)."""
    return ops.sum(g * batch_standardize(ops, z, eps, unbiased=False))
