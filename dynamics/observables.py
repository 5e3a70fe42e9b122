"""The observables of docs/theory.md section 3, (O1)-(O8), one implementation for simulations and
for training runs.

Every function takes numpy arrays (float64) and accepts leading batch dimensions, so a simulation
passes a stack of matrices over time and a training run passes one matrix per epoch. Embeddings
are (..., N, d) with rows as samples. Spectra are sorted once, here, in the order the schema
states (:func:`sort_spectrum`); readers never re-sort.

The collapse criterion is defined once, here (:func:`collapsed`): a quantity has collapsed when
its magnitude is below COLLAPSE_FRACTION = 2% of its reference scale. Far below that, a quantity
that has fallen under NUMERICAL_ZERO = 1e-9 of the largest value it reached is numerically zero
(:func:`numerically_zero`: near the resolution of the solvers' tolerances), and a ratio with it
in the denominator (tau = <W_a, W>/||W||^2, a residual relative to ||W W^T||, ...) is undefined.
"""

from __future__ import annotations

import numpy as np

RANKME_EPS = 1e-7
#: a mode, a dimension or an embedding has collapsed below this fraction of its reference scale
COLLAPSE_FRACTION = 0.02
#: the embedding has collapsed when the std of its l2-normalised rows times sqrt(d) is below this
#: fraction of the value of an isotropic spread (z_std ~ 1 when spread, 0 at complete collapse)
COLLAPSED_Z_STD = 0.05
#: the embedding has collapsed onto a line when its centred effective rank is below this
COLLAPSED_RANK = 2.0
#: a quantity below this fraction of the largest value it reached is numerically zero: for weights
#: of order 1 its entries are then within a factor 1000 of the solvers' default absolute tolerance
#: (atol 1e-12), which stops resolving their direction as they shrink further, so the ratios it
#: divides are noise (a fully collapsed linear BYOL run underflows to 1e-120)
NUMERICAL_ZERO = 1e-9


def _fro(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a, axis=(-2, -1))


def _transpose(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def sort_spectrum(values: np.ndarray) -> np.ndarray:
    """Sort the last axis by decreasing real part, ties by decreasing imaginary part (stable).

    The schema's one eigenvalue order: continuous in time for real spectra, and the order by
    decreasing magnitude for the non-negative spectra of the theory.
    """
    order = np.lexsort((-np.imag(values), -np.real(values)), axis=-1)
    return np.take_along_axis(values, order, axis=-1)


def collapsed(magnitude: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """The collapse criterion: |magnitude| < COLLAPSE_FRACTION * scale (broadcasting)."""
    return np.abs(magnitude) < COLLAPSE_FRACTION * np.asarray(scale)


def collapsed_modes(eig_abs: np.ndarray) -> np.ndarray:
    """Which modes have collapsed at each time, for |eigenvalues| over (time, mode).

    The reference scale is the largest magnitude any mode has reached up to that time, so a
    spectrum that collapses entirely is seen as collapsed (a scale taken at the same time would
    never count the largest mode).
    """
    eig_abs = np.abs(np.asarray(eig_abs, dtype=float))
    scale = np.maximum.accumulate(np.max(eig_abs, axis=-1), axis=0)
    return collapsed(eig_abs, scale[..., None])


def numerically_zero(magnitude: np.ndarray) -> np.ndarray:
    """Where ``magnitude`` (over time, axis 0) is below NUMERICAL_ZERO times the largest value it
    reached up to then: e.g. ||W|| of a fully collapsed run that underflowed towards 1e-100."""
    magnitude = np.abs(np.asarray(magnitude, dtype=float))
    scale = np.maximum.accumulate(np.where(np.isfinite(magnitude), magnitude, 0.0), axis=0)
    return ~(magnitude > NUMERICAL_ZERO * scale) | (scale == 0)


def predictor_eigenvalues(wp: np.ndarray) -> np.ndarray:
    """Eigenvalues of W_p (complex in general), in the schema's order (:func:`sort_spectrum`)."""
    return sort_spectrum(np.linalg.eigvals(wp).astype(complex))


def singular_values(wp: np.ndarray) -> np.ndarray:
    """Singular values of W_p, decreasing."""
    return np.linalg.svd(wp, compute_uv=False)


def symmetric_part_eigenvalues(wp: np.ndarray) -> np.ndarray:
    """Eigenvalues of (W_p + W_p^T)/2, decreasing."""
    return np.linalg.eigvalsh((wp + _transpose(wp)) / 2)[..., ::-1]


def asymmetry(wp: np.ndarray) -> np.ndarray:
    """||W_p - W_p^T||_F / ||W_p + W_p^T||_F over the last two axes, in [0, inf] (docs/theory.md
    (O2)).

    Where W_p + W_p^T = 0 the ratio has no denominator; its value there is stated: inf for a
    nonzero skew-symmetric W_p (the limit of the ratio), 0 for W_p = 0 (no skew part). A reader
    that must not count a collapsed W_p as symmetric masks it (``dynamics.engine.
    mark_undefined`` sets the ratio to NaN where ||W_p|| is numerically zero).
    """
    skew = _fro(wp - _transpose(wp))
    sym = _fro(wp + _transpose(wp))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sym > 0, skew / np.where(sym > 0, sym, 1), np.where(skew > 0, np.inf, 0.0))


def correlation_eigh(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (decreasing) and eigenvectors (matching columns) of a symmetric matrix."""
    vals, vecs = np.linalg.eigh((corr + _transpose(corr)) / 2)
    return vals[..., ::-1], vecs[..., ::-1]


def alignment_cos(wp: np.ndarray, corr: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
    """cos(W_p u_j, u_j) for the eigenvectors u_j of ``corr``, by decreasing eigenvalue.

    Tian et al. 2021, Fig. 2 (column 3): 1 when u_j is an eigenvector of W_p with a positive
    eigenvalue, -1 for a negative one, 0 when W_p u_j = 0 (then the cosine is undefined; 0 is
    reported).
    """
    u = correlation_eigh(corr)[1] if u is None else u  # u: the eigenvectors, if known
    wpu = wp @ u
    num = np.sum(wpu * u, axis=-2)
    den = np.linalg.norm(wpu, axis=-2) * np.linalg.norm(u, axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def commutator_norm(corr: np.ndarray, wp: np.ndarray) -> np.ndarray:
    """||[F, W_p]||_F / (||F||_F ||W_p||_F), the eigenspace misalignment (Tian Theorem 3)."""
    comm = corr @ wp - wp @ corr
    den = _fro(corr) * _fro(wp)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, _fro(comm) / np.where(den > 0, den, 1), 0.0)


def feature_correlation(z: np.ndarray) -> np.ndarray:
    """Uncentred feature correlation F1 F1^T = (1/N) sum_i z_i z_i^T for z of shape (..., N, d)."""
    return _transpose(z) @ z / z.shape[-2]


def conservation_residual(wp: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """||W_p^T W_p - F1 F1^T||_F / ||F1 F1^T||_F (Liu et al. 2022, Theorem 3.1, feature space).

    ``corr`` is the uncentred feature correlation F1 F1^T (see :func:`feature_correlation`).
    """
    num = _fro(_transpose(wp) @ wp - corr)
    den = _fro(corr)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.inf)


def normalised_second_moment(z: np.ndarray) -> np.ndarray:
    """The uncentred second moment M = Z^T Z / N scaled to trace d: M d / tr M ('moment').

    Normalised by its trace so that it measures decorrelation, not the scale of z (an
    unnormalised M equals I only for one scale). 0 for an embedding that is exactly 0.
    """
    m = feature_correlation(z)
    trace = np.trace(m, axis1=-2, axis2=-1)[..., None, None]
    return m * z.shape[-1] / np.where(trace > 0, trace, 1.0)


def alive_dimensions(z: np.ndarray) -> np.ndarray:
    """Dimensions whose CENTRED std over the samples has not collapsed (:func:`collapsed`)
    relative to the largest centred std of any dimension: a common offset, however large, kills
    no dimension. A std below NUMERICAL_ZERO of the largest root-mean-square value of a
    dimension is rounding, not spread: all are dead for an embedding that is constant, whatever
    its value."""
    std = np.std(z, axis=-2)
    top = np.max(std, axis=-1, keepdims=True)
    rms = np.max(np.sqrt(np.mean(z * z, axis=-2)), axis=-1, keepdims=True)
    return (std > NUMERICAL_ZERO * rms) & ~collapsed(std, top)


def pearson_correlation(z: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of z (unit diagonal; the 'pearson' convention of Sigma).

    A dead dimension (:func:`alive_dimensions`) has no correlation; its row and column are set
    to 0, diagonal included.
    """
    centred = z - z.mean(axis=-2, keepdims=True)
    cov = _transpose(centred) @ centred / z.shape[-2]
    std = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    alive = alive_dimensions(z)
    inv = np.where(alive, 1.0 / np.where(alive, std, 1.0), 0.0)
    return cov * inv[..., :, None] * inv[..., None, :]


def mean_squared_correlation(z: np.ndarray) -> np.ndarray:
    """The decorrelation statistic: mean over pairs i != j of alive dimensions of rho_ij^2.

    rho is the Pearson correlation of the columns of z (N samples); with a alive dimensions it is
    sum_{i != j alive} rho_ij^2 / (a (a - 1)), i.e. ||Sigma - I||_F^2 / (d (d - 1)) when every
    dimension is alive. It does not grow with d, and it is undefined (NaN) when fewer than two
    dimensions are alive: a collapsed embedding is reported as collapsed
    (:func:`alive_dimensions`), never as decorrelated. Its floor for independent features is
    :func:`correlation_floor`.
    """
    rho = pearson_correlation(z)
    alive = alive_dimensions(z)
    a = np.sum(alive, axis=-1)
    off = np.sum((rho * (1 - np.eye(z.shape[-1]))) ** 2, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a >= 2, off / (a * (a - 1.0)), np.nan)


def correlation_floor(n: int) -> float:
    """E[rho^2] = 1/(N - 1) of the sample correlation of two independent Gaussian variables
    from N samples: the value :func:`mean_squared_correlation` takes for independent features."""
    return 1.0 / (n - 1)


def sigma_distances(sigma: np.ndarray) -> dict[str, np.ndarray]:
    """||Sigma - I||_F^2, that divided by d, and the off-diagonal part ||Sigma - diag||_F^2."""
    d = sigma.shape[-1]
    eye = np.eye(d)
    total = _fro(sigma - eye) ** 2
    offdiag = _fro(sigma * (1 - eye)) ** 2
    return {"dist": total, "dist_per_dim": total / d, "offdiag": offdiag}


def sigma_observables(z: np.ndarray) -> dict[str, np.ndarray]:
    """The ``sigma_*`` variables of the schema for embeddings z (..., N, d).

    ``sigma_corr_mean_sq`` (the headline: :func:`mean_squared_correlation`), its floor
    ``sigma_floor`` and ``dead_dims``; then ||Sigma - I||_F^2, per d and its off-diagonal part in
    both conventions, 'pearson' (:func:`pearson_correlation`) and 'moment'
    (:func:`normalised_second_moment`).
    """
    out = {
        "sigma_corr_mean_sq": mean_squared_correlation(z),
        "sigma_floor": np.full(z.shape[:-2], correlation_floor(z.shape[-2])),
        "dead_dims": np.sum(~alive_dimensions(z), axis=-1).astype(float),
    }
    for convention, sigma in (
        ("pearson", pearson_correlation(z)),
        ("moment", normalised_second_moment(z)),
    ):
        dist = sigma_distances(sigma)
        out[f"sigma_dist_{convention}"] = dist["dist"]
        out[f"sigma_dist_{convention}_per_dim"] = dist["dist_per_dim"]
        out[f"sigma_offdiag_{convention}"] = dist["offdiag"]
    return out


def effective_rank(z: np.ndarray) -> np.ndarray:
    """RankMe (Garrido et al. 2023, eq. 1): exp(-sum_k p_k log p_k), p_k = s_k/||s||_1 + 1e-7."""
    s = np.linalg.svd(z, compute_uv=False)
    total = np.sum(s, axis=-1, keepdims=True)
    p = s / np.where(total > 0, total, 1.0) + RANKME_EPS
    return np.exp(-np.sum(p * np.log(p), axis=-1))


def centred_effective_rank(z: np.ndarray) -> np.ndarray:
    """RankMe of the centred embedding z - mean(z): the number of directions the samples vary
    along. RankMe itself (:func:`effective_rank`, Garrido et al.'s definition, uncentred)
    counts a common offset as a direction."""
    return effective_rank(z - np.mean(z, axis=-2, keepdims=True))


def z_std(z: np.ndarray) -> np.ndarray:
    """SimSiam's collapse monitor (Chen & He 2021, Fig. 2): mean_j std_i(z_i/||z_i||)_j sqrt(d).

    About 1 for embeddings spread isotropically over the sphere, 0 at complete collapse.
    """
    norms = np.linalg.norm(z, axis=-1, keepdims=True)
    zn = z / np.where(norms > 0, norms, 1.0)
    return np.mean(np.std(zn, axis=-2), axis=-1) * np.sqrt(z.shape[-1])


def representation_collapsed(z: np.ndarray) -> np.ndarray:
    """The toolkit's one criterion of a collapsed embedding z (..., N, d): its spread z_std is
    below COLLAPSED_Z_STD (complete collapse onto one point of the sphere), or its centred
    effective rank is below COLLAPSED_RANK (every sample on one line, either sign: rank-1
    collapse, which z_std misses), or no dimension is alive (:func:`alive_dimensions`)."""
    return (
        (z_std(z) < COLLAPSED_Z_STD)
        | (centred_effective_rank(z) < COLLAPSED_RANK)
        | ~np.any(alive_dimensions(z), axis=-1)
    )


def predictor_observables(wp: np.ndarray, corr: np.ndarray) -> dict[str, np.ndarray]:
    """The W_p observables of docs/theory.md (O1)-(O4) from W_p (..., d, d) and a feature
    correlation (..., d, d)."""
    eig = predictor_eigenvalues(wp)
    corr_values, corr_vectors = correlation_eigh(corr)
    return {
        "wp_eig_real": eig.real,
        "wp_eig_imag": eig.imag,
        "wp_singular": singular_values(wp),
        "wp_sym_eig": symmetric_part_eigenvalues(wp),
        "wp_asymmetry": asymmetry(wp),
        "alignment_cos": alignment_cos(wp, corr, corr_vectors),
        "commutator_norm": commutator_norm(corr, wp),
        "corr_eig": corr_values,
        "conservation_residual": conservation_residual(wp, corr),
    }
