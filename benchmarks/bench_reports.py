"""Time the report builder on inputs of a realistic size, end to end and piece by piece.

Inputs (random numbers in the result schema, written to a temporary folder): a linear_byol
simulation (401 times, 12 modes, W_p matrices), an eigenmodes simulation (401 x 12), and six
training runs of 20 epochs with d = 128 (three with a linear predictor: W_p spectra and 128 x 128
W_p matrices per epoch). Prints the time of each figure (drawing, PDF, PNG), of the tables and of
the whole ``build``, and the share of PNG rendering in the figure time.

    python benchmarks/bench_reports.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from reports import figures, style, tables
from reports.build import build
from reports.compose import pair_runs
from reports.inputs import load_inputs
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

RNG = np.random.default_rng(0)
EPOCHS, D, MODES, TIMES = 20, 128, 12, 401


def simulation(name: str) -> xr.Dataset:
    t = np.linspace(0, 100, TIMES)
    eig = np.sort(RNG.uniform(0, 0.7, (TIMES, MODES)), axis=1)[:, ::-1]
    data = {
        "wp_eig_real": (("time", "mode"), eig),
        "wp_eig_imag": (("time", "mode"), np.zeros_like(eig)),
        "corr_eig": (("time", "mode"), eig**2),
        "alignment_cos": (("time", "mode"), np.ones_like(eig)),
        "wp_asymmetry": ("time", np.exp(-t / 10)),
        "conservation_residual_weight": ("time", np.exp(-0.08 * t)),
        "wp": (("time", "row", "col"), RNG.normal(size=(TIMES, MODES, MODES))),
    }
    if name == "eigenmodes":
        data = {"p": data["wp_eig_real"], "s": (("time", "mode"), eig**2), **data}
        del data["wp"]
    params = {"eta": 0.04, "alpha_p": 1.0, "beta": 0.4, "sigma2": 0.5, "seed": 0}
    ds = xr.Dataset(data, coords={"time": t})
    ds.attrs = provenance("simulation", name, params, p_star_plus=0.62, p_star_minus=0.04)
    return ds


def run(name: str, predictor: bool) -> xr.Dataset:
    epochs = np.arange(1, EPOCHS + 1)
    data = {
        v: ("epoch", RNG.uniform(0.1, 1, EPOCHS))
        for v in ("knn_acc", "linear_acc", "sigma_dist_pearson", "sigma_dist_moment", "loss")
    }
    data["effective_rank"] = ("epoch", RNG.uniform(10, 100, EPOCHS))
    data["corr_eig"] = (("epoch", "mode"), np.sort(RNG.uniform(0, 1, (EPOCHS, D)))[:, ::-1])
    if predictor:
        eig = np.sort(RNG.uniform(-0.1, 1, (EPOCHS, D)))[:, ::-1]
        data.update(
            wp_eig_real=(("epoch", "mode"), eig),
            wp_eig_imag=(("epoch", "mode"), np.zeros_like(eig)),
            alignment_cos=(("epoch", "mode"), RNG.uniform(0.5, 1, (EPOCHS, D))),
            wp_asymmetry=("epoch", RNG.uniform(0, 0.2, EPOCHS)),
            conservation_residual=("epoch", np.exp(-0.001 * epochs)),
            wp=(("epoch", "row", "col"), RNG.normal(size=(EPOCHS, D, D))),
        )
    ds = xr.Dataset(data, coords={"epoch": epochs, "time": ("epoch", 0.05 * 100 * epochs)})
    params = {"method": name, "epochs": EPOCHS, "lr": 0.05, "weight_decay": 5e-4, "seed": 0}
    ds.attrs = provenance("training", name, params)
    return ds


def clock(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sims = [
            str(write_netcdf(simulation(n), root / f"{n}.nc"))
            for n in ("linear_byol", "eigenmodes")
        ]
        runs = []
        for i, name in enumerate(("byol", "simsiam", "directpred", "barlow", "vicreg", "simclr")):
            runs.append(str(write_netcdf(run(name, predictor=i < 3), root / name / "m.nc").parent))

        (s_res, r_res), t_load = clock(load_inputs, sims, runs)
        print(f"inputs: 2 simulations, {len(runs)} runs (d = {D}, {EPOCHS} epochs)")
        print(f"load and check inputs          {t_load:7.2f} s")
        inputs = figures.Inputs(s_res, r_res, pair_runs(r_res, s_res))
        report_sections = ("predictions", "measurements", "agreement")
        total_fig = total_png = 0.0
        print("seconds per figure; the first save (PDF) includes the constrained-layout pass")
        print(f"{'figure':30s} {'draw':>7s} {'pdf':>7s} {'png':>7s}")
        with style.paper_style():
            for entry in (r for section in report_sections for r in figures.registered(section)):
                drawn, t_draw = clock(entry.draw, inputs)
                fig = drawn.figure
                if fig is None:
                    print(f"{entry.name:30s} not drawn: {drawn.reason}")
                    continue
                _, t_pdf = clock(fig.savefig, root / f"{entry.name}.pdf", format="pdf")
                _, t_png = clock(fig.savefig, root / f"{entry.name}.png", dpi=style.PNG_DPI)
                style.plt.close(fig)
                total_fig += t_draw + t_pdf + t_png
                total_png += t_png
                print(f"{entry.name:30s} {t_draw:7.2f} {t_pdf:7.2f} {t_png:7.2f}")
        _, t_tab = clock(
            lambda: [
                tables.write_table(t, root / "tables")
                for t in (tables.methods_table(r_res), tables.predictions_table(s_res))
            ]
        )
        print(f"tables (methods, predictions)  {t_tab:7.2f} s")
        _, t_build = clock(build, sims, runs, root / "report", audit="none")
        print(f"whole build (python -m reports.build, no audit)  {t_build:.2f} s")
        print(f"figures {total_fig:.2f} s, of which PNG rendering {total_png / total_fig:.0%}")
        print(f"figures / whole build: {total_fig / t_build:.2f}")


if __name__ == "__main__":
    main()
