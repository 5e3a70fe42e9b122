"""Small synthetic result files in the schema of symbolic.common.schema, made with xarray.

The trajectories are closed forms chosen so that every expected number in the tests is known
without running the code under test:

- simulation ``linear_byol``: 4 modes, Re eig_j(W_p)(t) = p_inf_j + (p0_j - p_inf_j) e^{-t} with
  p_inf = (0.6, 0.6, 0, 0) (two modes converge, two collapse), imaginary parts 0, feature
  correlation eigenvalues eig^2, asymmetry 0.3 e^{-t}, alignment 1 - 0.5 e^{-t}, weight-space
  conservation residual e^{-2 eta t} exactly;
- simulation ``eigenmodes``: p_j(t) as above, s_j = p_j^2/alpha_p + c_j e^{-2 eta t};
- run ``byol``: the simulation sampled at flow times 1, 2, ..., 10 (grid points of the simulation),
  feature-space residual 0.8 e^{-2 eta t}, probe accuracies and Sigma distances per epoch;
- run ``barlow_twins``: no predictor (no W_p variables).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

ETA = 0.05
ALPHA_P = 1.0
P_INF = np.array([0.6, 0.6, 0.0, 0.0])
P0 = np.array([0.3, 0.2, 0.05, -0.05])
C0 = np.array([0.05, 0.02, 0.03, 0.01])
T_SIM = np.linspace(0.0, 10.0, 201)
EPOCHS = np.arange(1, 11)
LR_PER_EPOCH = 1.0  # flow time per epoch: t = epoch

#: Per-epoch measurements of the runs (index = epoch - 1).
KNN = {"byol": 0.5 + 0.02 * EPOCHS, "barlow_twins": 0.45 + 0.025 * EPOCHS}
LINEAR = {"byol": 0.55 + 0.021 * EPOCHS, "barlow_twins": 0.5 + 0.023 * EPOCHS}
SIGMA_PEARSON = {"byol": 40.0 / EPOCHS, "barlow_twins": 25.0 / EPOCHS**1.5}
SIGMA_MOMENT = {"byol": 90.0 / EPOCHS, "barlow_twins": 60.0 / EPOCHS}
RANDOM_KNN = {"byol": 0.3125, "barlow_twins": 0.3125}
RANDOM_LINEAR = {"byol": 0.4375, "barlow_twins": 0.4375}


def eig(t: np.ndarray) -> np.ndarray:
    """Re eig_j(W_p)(t), shape (time, mode)."""
    return P_INF + (P0 - P_INF) * np.exp(-np.asarray(t))[:, None]


def wp_matrices(t: np.ndarray) -> np.ndarray:
    """W_p(t) = diag(eig) + a skew part that decays like e^{-t}, shape (time, 4, 4)."""
    skew = np.array([[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    diag = np.einsum("tj,jk->tjk", eig(t), np.eye(4))
    return diag + 0.1 * np.exp(-np.asarray(t))[:, None, None] * skew


def simulation(name: str = "linear_byol", eta: float = ETA) -> xr.Dataset:
    t = T_SIM
    e = eig(t)
    dims = ("time", "mode")
    ds = xr.Dataset(
        {
            "wp_eig_real": (dims, e),
            "wp_eig_imag": (dims, np.zeros_like(e)),
            "corr_eig": (dims, e**2),
            "alignment_cos": (dims, 1 - 0.5 * np.exp(-t)[:, None] * np.ones(4)),
            "wp_asymmetry": ("time", 0.3 * np.exp(-t)),
            "conservation_residual_weight": ("time", np.exp(-2 * eta * t)),
            "conservation_residual": ("time", 0.5 * np.exp(-2 * eta * t)),
            "loss": ("time", 1.0 / (1 + t)),
            "wp": (("time", "row", "col"), wp_matrices(t)),
        },
        coords={"time": t, "mode": np.arange(4)},
    )
    params = {"dim": 4, "eta": eta, "alpha_p": ALPHA_P, "beta": 0.4, "sigma2": 0.5, "seed": 7}
    ds.attrs = provenance("simulation", name, params, p_star_plus=0.6, p_star_minus=0.05, seed=7)
    return ds


def eigenmodes(eta: float = ETA) -> xr.Dataset:
    t = T_SIM
    p = eig(t)
    s = p**2 / ALPHA_P + C0 * np.exp(-2 * eta * t)[:, None]
    dims = ("time", "mode")
    ds = xr.Dataset(
        {
            "p": (dims, p),
            "s": (dims, s),
            "tau": (dims, np.ones_like(p)),
            "p_star_plus": (dims, np.full_like(p, 0.6)),
            "p_star_minus": (dims, np.full_like(p, 0.05)),
        },
        coords={"time": t, "mode": np.arange(4)},
    )
    params = {"dim": 4, "eta": eta, "alpha_p": ALPHA_P, "beta": 0.5, "sigma2": 0.5, "seed": 0}
    ds.attrs = provenance("simulation", "eigenmodes", params, seed=0)
    return ds


def run(name: str, eta: float = ETA, predictor: bool = True) -> xr.Dataset:
    t = EPOCHS * LR_PER_EPOCH
    series = ("epoch",)
    data = {
        "knn_acc": (series, KNN[name]),
        "linear_acc": (series, LINEAR[name]),
        "sigma_dist_pearson": (series, SIGMA_PEARSON[name]),
        "sigma_dist_moment": (series, SIGMA_MOMENT[name]),
        "effective_rank": (series, 3.0 + 0.05 * EPOCHS),
        "z_std": (series, 0.9 - 0.01 * EPOCHS),
        "loss": (series, 2.0 / EPOCHS),
        "knn_acc_random": ((), RANDOM_KNN[name]),
        "linear_acc_random": ((), RANDOM_LINEAR[name]),
    }
    if predictor:
        e = eig(t)
        modes = ("epoch", "mode")
        data.update(
            {
                "wp_eig_real": (modes, e),
                "wp_eig_imag": (modes, np.zeros_like(e)),
                "corr_eig": (modes, e**2),
                "alignment_cos": (modes, 1 - 0.5 * np.exp(-t)[:, None] * np.ones(4)),
                "wp_asymmetry": (series, 0.3 * np.exp(-t)),
                "conservation_residual": (series, 0.8 * np.exp(-2 * eta * t)),
                "wp": (("epoch", "row", "col"), wp_matrices(t)),
            }
        )
    ds = xr.Dataset(data, coords={"epoch": EPOCHS, "time": ("epoch", t), "mode": np.arange(4)})
    params = {
        "method": name,
        "epochs": int(EPOCHS[-1]),
        "lr": 0.05,
        "weight_decay": eta,
        "batch_size": 256,
        "seed": 3,
    }
    ds.attrs = provenance("training", name, params, seed=3)
    return ds


def write_inputs(root: Path) -> dict[str, Path]:
    """Write the two simulations and the two run folders under ``root``; their paths."""
    paths = {
        "sim": write_netcdf(simulation(), root / "results" / "linear_byol.nc"),
        "modes": write_netcdf(eigenmodes(), root / "results" / "eigenmodes.nc"),
        "byol": root / "runs" / "byol",
        "barlow_twins": root / "runs" / "barlow_twins",
    }
    write_netcdf(run("byol"), paths["byol"] / "measurements.nc")
    write_netcdf(run("barlow_twins", predictor=False), paths["barlow_twins"] / "measurements.nc")
    return paths
