"""Timings of the dynamics foundation (issue 2), printed in one run.

    python benchmarks/bench_dynamics.py [--repeat 3]

1. The default ``python -m dynamics.simulate linear_byol`` end to end, imports included.
2. The full matrix model (Tian Lemma 1) at dim 64, 128, 256 over the default horizon.
3. The per-mode model against the full model at the same size: the ratio of their run times.
Each figure is the best of ``--repeat`` runs (the machine may be shared).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dynamics.integrate import SaveAt, integrate
from dynamics.models.eigenmodes import EigenmodeModel, EigenmodeParams
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams

T_END = 100.0
#: the default output times of a simulation (401 uniform times) up to T_END
SAVEAT = SaveAt.uniform(T_END, 401)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def default_run_seconds(repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dynamics.simulate", "linear_byol", "--quiet"]
        cmd += ["--out", str(Path(tmp) / "r.nc")]
        return best_of(repeat, lambda: subprocess.run(cmd, check=True))


def full_model_seconds(dim: int, repeat: int) -> tuple[float, int]:
    model = LinearBYOLModel(LinearBYOLParams(dim=dim, input_dim=dim))
    n_rhs = []

    def go():
        traj = integrate(model.rhs, model.initial_state(), SAVEAT)
        n_rhs.append(traj.n_rhs)

    return best_of(repeat, go), n_rhs[-1]


def mode_model_seconds(dim: int, repeat: int) -> float:
    model = EigenmodeModel(EigenmodeParams(dim=dim, p0=f"-0.05:{0.25 + dim * 1e-3}"))
    return best_of(repeat, lambda: integrate(model.rhs, model.initial_state(), SAVEAT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"default `python -m dynamics.simulate linear_byol` end to end: "
        f"{default_run_seconds(args.repeat):.2f} s (limit 5 s)"
    )
    print(f"\nfull matrix model (input_dim = dim), t_end = {T_END:g}, DOP853 rtol 1e-10:")
    print("  dim   seconds   rhs evals   per-mode seconds   full/per-mode")
    for dim in (64, 128, 256):
        full, n_rhs = full_model_seconds(dim, args.repeat)
        modes = mode_model_seconds(dim, args.repeat)
        print(f"  {dim:>3}   {full:>7.2f}   {n_rhs:>9}   {modes:>16.4f}   {full / modes:>12.0f}x")


if __name__ == "__main__":
    main()
