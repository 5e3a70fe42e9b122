"""Timings of the parameter sweeps (issue 14), printed with their ratios measured in one run.

    python benchmarks/bench_sweep.py [--points 100000] [--loop-subset 200] [--repeat 2]
        [--skip-variants] [--skip-matrix] [--skip-torch] [--cuda-points 10000000]

1. The vectorised per-mode sweep (scenario ``eigenmodes``, 12 modes, t_end 150, DOP853, default
   tolerances rtol 1e-8 / atol 1e-10, and rtol 1e-6 / atol 1e-8) on three grids of ``--points``
   points: the phase-diagram grid of the issue (eta=0:0.3:N x alpha_p=0.5:4:100), the earlier
   benchmark's (eta x alpha_p=0.5,1,2,4 x seed=0:4) and one with four swept parameters
   (eta x alpha_p x beta x sigma2), with 1 and 2 worker processes.
2. The same points as a loop of single ``scipy.integrate.solve_ivp`` runs of the full (p, s, tau)
   system (RK45 and DOP853, same tolerances): timed on ``--loop-subset`` random points and
   extrapolated; the ratio of the faster loop to the sweep, and how far the final states of the
   sweep and of the loop are from each other and from a run at rtol 1e-12.
3. What the design was chosen from, on 10^4 points of the issue's grid (1 process): one column
   per point (36 states) vs one per (point, mode) (3 states) vs the invariant (2 states), each
   with RK45 and DOP853; and the share of the loop's Python overhead (the cost per loop pass
   measured at 256 columns per batch, where it dominates).
4. The matrix-model sweep (``linear_byol``, dim 64) with --workers 1 and 2, and a single
   ``linear_byol --dim 256`` simulation to t = 100 split into integration and observables, in
   a fresh process with one BLAS thread and with the default (on a loaded 2-core machine
   two BLAS threads per process ran several times slower).
5. ``--backend torch`` on the CPU against numpy (time and largest difference); on CUDA, when
   present, ``--cuda-points`` points. Last, because importing torch made the multi-threaded BLAS
   of the matrix models several times slower in the same process.
Each figure is the best of ``--repeat`` runs; the load average of the machine (shared) is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

from dynamics.array_backend import backend
from dynamics.batch_integrate import integrate_batch
from dynamics.engine import RunSettings
from dynamics.integrate import SaveAt, SolverSettings
from dynamics.models.eigenmodes import EigenmodeModel, EigenmodeParams, mode_rhs
from dynamics.sweep import modes as sweep_modes
from dynamics.sweep import run_sweep
from dynamics.sweep.execution import THREAD_VARS

T_END = 150.0
TOLERANCES = ((1e-8, 1e-10), (1e-6, 1e-8))


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def grids(points: int) -> dict[str, list[str]]:
    """The three grids of about ``points`` points."""
    side = max(2, round((points / 400) ** 0.5))
    return {
        "issue (phase diagram)": [f"eta=0:0.3:{max(2, points // 100)}", "alpha_p=0.5:4:100"],
        "earlier benchmark": [f"eta=0:0.3:{max(2, points // 20)}", "alpha_p=0.5,1,2,4", "seed=0:4"],
        "four parameters": [
            f"eta=0:0.3:{side}",
            f"alpha_p=0.5:4:{side}",
            "beta=0.1:1:20",
            "sigma2=0:1:20",
        ],
    }


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def final_state(point: dict, method: str, rtol: float, atol: float) -> np.ndarray:
    """(p, s, tau) at T_END of one point integrated alone by solve_ivp."""
    model = EigenmodeModel(EigenmodeParams(**point))
    sol = solve_ivp(
        model.rhs, (0.0, T_END), model.initial_state(), method=method, rtol=rtol, atol=atol
    )
    return sol.y[:, -1]


def loop_comparison(ds, subset: int, rtol: float, atol: float) -> dict[str, float]:
    """solve_ivp loop seconds per point (RK45, DOP853) on random points, and the largest
    differences of the final (p, s, tau) in units of atol + rtol |y|: sweep - loop (DOP853),
    sweep - reference, loop - reference (reference: DOP853 at rtol 1e-12)."""
    names = list(ds["wp_eig_real"].dims[:-1])
    flat = ds.stack(point=names)
    finite = np.flatnonzero(flat["diverged"].values == 0)  # diverged: states near |y| = 1e6
    chosen = np.random.default_rng(0).choice(finite, min(subset, finite.size), replace=False)
    subset = chosen.size
    points = [{n: flat.isel(point=int(i))[n].item() for n in names} for i in chosen]
    out = {}
    finals = {}
    for method in ("RK45", "DOP853"):
        start = time.perf_counter()
        finals[method] = [final_state(p, method, rtol, atol) for p in points]
        out[method] = (time.perf_counter() - start) / subset
    refs = [final_state(p, "DOP853", 1e-12, 1e-14) for p in points]
    sweep = [
        np.concatenate([flat.isel(point=int(i))[v].values for v in ("wp_eig_real", "s", "tau")])
        for i in chosen
    ]
    fast = min(("RK45", "DOP853"), key=out.get)

    def worst(a, b):
        """max |a - b| in units of the tolerance, atol + rtol |b| (b: the reference)."""
        return max(
            float(np.max(np.abs(x - y) / (atol + rtol * np.abs(y))))
            for x, y in zip(a, b, strict=True)
        )

    out.update(
        fastest=fast,
        subset=subset,
        sweep_loop=worst(sweep, finals["DOP853"]),
        sweep_ref=worst(sweep, refs),
        loop_ref=worst(finals["DOP853"], refs),
    )
    return out


def per_mode_sweeps(args) -> None:
    for rtol, atol in TOLERANCES:
        settings = RunSettings(t_end=T_END, rtol=rtol, atol=atol)
        for label, grid in grids(args.points).items():
            if rtol != TOLERANCES[0][0] and not label.startswith("issue"):
                continue
            one, ds = best_of(
                args.repeat, lambda g=grid, s=settings: run_sweep("eigenmodes", g, {}, s)
            )
            two, _ = best_of(
                args.repeat, lambda g=grid, s=settings: run_sweep("eigenmodes", g, {}, s, workers=2)
            )
            n = ds.attrs["points"]
            print(
                f"\n{label} grid, {n} points x 12 modes ({' '.join(grid)}), DOP853, "
                f"rtol {rtol:g}, atol {atol:g}, t_end {T_END:g} [{load()}]:"
            )
            print(f"  vectorised, 1 process : {one:7.2f} s  ({one / n * 1e6:.0f} us per point)")
            print(f"  vectorised, 2 workers : {two:7.2f} s")
            loop = loop_comparison(ds, min(args.loop_subset, n), rtol, atol)
            fast = loop[loop["fastest"]] * n
            print(
                f"  diverged points (tau_j = W_a/W grows when eta > beta): "
                f"{int(ds['diverged'].sum())}"
            )
            print(
                f"  loop of solve_ivp, {loop['subset']} random points that did not diverge, "
                "extrapolated: "
                f"RK45 {loop['RK45'] * 1e3:.1f} ms, DOP853 {loop['DOP853'] * 1e3:.1f} ms per "
                f"point; the faster ({loop['fastest']}) takes {fast:.0f} s for all"
            )
            print(
                f"  speed-up over that loop: {fast / one:.0f}x (1 process), {fast / two:.0f}x "
                "(2 workers)"
            )
            print(
                "  final (p, s, tau) on those points, max |difference| / (atol + rtol |y|): "
                f"sweep - loop {loop['sweep_loop']:.2g}, "
                f"sweep - rtol 1e-12 run {loop['sweep_ref']:.2g}, loop - rtol 1e-12 run "
                f"{loop['loop_ref']:.2g}"
            )


def _columns_per_point(params, eta, alpha_p):
    """One column per point: y = (p_1..p_d, s_1..s_d, tau_1..tau_d), the model's rhs."""
    d = params.dim
    p0, _, _ = params.initial_modes()
    y0 = np.concatenate(
        [np.repeat(p0[:, None], eta.size, 1), p0[:, None] ** 2 / alpha_p, np.ones((d, eta.size))]
    )

    def rhs(t, y, a):
        return np.concatenate(
            mode_rhs(y[:d], y[d : 2 * d], y[2 * d :], a["eta"], a["alpha_p"], 0.5, 0.5)
        )

    return rhs, y0, {"eta": eta, "alpha_p": alpha_p}, None


def _columns_per_mode(params, eta, alpha_p):
    """One column per (point, mode): y = (p_j, s_j, tau_j), the model's rhs."""
    p0, _, _ = params.initial_modes()
    p = np.tile(p0, eta.size)
    eta, alpha_p = np.repeat(eta, params.dim), np.repeat(alpha_p, params.dim)

    def rhs(t, y, a):
        return mode_rhs(y[0], y[1], y[2], a["eta"], a["alpha_p"], 0.5, 0.5)

    columns = {"eta": eta, "alpha_p": alpha_p}
    return rhs, np.stack([p, p**2 / alpha_p, np.ones_like(p)]), columns, None


def _columns_on_invariant(params, eta, alpha_p):
    """One column per (point, mode): y = (p_j, tau_j), s_j from the invariant (the sweep's)."""
    p = np.tile(params.initial_modes()[0], eta.size)
    ones = np.ones_like(p)
    extra = {
        "eta": np.repeat(eta, params.dim),
        "lam": 1.5 * ones,
        "beta": 0.5 * ones,
        "alpha_p": np.repeat(alpha_p, params.dim),
        "q": 0 * ones,
    }
    rhs, rate = sweep_modes.mode_system(backend("numpy"), simsiam=False, decaying=False)
    return rhs, np.stack([p, ones]), extra, rate


def variants(args) -> None:
    params = EigenmodeParams()
    e, a = np.meshgrid(np.linspace(0, 0.3, 100), np.linspace(0.5, 4, 100), indexing="ij")
    eta, alpha_p = e.ravel(), a.ravel()
    rtol, atol = TOLERANCES[0]
    print(
        f"\ndesign variants, 10^4 points of the issue's grid (eta 100 x alpha_p 100), rtol "
        f"{rtol:g}, 1 process [{load()}]:"
    )
    invariant = _columns_on_invariant(params, eta, alpha_p)
    for method in ("RK45", "DOP853"):
        for label, (rhs, y0, extra, rate) in (
            ("per point, 36 states", _columns_per_point(params, eta, alpha_p)),
            ("per (point, mode), 3 states", _columns_per_mode(params, eta, alpha_p)),
            ("per (point, mode), invariant, 2", invariant),
        ):
            seconds, result = best_of(
                args.repeat,
                lambda f=rhs, y=y0, x=extra, r=rate, m=method: integrate_batch(
                    f, y, SaveAt.final(T_END), SolverSettings(m, rtol, atol), x, rate=r
                ),
            )
            print(
                f"  {method:6s} {label:34s}: {seconds:6.2f} s, "
                f"{result.n_steps.mean():.0f} steps per column"
            )
    # the loop's fixed cost per pass, measured where it dominates (small batches)
    rhs, y0, extra, rate = invariant
    cpu = {}
    for batch in (256, backend("numpy").batch):
        start = time.process_time()
        result = integrate_batch(
            rhs,
            y0,
            SaveAt.final(T_END),
            SolverSettings("DOP853", rtol, atol),
            extra,
            rate=rate,
            batch=batch,
        )
        cpu[batch] = (time.process_time() - start, result.n_iterations)
    per_pass = cpu[256][0] / cpu[256][1]
    seconds, passes = cpu[backend("numpy").batch]
    steps = int(result.n_steps.sum())
    print(
        f"  loop overhead: {per_pass * 1e3:.2f} ms per pass (at 256 columns); at "
        f"{backend('numpy').batch} columns per batch {passes} passes, {seconds:.2f} s CPU: the "
        f"Python loop is at most {per_pass * passes / seconds:.0%}, the array work (numpy "
        f"temporaries) the rest, {(seconds - per_pass * passes) / steps * 1e9:.0f} ns per "
        "column-step"
    )


def torch_backends(args) -> None:
    try:
        import torch
    except ImportError:
        print("\ntorch not installed: back-end comparison skipped")
        return
    grid = grids(args.points)["issue (phase diagram)"]
    settings = RunSettings(t_end=T_END, rtol=TOLERANCES[0][0], atol=TOLERANCES[0][1])
    print(
        f"\n--backend, issue grid ({' '.join(grid)}), rtol {settings.rtol:g}, 1 process [{load()}]:"
    )
    ref_s, ref = best_of(args.repeat, lambda: run_sweep("eigenmodes", grid, {}, settings))
    got_s, got = best_of(
        args.repeat, lambda: run_sweep("eigenmodes", grid, {}, settings, backend="torch:cpu")
    )
    deltas = [np.abs(got[v].values - ref[v].values) for v in ("wp_eig_real", "s", "tau")]
    scales = [
        settings.atol + settings.rtol * np.abs(ref[v].values) for v in ("wp_eig_real", "s", "tau")
    ]
    units = max(float(np.max(d / c)) for d, c in zip(deltas, scales, strict=True))
    print(
        f"  numpy {ref_s:.2f} s, torch:cpu {got_s:.2f} s ({got_s / ref_s:.2f}x); final (p, s, "
        f"tau): max |difference| {max(float(d.max()) for d in deltas):.1e}, {units:.2g} in units "
        "of atol + rtol |y|"
    )
    if not torch.cuda.is_available():
        print("  no CUDA device: the torch:cuda measurement is skipped")
        return
    n_eta = max(2, args.cuda_points // 100)
    big = [f"eta=0:0.3:{n_eta}", "alpha_p=0.5:4:100"]
    seconds, ds = best_of(
        1, lambda: run_sweep("eigenmodes", big, {}, settings, backend="torch:cuda")
    )
    print(
        f"  torch:cuda ({torch.cuda.get_device_name()}): {ds.attrs['points']} points in "
        f"{seconds:.1f} s ({seconds / ds.attrs['points'] * 1e6:.2f} us per point)"
    )


def matrix_models(args) -> None:
    matrix = ["eta=0.02:0.14:8", "seed=0:3"]
    params = {"dim": 64, "input_dim": 64}
    run = RunSettings(t_end=100.0, rtol=1e-8, atol=1e-10)
    print(
        f"\nmatrix-model sweep (linear_byol, dim 64, {' '.join(matrix)} = 32 points, t_end "
        f"100) [{load()}]:"
    )
    base = None
    for workers in (1, 2):
        seconds, _ = best_of(
            args.repeat, lambda w=workers: run_sweep("linear_byol", matrix, params, run, workers=w)
        )
        base = base or seconds
        print(f"  --workers {workers}: {seconds:6.2f} s  (speed-up {base / seconds:.2f}x)")
    for threads in ("1", None):
        env = dict(os.environ)
        if threads:
            env.update({k: threads for k in THREAD_VARS})
        # a fresh process each: BLAS threads are fixed when numpy is first imported
        out = subprocess.run(
            [sys.executable, "-c", LINEAR_BYOL_256],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"  {out} [BLAS threads: {threads or 'default'}; {load()}]")


#: one ``python -m dynamics.simulate linear_byol --dim 256 --t-end 100`` run, split in two
LINEAR_BYOL_256 = """
import time
from dynamics import scenarios
from dynamics.engine import RunSettings, run_model, to_dataset
scenario = scenarios.get("linear_byol")
model = scenario.model(scenario.params(dim=256))
settings = RunSettings(t_end=100.0)
start = time.perf_counter()
traj = run_model(model, settings.solver, settings.saveat)
middle = time.perf_counter()
to_dataset(model, settings, traj, middle - start)
end = time.perf_counter()
print(f"linear_byol --dim 256 to t = 100 (DOP853, rtol 1e-10): {end - start:.1f} s = "
      f"integration {middle - start:.1f} s ({traj.n_rhs} rhs evaluations) + observables at "
      f"{traj.t.size} times {end - middle:.1f} s")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--loop-subset", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cuda-points", type=int, default=10_000_000)
    for part in ("variants", "matrix", "torch"):
        parser.add_argument(f"--skip-{part}", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {load()}")
    per_mode_sweeps(args)
    if not args.skip_variants:
        variants(args)
    if not args.skip_matrix:
        matrix_models(args)
    if not args.skip_torch:  # last: importing torch slowed numpy's multi-threaded BLAS 4x
        torch_backends(args)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
