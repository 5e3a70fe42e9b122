"""Phase diagrams of linear BYOL/SimSiam (Tian, Chen & Ganguli 2021, Figs. 3, 4, 8, 9).

    python -m dynamics.phase flow       # (p_j, s_j) flow field, invariant parabola, fixed points
    python -m dynamics.phase line       # the 1-D phase line dp/dt on the parabola, 3 regimes
    python -m dynamics.phase collapse   # collapsed fraction over (eta, alpha_p) and (eta, beta)
    python -m dynamics.phase alignment  # ||[F, W_p]|| and asymmetry of W_p over time, several eta
    python -m dynamics.phase all

Each writes OUT.png, OUT.pdf and OUT.nc (the numbers drawn, with provenance). The flow field and
the phase line evaluate :func:`~dynamics.models.eigenmodes.mode_rhs` at fixed tau; fixed points
come from the closed forms (p*_+- on the parabola s = p^2/alpha_p, and (0, 0)) and their
stability from the eigenvalues of the Jacobian (central differences): red stable, green unstable
(Tian's colours). The collapse maps are vectorised sweeps of the per-mode model
(:mod:`dynamics.sweep`) with the analytic threshold eta = tau^2/(4(1+sigma^2)) drawn on top. The
alignment figure integrates the full matrix flow (``linear_byol``) from random weights.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from dynamics.models.eigenmodes import collapse_threshold, fixed_points, mode_rhs  # noqa: E402
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams  # noqa: E402
from dynamics.simulate import RunSettings, check_size, simulate  # noqa: E402
from dynamics.sweep import run_sweep  # noqa: E402
from dynamics.sweep.run import check_sweep  # noqa: E402
from symbolic.common.cli import ArgumentParser, UsageError, run_main  # noqa: E402
from symbolic.common.files import atomic_path, check_output_folder  # noqa: E402
from symbolic.common.options import ParameterError  # noqa: E402
from symbolic.common.provenance import provenance  # noqa: E402
from symbolic.common.results import write_netcdf
from symbolic.common.schema import KNOWN_DIMS

FIGURES = ("flow", "line", "collapse", "alignment")
#: at most this many panels (values of --flow-eta, --line-eta) or curves (--align-eta)
MAX_PANELS = 12
#: largest --tau, --alpha-p, --sigma2 (the axes of the flow and the line scale with them)
MAX_SCALE = 1e3
STABLE, UNSTABLE, SEMI = "tab:red", "tab:green", "0.5"


def _floats(text: str, name: str) -> list[float]:
    """Comma-separated weight decays: finite, >= 0, at most MAX_PANELS of them."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--{name} {text!r} is not allowed: comma-separated numbers") from None
    if not all(np.isfinite(values)):
        raise UsageError(f"--{name} {text!r} is not allowed: finite numbers")
    if min(values) < 0:
        raise UsageError(f"--{name} {text!r} is not allowed: weight decays eta >= 0")
    if len(values) > MAX_PANELS:
        raise UsageError(f"--{name} {text!r} is not allowed: at most {MAX_PANELS} values")
    return values


def check_options(args) -> dict[str, list[float]]:
    """Every option, whichever figures are drawn, checked before the first file is written:
    UsageError naming the first bad value. Returns the parsed weight-decay lists."""
    for name, value, ok, allowed in (
        ("tau", args.tau, 0 < args.tau <= MAX_SCALE, f"a number > 0 and <= {MAX_SCALE:g}"),
        ("alpha-p", args.alpha_p, 0 < args.alpha_p <= MAX_SCALE, f"> 0 and <= {MAX_SCALE:g}"),
        ("sigma2", args.sigma2, 0 <= args.sigma2 <= MAX_SCALE, f">= 0 and <= {MAX_SCALE:g}"),
    ):
        if not (ok and np.isfinite(value)):
            raise UsageError(f"--{name} {value} is not allowed: {allowed}")
    lists = {n: _floats(getattr(args, n.replace("-", "_")), n) for n in
             ("flow-eta", "line-eta", "align-eta")}  # fmt: skip
    common = {"p0": args.p0, "s0": args.s0, "sigma2": args.sigma2, "tau0": args.tau0}
    try:
        settings = RunSettings(t_end=args.t_end, rtol=1e-8, atol=1e-10)
        for axis, values in (("alpha_p", args.alpha_ps), ("beta", args.betas)):
            check_sweep("eigenmodes", [f"eta={args.eta}", f"{axis}={values}"], common, settings)
        align = RunSettings(t_end=args.align_t_end)
        for eta in lists["align-eta"]:
            params = LinearBYOLParams(dim=args.dim, input_dim=args.dim, sigma2=args.sigma2, eta=eta)
        check_size(LinearBYOLModel, params, align.n_out)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    check_output_folder(args.out)
    return lists


def jacobian(p: float, s: float, tau: float, eta: float, alpha_p: float, sigma2: float):
    """d(dp/dt, ds/dt)/d(p, s) at fixed tau, by central differences of mode_rhs."""
    h = 1e-6

    def f(pp, ss):
        dp, ds, _ = mode_rhs(pp, ss, tau, eta, alpha_p, 0.0, sigma2, simsiam=True)
        return np.array([dp, ds])

    return np.column_stack(
        [(f(p + h, s) - f(p - h, s)) / (2 * h), (f(p, s + h) - f(p, s - h)) / (2 * h)]
    )


def fixed_point_list(tau, eta, alpha_p, sigma2) -> list[tuple[float, float, str]]:
    """[(p, s, 'stable'|'unstable')] of the (p, s) system at fixed tau (eta > 0: isolated)."""
    points = [(0.0, 0.0)]
    plus, minus = fixed_points(eta, tau, sigma2)
    for p in (minus, plus):
        if np.isfinite(p) and p > 0:
            points.append((float(p), float(p) ** 2 / alpha_p))
    out = []
    for p, s in points:
        eig = np.linalg.eigvals(jacobian(p, s, tau, eta, alpha_p, sigma2)).real
        out.append((p, s, "stable" if np.all(eig < 0) else "unstable"))
    return out


def phase_line(p: np.ndarray, tau, eta, alpha_p, sigma2) -> np.ndarray:
    """dp/dt on the invariant parabola s = p^2/alpha_p (Tian Fig. 4)."""
    return mode_rhs(p, p**2 / alpha_p, tau, eta, alpha_p, 0.0, sigma2, simsiam=True)[0]


def _finish(fig, stem: Path, ds: xr.Dataset, title: str) -> list[Path]:
    fig.suptitle(f"{title}  (git {ds.attrs['git_revision'][:10]})", fontsize=9)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{stem}.png"), Path(f"{stem}.pdf"), Path(f"{stem}.nc")]
    undefined = [n for n in ("commutator_norm", "wp_asymmetry") if n in ds]  # NaN: collapsed W
    write_netcdf(ds, paths[2], extra_dims=[d for d in ds.dims if d not in KNOWN_DIMS],
                 undefined=undefined)  # fmt: skip
    for path in paths[:2]:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=path.suffix[1:])
    plt.close(fig)
    return paths


def draw_flow(stem: Path, etas, tau, alpha_p, sigma2) -> list[Path]:
    """Tian Fig. 3: the (p, s) flow field per eta, the parabola, stable/unstable fixed points."""
    p_top = 1.6 * tau / (1 + sigma2)
    p = np.linspace(-0.3 * p_top, p_top, 41)
    s = np.linspace(0.0, 1.2 * p_top**2 / alpha_p + 0.05, 41)
    pp, ss = np.meshgrid(p, s)
    fig, axes = plt.subplots(1, len(etas), figsize=(4.2 * len(etas), 3.8), squeeze=False)
    dps, dss = [], []
    for ax, eta in zip(axes[0], etas, strict=True):
        dp, ds, _ = mode_rhs(pp, ss, tau, eta, alpha_p, 0.0, sigma2, simsiam=True)
        dps.append(dp)
        dss.append(ds)
        speed = np.hypot(dp, ds)
        ax.streamplot(p, s, dp, ds, color=np.log10(speed + 1e-12), cmap="Blues", density=1.1,
                      linewidth=0.8, arrowsize=0.8)  # fmt: skip
        ax.plot(p, p**2 / alpha_p, "k--", lw=1.2, label=r"$s = p^2/\alpha_p$")
        if eta == 0:
            p_star = tau / (1 + sigma2)
            ax.axvline(p_star, color=STABLE, lw=2.5, label=r"$p = \tau/(1+\sigma^2)$ (stable)")
            grow = p * (tau - (1 + sigma2) * p) > 0
            ax.plot(np.where(grow, p, np.nan), 0 * p, color=UNSTABLE, lw=4, label="s = 0 unstable")
            ax.plot(np.where(~grow, p, np.nan), 0 * p, color=STABLE, lw=4, label="s = 0 stable")
        else:
            for fp, fs, kind in fixed_point_list(tau, eta, alpha_p, sigma2):
                ax.plot(fp, fs, "o", ms=9, mec="k", color=STABLE if kind == "stable" else UNSTABLE,
                        label=f"{kind} ({fp:.3g}, {fs:.3g})", zorder=5, clip_on=False)  # fmt: skip
        regime = "all modes collapse" if eta > collapse_threshold(tau, sigma2) else ""
        ax.set_title(rf"$\eta$ = {eta:g}" + (f" ({regime})" if regime else ""), fontsize=10)
        ax.set_xlim(p[0], p[-1])
        ax.set_ylim(s[0], s[-1])
        ax.set_xlabel(r"$p_j$ (eigenvalue of $W_p$)")
        ax.set_ylabel(r"$s_j$ (eigenvalue of $F$)")
        ax.legend(loc="upper left", fontsize=7)
    ds = xr.Dataset(
        {"dp_dt": (("eta", "s", "p"), np.array(dps)), "ds_dt": (("eta", "s", "p"), np.array(dss))},
        coords={"eta": etas, "s": s, "p": p},
    )
    params = {"eta": list(etas), "tau": tau, "alpha_p": alpha_p, "sigma2": sigma2}
    ds.attrs.update(provenance("phase", "flow", params))
    title = rf"Tian Fig. 3: flow of $(p_j, s_j)$ at fixed $\tau$={tau:g}, $\alpha_p$={alpha_p:g}"
    return _finish(fig, stem, ds, title + rf", $\sigma^2$={sigma2:g}")


def draw_line(stem: Path, etas, tau, alpha_p, sigma2) -> list[Path]:
    """Tian Fig. 4: dp/dt = p^2 (tau - (1+sigma^2) p) - eta p on the parabola, per eta."""
    p = np.linspace(-0.15, 1.1 * tau / (1 + sigma2), 400)
    threshold = float(collapse_threshold(tau, sigma2))
    fig, axes = plt.subplots(1, len(etas), figsize=(4.0 * len(etas), 3.3), squeeze=False)
    rates = []
    for ax, eta in zip(axes[0], etas, strict=True):
        rate = phase_line(p, tau, eta, alpha_p, sigma2)
        rates.append(rate)
        ax.plot(p, rate, "b", lw=1.5)
        ax.axhline(0, color="k", lw=0.8)
        roots = [0.0] + [float(r) for r in fixed_points(eta, tau, sigma2) if np.isfinite(r)]
        if eta == 0:
            roots = [0.0, tau / (1 + sigma2)]
        for r in sorted(set(roots)):
            h = 1e-4 * max(1.0, abs(r))
            left = phase_line(np.array(r - h), tau, eta, alpha_p, sigma2)
            right = phase_line(np.array(r + h), tau, eta, alpha_p, sigma2)
            kind, color = (
                ("stable", STABLE) if left > 0 > right else
                ("unstable", UNSTABLE) if left < 0 < right else ("semi-stable", SEMI)
            )  # fmt: skip
            ax.plot(r, 0, "o", ms=9, mec="k", color=color, zorder=5, label=f"{kind} p = {r:.3g}")
        for x0 in np.linspace(p[0], p[-1], 9)[1:-1]:  # flow direction on the axis
            v = phase_line(np.array(x0), tau, eta, alpha_p, sigma2)
            if abs(v) > 1e-6:
                ax.annotate("", (x0 + 0.03 * np.sign(v), 0), (x0, 0),
                            arrowprops={"arrowstyle": "->", "color": "0.3"})  # fmt: skip
        regime = (
            r"(a) $\eta$ = 0" if eta == 0 else
            rf"(b) $0 < \eta \leq \eta^*$: $\eta$ = {eta:g}" if eta <= threshold else
            rf"(c) $\eta > \eta^*$: $\eta$ = {eta:g}"
        )  # fmt: skip
        ax.set_title(regime, fontsize=10)
        ax.set_xlabel(r"$p_j$ on the parabola $s_j = p_j^2/\alpha_p$")
        ax.set_ylabel(r"$dp_j/dt$")
        ax.legend(loc="lower left", fontsize=7)
    ds = xr.Dataset({"dp_dt": (("eta", "p"), np.array(rates))}, coords={"eta": etas, "p": p})
    params = {"eta": list(etas), "tau": tau, "alpha_p": alpha_p, "sigma2": sigma2}
    ds.attrs.update(provenance("phase", "line", params, collapse_threshold_eta=threshold))
    title = (
        rf"Tian Fig. 4: phase line, $dp/dt = -(1+\sigma^2)\,p\,(p-p^*_-)(p-p^*_+)$; "
        rf"threshold $\eta$ = {threshold:.4g}"
    )
    return _finish(fig, stem, ds, title)


def draw_collapse(stem, eta_spec, alpha_ps, betas, sigma2, p0, s0, tau0, t_end) -> list[Path]:
    """Collapsed fraction of the modes over (eta, alpha_p) and (eta, beta) from per-mode sweeps."""
    common = {"p0": p0, "s0": s0, "sigma2": sigma2, "tau0": tau0}
    settings = RunSettings(t_end=t_end, rtol=1e-8, atol=1e-10)
    grids = {
        "alpha_p": run_sweep("eigenmodes", [f"eta={eta_spec}", f"alpha_p={alpha_ps}"],
                             common, settings),
        "beta": run_sweep("eigenmodes", [f"eta={eta_spec}", f"beta={betas}"], common, settings),
    }  # fmt: skip
    threshold = float(collapse_threshold(1.0, sigma2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    data = {}
    for ax, (axis, sweep) in zip(axes, grids.items(), strict=True):
        frac = sweep["collapse_fraction"].transpose(axis, "eta")
        data[f"collapse_fraction_{axis}"] = ((axis, "eta"), frac.values)
        eta = sweep["eta"].values
        ys = np.arange(sweep.sizes[axis])
        mesh = ax.pcolormesh(eta, ys, frac.values, vmin=0, vmax=1, cmap="magma", shading="nearest")
        ax.axvline(threshold, color="c", ls="--", lw=2,
                   label=rf"$\eta^* = 1/(4(1+\sigma^2))$ = {threshold:.4g}")  # fmt: skip
        ax.set_yticks(ys, [f"{v:g}" for v in sweep[axis].values])
        ax.set_xlabel(r"weight decay $\eta$")
        ax.set_ylabel(r"$\alpha_p$" if axis == "alpha_p" else r"EMA rate $\beta$")
        ax.legend(loc="upper left", fontsize=8)
        fig.colorbar(mesh, ax=ax, label="fraction of modes collapsed")
    axes[0].set_title(r"over $(\eta, \alpha_p)$, $\beta$ = 0.5", fontsize=10)
    axes[1].set_title(r"over $(\eta, \beta)$, $\alpha_p$ = 1", fontsize=10)
    ds = xr.Dataset(
        data,
        coords={
            "eta": grids["beta"]["eta"].values,
            "alpha_p": grids["alpha_p"]["alpha_p"].values,
            "beta": grids["beta"]["beta"].values,
        },
    )
    params = {**common, "eta": eta_spec, "alpha_p": alpha_ps, "beta": betas, "t_end": t_end}
    ds.attrs.update(provenance("phase", "collapse", params, collapse_threshold_eta=threshold))
    title = (
        f"collapsed fraction of {grids['beta'].sizes['mode']} modes: p_j(0) = {p0}, "
        f"s_j(0) = {s0}, " + rf"$\tau_j(0)$ = {tau0:g}, $\sigma^2$ = {sigma2:g}, t = {t_end:g}"
    )
    return _finish(fig, stem, ds, title)


def draw_alignment(stem: Path, etas, dim: int, sigma2: float, t_end: float) -> list[Path]:
    """Tian Figs. 8-9: ||[F, W_p]|| and the asymmetry of W_p over time, for several eta."""
    runs = {
        eta: simulate("linear_byol", RunSettings(t_end=t_end), eta=eta, dim=dim, input_dim=dim,
                      sigma2=sigma2)
        for eta in etas
    }  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (eta, ds) in enumerate(runs.items()):
        color = plt.cm.viridis(k / max(1, len(etas) - 1))
        axes[0].semilogy(ds["time"], ds["commutator_norm"], color=color, label=rf"$\eta$={eta:g}")
        axes[1].semilogy(ds["time"], ds["wp_asymmetry"], color=color, label=rf"$\eta$={eta:g}")
    axes[0].set_ylabel(r"$\|[F, W_p]\|_F / (\|F\|_F \|W_p\|_F)$")
    axes[0].set_title("eigenspace alignment (Tian Fig. 9, Theorem 3)", fontsize=10)
    axes[1].set_ylabel(r"$\|W_p - W_p^T\|_F / \|W_p + W_p^T\|_F$")
    axes[1].set_title("asymmetry of $W_p$ (Tian Fig. 8)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("flow time t")
        ax.legend(fontsize=8)
    first = next(iter(runs.values()))
    ds = xr.Dataset(
        {
            name: (("eta", "time"), np.array([r[name].values for r in runs.values()]))
            for name in ("commutator_norm", "wp_asymmetry")
        },
        coords={"eta": list(etas), "time": first["time"].values},
    )  # fmt: skip
    params = {"eta": list(etas), "dim": dim, "sigma2": sigma2, "t_end": t_end}
    ds.attrs.update(provenance("phase", "alignment", params, model="linear_byol (Tian Lemma 1)"))
    title = f"linear_byol (full matrices, dim {dim}, random init, X = I, X' = {sigma2:g} I)"
    return _finish(fig, stem, ds, title)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m dynamics.phase", description=__doc__.splitlines()[0])
    parser.add_argument("figure", choices=(*FIGURES, "all"), help="which figure to draw")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument("--tau", type=float, default=1.0, help="fixed tau of flow and line")
    parser.add_argument("--alpha-p", type=float, default=1.0, help="alpha_p of flow and line")
    parser.add_argument("--sigma2", type=float, default=0.5, help="augmentation variance")
    parser.add_argument("--flow-eta", default="0,0.04,0.2", help="eta of the flow panels")
    parser.add_argument("--line-eta", default="0,0.08,0.2", help="eta of the phase-line panels")
    parser.add_argument("--eta", default="0:0.3:61", help="eta axis of the collapse maps a:b:n")
    parser.add_argument("--alpha-ps", default="0.5,1,2,4", help="alpha_p axis of collapse map")
    parser.add_argument("--betas", default="0.05,0.1,0.2,0.5,1,2", help="beta axis of collapse")
    parser.add_argument("--p0", default="0.02:1.2", help="initial p_j of the collapse maps")
    parser.add_argument(
        "--s0", default="0.1:0.1", help="initial s_j of the collapse maps ('parabola', a:b, ...)"
    )
    parser.add_argument("--tau0", type=float, default=0.5, help="tau_j(0) of the collapse maps")
    parser.add_argument("--t-end", type=float, default=300.0, help="horizon of collapse maps")
    parser.add_argument("--align-eta", default="0.001,0.01,0.05,0.1", help="eta of alignment")
    parser.add_argument("--dim", type=int, default=8, help="dimension of the alignment runs")
    parser.add_argument("--align-t-end", type=float, default=60.0, help="alignment horizon")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    lists = check_options(args)
    todo = FIGURES if args.figure == "all" else (args.figure,)
    shape = (args.tau, args.alpha_p, args.sigma2)
    paths: list[Path] = []
    try:
        for name in todo:
            stem = args.out / f"phase_{name}"
            if name == "flow":
                paths += draw_flow(stem, lists["flow-eta"], *shape)
            elif name == "line":
                paths += draw_line(stem, lists["line-eta"], *shape)
            elif name == "collapse":
                paths += draw_collapse(stem, args.eta, args.alpha_ps, args.betas, args.sigma2,
                                       args.p0, args.s0, args.tau0, args.t_end)  # fmt: skip
            else:
                etas = lists["align-eta"]
                paths += draw_alignment(stem, etas, args.dim, args.sigma2, args.align_t_end)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    if not args.quiet:
        for path in paths:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m dynamics.phase"))
