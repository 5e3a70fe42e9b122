"""Small synthetic result files in the schema of symbolic.common.schema, made with xarray.

The trajectories are closed forms chosen so that every expected number in the tests is known
without running the code under test:

- simulation ``linear_byol``: 4 modes, Re eig_j(W_p)(t) = p_inf_j + (p0_j - p_inf_j) e^{-t} with
  p_inf = (0.6, 0.6, 0, 0) (two modes converge, two collapse), imaginary parts 0, feature
  correlation eigenvalues eig^2, asymmetry 0.3 e^{-t}, alignment 1 - 0.5 e^{-t}, weight-space
  conservation residual e^{-2 eta t} exactly;
- simulation ``eigenmodes``: p_j(t) as above, s_j = p_j^2/alpha_p + c_j e^{-2 eta t};
- W(t) = chol(W_p^T W_p / alpha_p + e^{-2 eta t} C) with C = 0.5 I, so that Tian's Theorem 1 holds
  exactly in weight space;
- run ``byol``: the simulation sampled at flow times 0, 1, ..., 10 (grid points of the simulation),
  with the per-step record of a plain SGD run (eta, alpha_p, beta constant), probe accuracies and
  decorrelation statistics per epoch; the simulation is derived from it (its ``from_run``
  attributes name the run file), and ``null`` is an other-seed simulation of it whose W_p starts
  from other eigenvalues;
- run ``barlow_twins``: no predictor (no W_p variables), trained with LARS (no flow time).
"""

from __future__ import annotations

import hashlib
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
EPOCHS = np.arange(0, 11)
LR_PER_EPOCH = 1.0  # flow time per epoch: t = epoch
STEPS_PER_EPOCH = 4
C = 0.5 * np.eye(4)

#: Per-epoch measurements of the runs (index = epoch - 1).
KNN = {"byol": 0.5 + 0.02 * EPOCHS, "barlow_twins": 0.45 + 0.025 * EPOCHS}
LINEAR = {"byol": 0.55 + 0.021 * EPOCHS, "barlow_twins": 0.5 + 0.023 * EPOCHS}
CORR = {"byol": 0.04 / (1 + EPOCHS), "barlow_twins": 0.025 / (1 + EPOCHS) ** 1.5}
RANDOM_KNN = {"byol": KNN["byol"][0], "barlow_twins": KNN["barlow_twins"][0]}
RANDOM_LINEAR = {"byol": LINEAR["byol"][0], "barlow_twins": LINEAR["barlow_twins"][0]}


def eig(t: np.ndarray, p0: np.ndarray = P0) -> np.ndarray:
    """Re eig_j(W_p)(t), shape (time, mode)."""
    return P_INF + (p0 - P_INF) * np.exp(-np.asarray(t))[:, None]


def wp_matrices(t: np.ndarray, p0: np.ndarray = P0) -> np.ndarray:
    """W_p(t) = diag(eig) + a skew part that decays like e^{-t}, shape (time, 4, 4)."""
    skew = np.array([[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    diag = np.einsum("tj,jk->tjk", eig(t, p0), np.eye(4))
    return diag + 0.1 * np.exp(-np.asarray(t))[:, None, None] * skew


def w_matrices(t: np.ndarray, eta: float = ETA, p0: np.ndarray = P0) -> np.ndarray:
    """W(t) with W W^T - W_p^T W_p / alpha_p = e^{-2 eta t} C exactly (Theorem 1)."""
    wp = wp_matrices(t, p0)
    m = np.swapaxes(wp, -1, -2) @ wp / ALPHA_P + np.exp(-2 * eta * t)[:, None, None] * C
    return np.linalg.cholesky(m)


def simulation(
    name: str = "linear_byol", eta: float = ETA, p0: np.ndarray = P0, run: Path | None = None
) -> xr.Dataset:
    t = T_SIM
    e = eig(t, p0)
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
            "wp": (("time", "row", "col"), wp_matrices(t, p0)),
            "w": (("time", "row", "input"), w_matrices(t, eta, p0)),
        },
        coords={"time": t, "mode": np.arange(4)},
    )
    params = {"dim": 4, "eta": eta, "alpha_p": ALPHA_P, "beta": 0.4, "sigma2": 0.5, "seed": 7}
    extra = {}
    if run is not None:
        digest = hashlib.sha256((run / "measurements.nc").read_bytes()).hexdigest()
        initial = "run" if p0 is P0 else "seed"
        extra = {"from_run": str(run), "from_run_file_sha256": digest, "from_run_initial": initial}
    ds.attrs = provenance(
        "simulation", name, params, p_star_plus=0.6, p_star_minus=0.05, seed=7, **extra
    )
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
        "sigma_corr_mean_sq": (series, CORR[name]),
        "sigma_floor": (series, np.full(t.shape, 1 / 499)),
        "dead_dims": (series, np.zeros(t.shape)),
        "effective_rank": (series, 3.0 + 0.05 * EPOCHS),
        "z_std": (series, 0.9 - 0.01 * EPOCHS),
        "loss": (series, 2.0 / (1 + EPOCHS)),
        "knn_acc_random": ((), RANDOM_KNN[name]),
        "linear_acc_random": ((), RANDOM_LINEAR[name]),
        "step_at_measurement": (series, EPOCHS * STEPS_PER_EPOCH),
    }
    n_steps = EPOCHS[-1] * STEPS_PER_EPOCH
    lr = LR_PER_EPOCH / STEPS_PER_EPOCH
    steps = ("step",)
    lars = not predictor
    data.update(
        flow_time_step=(
            steps,
            np.full(n_steps, np.nan) if lars else lr * np.arange(1, n_steps + 1),
        ),
        lr_step=(steps, np.full(n_steps, lr)),
        eta_step=(steps, np.full(n_steps, np.nan if lars else eta)),
        alpha_p_step=(steps, np.full(n_steps, np.nan if lars else ALPHA_P)),
        beta_step=(steps, np.full(n_steps, np.nan if lars else 0.4)),
    )
    attrs = {"predictor_kind": "absent", "predictor_linear": 0, "matched_scenario": "none"}
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
                "w": (("epoch", "row", "input"), w_matrices(t, eta)),
            }
        )
        attrs = {
            "predictor_kind": "trained",
            "predictor_linear": 1,
            "matched_scenario": "linear_byol",
        }
    else:
        attrs["flow_time_undefined"] = "LARS rescales each layer's step: no flow time"
    time = np.full(t.shape, np.nan) if lars else t
    ds = xr.Dataset(
        data, coords={"epoch": EPOCHS.astype(float), "time": ("epoch", time), "mode": np.arange(4)}
    )
    params = {
        "method": name,
        "epochs": int(EPOCHS[-1]),
        "lr": 0.05,
        "optimizer": "lars" if lars else "sgd",
        "weight_decay": eta,
        "batch_size": 256,
        "seed": 3,
    }
    ds.attrs = provenance(
        "training",
        name,
        params,
        seed=3,
        epoch_zero="randomly initialised encoder before the first step",
        loss_name="linear_byol",
        **attrs,
    )
    return ds


#: W_p(0) eigenvalues of the other-seed null simulation
NULL_P0 = np.array([-0.1, 0.45, 0.3, 0.1])
UNDEFINED = ("flow_time_step", "eta_step", "alpha_p_step", "beta_step")


def write_inputs(root: Path) -> dict[str, Path]:
    """Write the runs, then the simulations derived from them, under ``root``; their paths."""
    paths = {"byol": root / "runs" / "byol", "barlow_twins": root / "runs" / "barlow_twins"}
    write_netcdf(run("byol"), paths["byol"] / "measurements.nc")
    write_netcdf(
        run("barlow_twins", predictor=False),
        paths["barlow_twins"] / "measurements.nc",
        undefined=UNDEFINED,
    )
    byol = paths["byol"]
    paths["sim"] = write_netcdf(simulation(run=byol), root / "results" / "linear_byol.nc")
    paths["null"] = write_netcdf(
        simulation(p0=NULL_P0, run=byol), root / "results" / "linear_byol_null.nc"
    )
    paths["modes"] = write_netcdf(eigenmodes(), root / "results" / "eigenmodes.nc")
    return paths
