"""Parameter sweeps: every point of a grid integrated, one Dataset with a dimension per parameter.

    python -m dynamics.sweep eigenmodes --grid eta=0:0.3:61 --grid alpha_p=0.5,1,2,4 --out s.nc
    python -m dynamics.sweep eigenmodes --grid eta=0:0.3:1000 --grid alpha_p=0.5:4:100 --workers 2
    python -m dynamics.sweep eigenmodes --grid eta=0:0.3:1000 --backend torch   # GPU if present
    python -m dynamics.sweep linear_byol --grid eta=0:0.2:5 --grid seed=0:4 --workers 2
    python -m dynamics.sweep linear_byol --grid eta=0:0.2:5 --scheduler tcp://host:8786
    python -m dynamics.sweep ... --resume      # continue an interrupted sweep

Python: ``run_sweep("eigenmodes", ["eta=0:0.3:61"], out="s.nc")`` returns the Dataset.

Modules, one job each: :mod:`~dynamics.sweep.run` (the sweep from grid to Dataset),
:mod:`~dynamics.sweep.store` (finished units on disk, resume), :mod:`~dynamics.sweep.execution`
(in-process, process pool or dask), :mod:`~dynamics.sweep.modes` (the vectorised per-mode
path), :mod:`~dynamics.sweep.matrix` (one point of any other scenario) and
:mod:`~dynamics.sweep.cli` (the command line).
"""

from dynamics.sweep.cli import build_parser, main
from dynamics.sweep.run import SWEEP_ATOL, SWEEP_RTOL, VECTORISED, run_sweep
from dynamics.sweep.store import Unit

__all__ = ["SWEEP_ATOL", "SWEEP_RTOL", "VECTORISED", "Unit", "build_parser", "main", "run_sweep"]
