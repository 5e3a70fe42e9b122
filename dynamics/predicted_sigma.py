"""The Sigma statistics a run measures on its held-out clean images, predicted from W(t).

A run (``empirical.train``, :mod:`empirical.measure`) measures the decorrelation of its features
z = W x on N un-augmented held-out images: the Pearson correlation Sigma of z, its mean squared
off-diagonal entry over alive dimensions ``sigma_corr_mean_sq`` (floor 1/(N-1)), the total
||Sigma - I||_F^2 ``sigma_dist_pearson``, and RankMe ``effective_rank`` (Garrido et al. 2023,
eq. 1), the moment convention ``sigma_dist_moment`` (M d / tr M, M = E[z z^T]) and the feature
scale ``z_norm`` = ||Z||_F / sqrt(N). For a linear encoder every one is a function of the images'
mean m and uncentred second moment S = (1/N) sum_i x_i x_i^T (``moments.nc``: ``eval_mean``,
``eval_second_moment``):

    Cov(z) = W (S - m m^T) W^T,   E[z z^T] = W S W^T,
    Sigma_ij = Cov_ij / sqrt(Cov_ii Cov_jj),   singular values of Z = sqrt(N eig(W S W^T)),

with a dimension dead when its std falls below 2% of the largest root-mean-square value
(:func:`dynamics.observables.alive_dimensions`). So the prediction of these statistics is
exactly what the run would measure if its W were the predicted W(t) (same images, same
definitions as :mod:`dynamics.observables`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dynamics import observables as obs
from symbolic.common.schema import TIME

#: the statistics predicted (names as the run records them)
PREDICTED = (
    "sigma_corr_mean_sq",
    "sigma_floor",
    "dead_dims",
    "sigma_dist_pearson",
    "effective_rank",
)


def held_out_sigma(
    w: np.ndarray, mean: np.ndarray, second: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """The statistics of :data:`PREDICTED` for encoders ``w`` (..., d, n1) on images with mean
    ``mean`` (n1,), second moment ``second`` (n1, n1) and count ``n`` (see the module)."""
    wt = np.swapaxes(w, -1, -2)
    moment = w @ second @ wt
    mz = w @ mean
    cov = moment - mz[..., :, None] * mz[..., None, :]
    std = np.sqrt(np.clip(np.diagonal(cov, axis1=-2, axis2=-1), 0.0, None))
    rms = np.sqrt(np.clip(np.diagonal(moment, axis1=-2, axis2=-1), 0.0, None))
    alive = (std > 0) & ~obs.collapsed(std, np.max(rms, axis=-1, keepdims=True))
    inv = np.where(alive, 1.0 / np.where(alive, std, 1.0), 0.0)
    rho = cov * inv[..., :, None] * inv[..., None, :]
    d = w.shape[-2]
    a = np.sum(alive, axis=-1)
    off = np.sum((rho * (1 - np.eye(d))) ** 2, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sq = np.where(a >= 2, off / (a * (a - 1.0)), np.nan)
    s = np.sqrt(np.clip(np.linalg.eigvalsh(n * moment), 0.0, None))
    total = np.sum(s, axis=-1, keepdims=True)
    p = s / np.where(total > 0, total, 1.0) + obs.RANKME_EPS
    trace = np.trace(moment, axis1=-2, axis2=-1)[..., None, None]
    normalised = moment * d / np.where(trace > 0, trace, 1.0)
    return {
        "sigma_corr_mean_sq": mean_sq,
        "sigma_floor": np.full(mean_sq.shape, obs.correlation_floor(n)),
        "dead_dims": np.sum(~alive, axis=-1).astype(float),
        "sigma_dist_pearson": obs.sigma_distances(rho)["dist"],
        "sigma_dist_moment": obs.sigma_distances(normalised)["dist"],
        "effective_rank": np.exp(-np.sum(p * np.log(p), axis=-1)),
        "z_norm": np.sqrt(np.clip(trace[..., 0, 0], 0.0, None)),
    }


def add_predicted_sigma(ds: xr.Dataset, moments: xr.Dataset) -> xr.Dataset:
    """``ds`` (a simulation derived from a run, ``w`` over time) with the run's Sigma statistics
    predicted from its W(t) and the held-out moments of ``moments.nc``. The model's own feature
    statistics (on its synthetic evaluation set, which the run never saw) are dropped; nothing is
    predicted when ``moments.nc`` holds no held-out moments (a run recorded before they were)."""
    own = [k for k in ds.data_vars if k.startswith("sigma_") or k in (*PREDICTED, "z_std")]
    ds = ds.drop_vars(own)
    if "w" not in ds or "eval_second_moment" not in moments or "n_eval" not in moments.attrs:
        return ds
    n = int(moments.attrs["n_eval"])
    values = held_out_sigma(
        np.asarray(ds["w"].values, dtype=float),
        np.asarray(moments["eval_mean"].values, dtype=float),
        np.asarray(moments["eval_second_moment"].values, dtype=float),
        n,
    )
    for name, value in values.items():
        ds[name] = ((TIME,), value)
    ds.attrs["sigma_prediction"] = (
        f"{', '.join(PREDICTED)}: of the features W(t) x on the run's {n} held-out clean images, "
        "from their mean and second moment (moments.nc; dynamics.predicted_sigma)"
    )
    return ds
