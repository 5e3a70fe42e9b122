"""Quick-look figures of one simulation result (``python -m dynamics.simulate ... --plot``).

The comparison figures of a paper (simulation against measurement) are made by ``reports``; this
module draws what a user checks right after a run: the predictor's eigenvalues with the predicted
fixed points, and the conservation law against its predicted decay e^{-2 eta t}.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from symbolic.common.results import params_from_attrs  # noqa: E402


def _fixed_point_lines(ax, attrs) -> None:
    if attrs.get("p_star_plus", 0) > 0:
        ax.axhline(attrs["p_star_plus"], color="k", ls="--", lw=1, label=r"$p^*_+$ (closed form)")
        ax.axhline(attrs["p_star_minus"], color="0.4", ls=":", lw=1, label=r"$p^*_-$ (basin edge)")
    ax.axhline(0, color="0.7", lw=0.5)


def _eigenvalue_panel(ax, ds: xr.Dataset, name: str) -> None:
    # Sorted by real part at each time the curves are continuous; the file's magnitude order is not.
    values = -np.sort(-ds[name].values, axis=1)
    n = values.shape[1]
    for j in range(n):
        ax.plot(ds["time"], values[:, j], lw=1, color=plt.cm.viridis(j / max(1, n - 1)))
    _fixed_point_lines(ax, ds.attrs)
    ax.set_xlabel("flow time t")
    ax.set_ylabel(r"Re eig($W_p$)" if name == "wp_eig_real" else r"$p_j$")
    ax.set_title("predictor eigenvalues")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)


def _conservation_panel(ax, ds: xr.Dataset, eta: float) -> None:
    t = ds["time"].values
    ax.semilogy(t, ds["conservation_residual_weight"], lw=2, label="conservation residual")
    ax.semilogy(t, np.exp(-2 * eta * t), "k--", lw=1, label=r"$e^{-2\eta t}$ (theory)")
    if "conservation_residual" in ds:
        ax.semilogy(
            t, ds["conservation_residual"], lw=1, alpha=0.7, label="feature space (Liu form)"
        )
    ax.set_xlabel("flow time t")
    ax.set_ylabel("relative residual")
    ax.set_title("conservation law")
    ax.legend(loc="best", fontsize=8)


def _phase_panel(ax, ds: xr.Dataset, alpha_p: float) -> None:
    p, s = ds["p"].values, ds["s"].values
    for j in range(p.shape[1]):
        ax.plot(p[:, j], s[:, j], lw=1, color=plt.cm.viridis(j / max(1, p.shape[1] - 1)))
        ax.plot(p[0, j], s[0, j], "o", ms=3, color="0.3")
    grid = np.linspace(min(p.min(), 0), p.max() * 1.05, 200)
    ax.plot(grid, grid**2 / alpha_p, "k--", lw=1, label=r"invariant parabola $s = p^2/\alpha_p$")
    ax.set_xlabel(r"$p_j$")
    ax.set_ylabel(r"$s_j$")
    ax.set_title("phase portrait (o: start)")
    ax.legend(loc="best", fontsize=8)


def _gap_panel(ax, ds: xr.Dataset) -> None:
    ax.plot(ds["time"], ds["ema_gap"], lw=2, label=r"$\|\xi - \theta\|$ (simulated)")
    ax.plot(ds["time"], ds["ema_gap_predicted"], "k--", lw=1, label="closed form")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("EMA gap")
    ax.legend(loc="best", fontsize=8)


def _spectrum_panel(ax, ds: xr.Dataset, name: str, title: str, ylabel: str) -> None:
    """Eigenvalues ``name`` (time, mode) on a log axis (magnitudes; collapse shows as a fall)."""
    values = np.abs(ds[name].values)
    n = values.shape[1]
    floor = max(float(values.max()) * 1e-12, 1e-300)
    for j in range(n):
        ax.semilogy(ds["time"], np.maximum(values[:, j], floor), lw=1,
                    color=plt.cm.viridis(j / max(1, n - 1)))  # fmt: skip
    ax.set_xlabel("flow time t")
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def _norm_panel(ax, ds: xr.Dataset) -> None:
    ax.semilogy(ds["time"], ds["w_norm"], lw=2, label=r"$\|W\|_F$")
    ax.set_xlabel("flow time t")
    ax.set_ylabel(r"$\|W\|_F$")
    ax.set_title("collapse of the online weights")


def _loss_rank_panel(ax, ds: xr.Dataset) -> None:
    ax.plot(ds["time"], ds["loss"], "k", lw=1.5, label="loss")
    ax.set_xlabel("flow time t")
    ax.set_ylabel("loss")
    right = ax.twinx()
    right.plot(ds["time"], ds["effective_rank"], "tab:red", lw=1.5)
    right.set_ylabel("effective rank (RankMe, eval set)", color="tab:red")
    ax.set_title("loss and effective rank")


#: quick-look layouts of the breadth scenarios: scenario -> (left, right) panel drawers
_DIRECT = ("directpred", "directcopy", "directpred_discrete")
_ABLATION = ("no_predictor", "no_stopgrad")
_ENCODER = ("barlow_twins", "vicreg", "spectral", "liu", "general")


def _breadth_panels(axes, ds: xr.Dataset, name: str) -> None:
    if name in _DIRECT:
        _eigenvalue_panel(axes[0], ds, "wp_eig_real")
        _spectrum_panel(axes[1], ds, "fhat_eig", r"running correlation $\hat F$", "eig($\\hat F$)")
    elif name in _ABLATION:
        _spectrum_panel(axes[0], ds, "corr_eig", "feature correlation", r"eig($E[f f^T]$)")
        _norm_panel(axes[1], ds)
    else:
        _spectrum_panel(axes[0], ds, "corr_eig", "feature correlation", r"eig($Z_1^T Z_1 / n$)")
        _loss_rank_panel(axes[1], ds)


def plot_result(ds: xr.Dataset, stem: Path) -> list[Path]:
    """Draw the quick-look figure of ``ds`` to ``stem``.png and ``stem``.pdf; return the paths."""
    params = params_from_attrs(ds.attrs)
    name = ds.attrs["name"]
    if name == "ema_gap":
        fig, axes = plt.subplots(1, 1, figsize=(4.5, 3.2))
        _gap_panel(axes, ds)
    elif name in (*_DIRECT, *_ABLATION, *_ENCODER):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        _breadth_panels(axes, ds, name)
    elif name == "eigenmodes":
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        _eigenvalue_panel(axes[0], ds, "p")
        _phase_panel(axes[1], ds, params["alpha_p"])
    else:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        _eigenvalue_panel(axes[0], ds, "wp_eig_real")
        _conservation_panel(axes[1], ds, params["eta"])
    fig.suptitle(
        f"{name}  ({', '.join(f'{k}={v}' for k, v in params.items() if k in _SHOWN)}; "
        f"git {ds.attrs['git_revision'][:10]})",
        fontsize=8,
    )
    fig.tight_layout()
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


_SHOWN = (
    "dim", "eta", "alpha_p", "beta", "sigma2", "seed", "trajectory", "variant", "convention",
    "eps", "loss", "encoder", "standardize", "n_samples",
)  # fmt: skip
