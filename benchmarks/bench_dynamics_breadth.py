"""Figures of the dynamics breadth issue, printed in one run (numbers quoted in the issue note).

    python benchmarks/bench_dynamics_breadth.py

1. Liu et al. Table 3 in the linear setting: every row (c_cov, STD, I-PRED, StopGrad) run on the
   linear encoder and on free features; final feature scale, surviving dimensions, RankMe, loss,
   next to the paper's ImageNet outcome.
2. The general autograd model against Tian's population ODE: max relative error of (W, W_p) over
   t in [0, 8] for n = 64 ... 16384 data points (mean of 3 seeds), BYOL and SimSiam targets.
3. DirectPred / DirectCopy fixed points: simulated F_hat eigenvalue of the surviving modes
   against the rule's closed form.
4. Wall time of each new scenario's default run.
"""

from __future__ import annotations

import time

import numpy as np

from dynamics.engine import RunSettings
from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.directpred import paper_fixed_point
from dynamics.models.eigenmodes import fixed_points
from dynamics.models.general import GeneralModel, GeneralParams
from dynamics.models.linear_byol import (
    LinearBYOLModel,
    LinearBYOLParams,
    LinearSimSiamModel,
    LinearSimSiamParams,
)
from dynamics.simulate import simulate

#: (c_cov, STD, I-PRED, StopGrad) -> the paper's ImageNet top-1 (k = 1, c_inv = 1, 2048^3)
TABLE3 = [
    (0, False, False, False, "collapse"),
    (1, False, False, False, "collapse"),
    (0, True, False, False, "50.9"),
    (1, True, False, False, "61.4"),
    (0, False, True, False, "collapse"),
    (1, False, True, False, "62.6"),
    (0, True, True, False, "50.9"),
    (1, True, True, False, "58.7"),
    (0, True, True, True, "55.0"),
]


def liu_table(encoder: str, sigma2: float) -> None:
    print(
        f"\nLiu et al. Table 3, encoder {encoder}, d = 8, n1 = 12, n = 256, sigma^2 = {sigma2}, "
        "t = 200 (collapsed: feature scale -> 0; RankMe of the eval-set features):"
    )
    print("  c_cov STD I-PRED SG | paper    | scale t0 -> t_end   RankMe  loss")
    settings = RunSettings(t_end=200.0, n_out=3, rtol=1e-8, atol=1e-10)
    for c_cov, std, ipred, sg, paper in TABLE3:
        ds = simulate(
            "liu",
            settings,
            encoder=encoder,
            c_cov=float(c_cov),
            standardize=std,
            identity_predictor=ipred,
            sg_view2=sg,
            sigma2=sigma2,
        )
        first, last = ds.isel(time=0), ds.isel(time=-1)
        print(
            f"  {c_cov:>5} {'x' if std else '-':>3} {'x' if ipred else '-':>6} "
            f"{'x' if sg else '-':>2} | {paper:<8} | {float(first['z_norm']):.3g} -> "
            f"{float(last['z_norm']):<10.3g} {float(last['effective_rank']):6.2f}  "
            f"{float(last['loss']):.3g}"
        )


def general_convergence() -> None:
    shape = dict(
        dim=3,
        input_dim=5,
        eta=0.05,
        alpha_p=1.5,
        sigma2=0.4,
        x_spectrum="random",
        aug_spectrum="random",
    )
    ns = (64, 256, 1024, 4096, 16384)
    print(
        "\ngeneral model (loss linear_byol) vs the population ODE, max relative error over "
        "t in [0, 8], mean of 3 seeds:"
    )
    for target in ("ema", "online"):
        errors = np.zeros((3, len(ns)))
        for seed in range(3):
            if target == "ema":
                pop = LinearBYOLModel(LinearBYOLParams(**shape, beta=0.6, seed=seed))
            else:
                pop = LinearSimSiamModel(LinearSimSiamParams(**shape, seed=seed))
            ref = _path(pop)
            for i, n in enumerate(ns):
                model = GeneralModel(
                    GeneralParams(
                        **shape, beta=0.6, seed=seed, n_samples=n, loss="linear_byol", target=target
                    )
                )
                errors[seed, i] = np.max(np.abs(_path(model) - ref)) / np.max(np.abs(ref))
        mean = errors.mean(axis=0)
        slope = np.polyfit(np.log(ns), np.log(mean), 1)[0]
        name = "linear_byol (EMA target)" if target == "ema" else "linear_simsiam (online)"
        cells = "  ".join(f"n={n}: {e:.3g}" for n, e in zip(ns, mean, strict=True))
        print(f"  {name:<25} {cells}  slope {slope:.2f}")


def _path(model, n_out=9):
    solver = SolverSettings(rtol=1e-9, atol=1e-11)
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(8.0, n_out), solver)
    b = model.layout.unpack(traj.y)
    return np.concatenate([b["W"].reshape(n_out, -1), b["W_p"].reshape(n_out, -1)], axis=1)


def directpred_fixed_points() -> None:
    print("\nDirectPred / DirectCopy fixed points (dim 12, eta 0.04, sigma^2 0.5, eps 0.1, t 200):")
    p_plus = fixed_points(0.04, 1.0, 0.5)[0]
    settings = RunSettings(t_end=200.0, n_out=3)
    for name, extra, s_star in [
        ("directpred", {"convention": "paper"}, paper_fixed_point(p_plus, 0.1)),
        ("directcopy", {}, p_plus - 0.1),
        ("directpred", {"convention": "code"}, float("nan")),
    ]:
        final = simulate(name, settings, **extra).isel(time=-1)
        print(
            f"  {name} {extra}: W_p eig {np.unique(final['wp_eig_real'].values.round(6))}, "
            f"F_hat eig {np.unique(final['fhat_eig'].values.round(6))} (closed form s* = "
            f"{s_star:.6f}, p*_+ = {p_plus:.6f}), ||W|| {float(final['w_norm']):.3g}"
        )


def default_runs() -> None:
    print("\nwall time of the default run of each new scenario (integration only):")
    for name in (
        "directpred",
        "directcopy",
        "directpred_discrete",
        "no_predictor",
        "no_stopgrad",
        "liu",
        "barlow_twins",
        "vicreg",
        "spectral",
        "general",
    ):
        start = time.perf_counter()
        ds = simulate(name)
        print(f"  {name:<20} {time.perf_counter() - start:6.2f} s  (t_end {ds.attrs['t_end']:g})")


if __name__ == "__main__":
    liu_table("linear", 0.5)
    liu_table("linear", 0.05)
    liu_table("free", 0.5)
    general_convergence()
    directpred_fixed_points()
    default_runs()
