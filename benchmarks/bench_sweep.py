"""Timings of the parameter sweeps (dynamics breadth issue), printed in one run.

    python benchmarks/bench_sweep.py [--points 100000] [--loop-subset 300] [--repeat 3]

1. The vectorised per-mode sweep (scenario ``eigenmodes``, 12 modes per grid point, t_end 150,
   rtol 1e-6, atol 1e-8) over ``--points`` grid points on the issue's grid, eta=0:0.3:N x
   alpha_p=0.5,1,2,4 x seed=0:4 (N = points/20), with 1 and 2 worker processes.
2. The same points as a loop of single ``scipy.integrate.solve_ivp`` runs (RK45, same
   tolerances): timed on a random subset of ``--loop-subset`` points and extrapolated to all
   points (the loop over 10^5 points would take about an hour); the ratio of the two.
3. The matrix-model sweep (``linear_byol``, dim 64) with --workers 1 and 2: its scaling.
Each figure is the best of ``--repeat`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

from dynamics.models.eigenmodes import EigenmodeModel, EigenmodeParams
from dynamics.simulate import RunSettings
from dynamics.sweep import run_sweep

T_END, RTOL, ATOL = 150.0, 1e-6, 1e-8


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def mode_grid(points: int) -> list[str]:
    """The issue's grid eta x alpha_p x seed with about ``points`` points."""
    return [f"eta=0:0.3:{max(2, points // 20)}", "alpha_p=0.5,1,2,4", "seed=0:4"]


def loop_seconds_per_point(ds, subset: int, seed: int = 0) -> tuple[float, float]:
    """Mean seconds of one solve_ivp run over random grid points, and the max deviation of its
    final p_j from the sweep's."""
    flat = ds.stack(point=("eta", "alpha_p", "seed"))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(flat.sizes["point"], min(subset, flat.sizes["point"]), replace=False)
    start = time.perf_counter()
    worst = 0.0
    for i in chosen:
        at = flat.isel(point=int(i))
        params = EigenmodeParams(eta=float(at.eta), alpha_p=float(at.alpha_p), seed=int(at.seed))
        model = EigenmodeModel(params)
        sol = solve_ivp(model.rhs, (0.0, T_END), model.initial_state(), method="RK45",
                        rtol=RTOL, atol=ATOL)  # fmt: skip
        p_final = sol.y[: params.dim, -1]
        worst = max(worst, float(np.max(np.abs(p_final - at["wp_eig_real"].values))))
    return (time.perf_counter() - start) / chosen.size, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--loop-subset", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = RunSettings(t_end=T_END, rtol=RTOL, atol=ATOL)
    grid = mode_grid(args.points)

    def sweep(workers):
        return lambda: run_sweep("eigenmodes", grid, {}, settings, workers=workers)

    one, ds = best_of(args.repeat, sweep(1))
    two, _ = best_of(args.repeat, sweep(2))
    n = ds.attrs["points"]
    print(f"per-mode sweep, {n} grid points x 12 modes ({' '.join(grid)}), t_end {T_END:g}, "
          f"rtol {RTOL:g}, atol {ATOL:g}:")  # fmt: skip
    print(f"  vectorised, 1 process : {one:7.2f} s  ({one / n * 1e6:.0f} us per point)")
    print(f"  vectorised, 2 workers : {two:7.2f} s")
    per_point, worst = loop_seconds_per_point(ds, args.loop_subset)
    loop = per_point * n
    print(
        f"  loop of solve_ivp (RK45) : {per_point * 1e3:.1f} ms per point, timed on "
        f"{min(args.loop_subset, n)} random points, extrapolated to {n}: {loop:.0f} s"
    )
    print(
        f"  speed-up of the vectorised sweep over the loop: {loop / one:.0f}x (1 process), "
        f"{loop / two:.0f}x (2 workers)"
    )
    print(f"  max |p_j(sweep) - p_j(solve_ivp)| on those points: {worst:.1e}")

    matrix = ["eta=0.02:0.14:8", "seed=0:3"]
    params = {"dim": 64, "input_dim": 64}
    run = RunSettings(t_end=100.0, rtol=1e-8, atol=1e-10)
    print(f"\nmatrix-model sweep (linear_byol, dim 64, {' '.join(matrix)} = 32 points, t_end 100):")
    base = None
    for workers in (1, 2):
        seconds, _ = best_of(
            args.repeat, lambda w=workers: run_sweep("linear_byol", matrix, params, run, workers=w)
        )
        base = base or seconds
        print(f"  --workers {workers}: {seconds:6.2f} s  (speed-up {base / seconds:.2f}x)")


if __name__ == "__main__":
    main()
