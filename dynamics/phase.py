"""Phase diagrams of linear BYOL/SimSiam (Tian, Chen & Ganguli 2021, Figs. 3, 4, 8, 9).

    python -m dynamics.phase flow       # (p_j, s_j) flow field, invariant parabola, fixed points
    python -m dynamics.phase line       # the 1-D phase line dp/dt on the parabola, 3 regimes
    python -m dynamics.phase collapse   # collapsed fraction over (eta, alpha_p) and (eta, beta)
    python -m dynamics.phase alignment  # ||[F, W_p]|| and asymmetry of W_p over time, several eta
    python -m dynamics.phase all

Each writes OUT.nc (the numbers drawn, with provenance) and then OUT.pdf and OUT.png: the
registered figure ``phase_<name>`` of :mod:`reports.figures.phase`, drawn from OUT.nc in the
report's style (imported only to draw: importing dynamics never imports reports or matplotlib).
The flow field and the phase line evaluate :func:`~dynamics.models.eigenmodes.mode_rhs` at fixed
tau; fixed points come from the closed forms (p*_+- on the parabola s = p^2/alpha_p, and (0, 0))
and their stability from the eigenvalues of the Jacobian (central differences), stored as the
codes of :data:`STABILITY`. The collapse maps are vectorised sweeps of the per-mode model
(:mod:`dynamics.sweep`), with the analytic threshold eta = tau^2/(4(1+sigma^2)) in the
attributes. The alignment data integrate the full matrix flow (``linear_byol``) from random
weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.engine import RunSettings, memory_needed
from dynamics.models.eigenmodes import collapse_threshold, fixed_points, mode_rhs
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams
from dynamics.simulate import simulate
from dynamics.sweep import run_sweep
from dynamics.sweep.run import check_sweep
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import all_or_nothing, check_output_folder
from symbolic.common.options import ParameterError
from symbolic.common.provenance import provenance
from symbolic.common.resources import check_memory
from symbolic.common.results import write_netcdf
from symbolic.common.schema import KNOWN_DIMS

FIGURES = ("flow", "line", "collapse", "alignment")
#: stability codes of fixed points in the files (CF flags on the variable)
STABILITY = {"unstable": -1, "semi-stable": 0, "stable": 1}
#: variables in which NaN means "no such point" (fewer fixed points at this eta)
UNDEFINED = (
    "fixed_p",
    "fixed_s",
    "fixed_stability",
    "fixed_line_p",
    "axis_stability",
    "commutator_norm",  # the ratios of a W_p that collapsed to 0
    "wp_asymmetry",
)
#: at most this many panels (values of --flow-eta, --line-eta) or curves (--align-eta)
MAX_PANELS = 12
#: largest --tau, --alpha-p, --sigma2 (the axes of the flow and the line scale with them)
MAX_SCALE = 1e3


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
        needed = memory_needed(LinearBYOLModel, params, align.n_out)
        check_memory(needed, f"--dim {args.dim} (alignment runs of {args.dim} x {args.dim})")
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


def stability_flags(var: xr.DataArray) -> None:
    """Mark ``var`` (codes of :data:`STABILITY`, NaN: no point) with CF flag attributes."""
    var.attrs.update(
        flag_values=list(STABILITY.values()), flag_meanings=" ".join(STABILITY).replace("-", "_")
    )


def _points(rows: Sequence[Sequence[tuple[float, ...]]], width: int) -> np.ndarray:
    """Per eta, the fixed points' columns, NaN-padded to the most points: (eta, point, width)."""
    out = np.full((len(rows), max(1, max(map(len, rows))), width), np.nan)
    for k, row in enumerate(rows):
        if row:
            out[k, : len(row)] = row
    return out


def flow_data(etas, tau, alpha_p, sigma2) -> xr.Dataset:
    """Tian Fig. 3: (dp/dt, ds/dt) on a (p, s) grid per eta at fixed tau, the isolated fixed
    points with their stability, and at eta = 0 the lines of fixed points: p = tau/(1+sigma^2)
    (stable) and the axis s = 0, stable where its growth rate p (tau - (1+sigma^2) p) <= 0."""
    lam = 1 + sigma2
    p_top = 1.6 * tau / lam
    p = np.linspace(-0.3 * p_top, p_top, 41)
    s = np.linspace(0.0, 1.2 * p_top**2 / alpha_p + 0.05, 41)
    pp, ss = np.meshgrid(p, s)
    rates = [mode_rhs(pp, ss, tau, eta, alpha_p, 0.0, sigma2, simsiam=True)[:2] for eta in etas]
    points, line_p, axis = [], [], []
    for eta in etas:
        if eta == 0:
            points.append([])
            line_p.append(tau / lam)
            growth = p * (tau - lam * p)
            axis.append(np.where(growth > 0, STABILITY["unstable"], STABILITY["stable"]))
        else:
            points.append([(fp, fs, STABILITY[kind]) for fp, fs, kind in
                           fixed_point_list(tau, eta, alpha_p, sigma2)])  # fmt: skip
            line_p.append(np.nan)
            axis.append(np.full(p.shape, np.nan))
    fixed = _points(points, 3)
    ds = xr.Dataset(
        {
            "dp_dt": (("eta", "s", "p"), np.array([r[0] for r in rates])),
            "ds_dt": (("eta", "s", "p"), np.array([r[1] for r in rates])),
            "fixed_p": (("eta", "point"), fixed[..., 0]),
            "fixed_s": (("eta", "point"), fixed[..., 1]),
            "fixed_stability": (("eta", "point"), fixed[..., 2]),
            "fixed_line_p": (("eta",), np.array(line_p)),
            "axis_stability": (("eta", "p"), np.array(axis)),
        },
        coords={"eta": etas, "s": s, "p": p},
    )
    for name in ("fixed_stability", "axis_stability"):
        stability_flags(ds[name])
    params = {"eta": list(etas), "tau": tau, "alpha_p": alpha_p, "sigma2": sigma2}
    threshold = float(collapse_threshold(tau, sigma2))
    ds.attrs.update(provenance("phase", "flow", params, collapse_threshold_eta=threshold))
    return ds


def line_data(etas, tau, alpha_p, sigma2) -> xr.Dataset:
    """Tian Fig. 4: dp/dt = p^2 (tau - (1+sigma^2) p) - eta p on the parabola, per eta, and its
    roots, stable, unstable or semi-stable by the sign of dp/dt on either side."""
    p = np.linspace(-0.15, 1.1 * tau / (1 + sigma2), 400)
    threshold = float(collapse_threshold(tau, sigma2))
    rates, points = [], []
    for eta in etas:
        rates.append(phase_line(p, tau, eta, alpha_p, sigma2))
        roots = [0.0] + [float(r) for r in fixed_points(eta, tau, sigma2) if np.isfinite(r)]
        if eta == 0:
            roots = [0.0, tau / (1 + sigma2)]
        row = []
        for r in sorted(set(roots)):
            h = 1e-4 * max(1.0, abs(r))
            left = phase_line(np.array(r - h), tau, eta, alpha_p, sigma2)
            right = phase_line(np.array(r + h), tau, eta, alpha_p, sigma2)
            kind = (
                "stable" if left > 0 > right else
                "unstable" if left < 0 < right else "semi-stable"
            )  # fmt: skip
            row.append((r, STABILITY[kind]))
        points.append(row)
    fixed = _points(points, 2)
    ds = xr.Dataset(
        {
            "dp_dt": (("eta", "p"), np.array(rates)),
            "fixed_p": (("eta", "point"), fixed[..., 0]),
            "fixed_stability": (("eta", "point"), fixed[..., 1]),
        },
        coords={"eta": etas, "p": p},
    )
    stability_flags(ds["fixed_stability"])
    params = {"eta": list(etas), "tau": tau, "alpha_p": alpha_p, "sigma2": sigma2}
    ds.attrs.update(provenance("phase", "line", params, collapse_threshold_eta=threshold))
    return ds


def collapse_data(eta_spec, alpha_ps, betas, sigma2, p0, s0, tau0, t_end) -> xr.Dataset:
    """Collapsed fraction of the modes over (eta, alpha_p) and (eta, beta) from per-mode sweeps;
    the attributes hold the beta and alpha_p each map keeps fixed and the number of modes."""
    common = {"p0": p0, "s0": s0, "sigma2": sigma2, "tau0": tau0}
    settings = RunSettings(t_end=t_end, rtol=1e-8, atol=1e-10)
    grids = {
        "alpha_p": run_sweep("eigenmodes", [f"eta={eta_spec}", f"alpha_p={alpha_ps}"],
                             common, settings),
        "beta": run_sweep("eigenmodes", [f"eta={eta_spec}", f"beta={betas}"], common, settings),
    }  # fmt: skip
    threshold = float(collapse_threshold(1.0, sigma2))
    data = {
        f"collapse_fraction_{axis}": ((axis, "eta"), sweep["collapse_fraction"].transpose(axis,
                                      "eta").values)
        for axis, sweep in grids.items()
    }  # fmt: skip
    ds = xr.Dataset(
        data,
        coords={
            "eta": grids["beta"]["eta"].values,
            "alpha_p": grids["alpha_p"]["alpha_p"].values,
            "beta": grids["beta"]["beta"].values,
        },
    )
    params = {**common, "eta": eta_spec, "alpha_p": alpha_ps, "beta": betas, "t_end": t_end}
    held = {
        "alpha_p_map_beta": json.loads(grids["alpha_p"].attrs["params_json"])["beta"],
        "beta_map_alpha_p": json.loads(grids["beta"].attrs["params_json"])["alpha_p"],
        "modes": grids["beta"].sizes["mode"],
    }
    ds.attrs.update(
        provenance("phase", "collapse", params, collapse_threshold_eta=threshold, **held)
    )
    return ds


def alignment_data(etas, dim: int, sigma2: float, t_end: float) -> xr.Dataset:
    """Tian Figs. 8-9: ||[F, W_p]|| and the asymmetry of W_p over time, for several eta, from
    the full matrix flow (linear_byol) started from random weights."""
    runs = {
        eta: simulate("linear_byol", RunSettings(t_end=t_end), eta=eta, dim=dim, input_dim=dim,
                      sigma2=sigma2)
        for eta in etas
    }  # fmt: skip
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
    return ds


def write_figure(ds: xr.Dataset, stem: Path) -> list[Path]:
    """``stem``.nc (the data) and the registered figure ``phase_<name>`` drawn from it."""
    from reports.figures import write_file_figure  # drawing only: dynamics never needs reports

    stem.parent.mkdir(parents=True, exist_ok=True)
    nc = write_netcdf(ds, Path(f"{stem}.nc"), undefined=[n for n in UNDEFINED if n in ds],
                      extra_dims=[d for d in ds.dims if d not in KNOWN_DIMS])  # fmt: skip
    return [nc, *write_file_figure(nc, [f"phase_{ds.attrs['name']}"], stem)]


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
        with all_or_nothing(args.out):  # a failed figure takes back the files written before it
            for name in todo:
                if name == "flow":
                    ds = flow_data(lists["flow-eta"], *shape)
                elif name == "line":
                    ds = line_data(lists["line-eta"], *shape)
                elif name == "collapse":
                    ds = collapse_data(args.eta, args.alpha_ps, args.betas, args.sigma2, args.p0,
                                       args.s0, args.tau0, args.t_end)  # fmt: skip
                else:
                    ds = alignment_data(lists["align-eta"], args.dim, args.sigma2, args.align_t_end)
                paths += write_figure(ds, args.out / f"phase_{name}")
    except ParameterError as err:
        raise UsageError(str(err)) from None
    if not args.quiet:
        for path in paths:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    exit_main(main, prog="python -m dynamics.phase")
