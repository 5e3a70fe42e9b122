"""Where the units of a sweep run: in this process, in a pool of worker processes, or as tasks
of a dask.distributed cluster. Each finished unit is handed to ``finish`` as it completes."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any

from symbolic.common.cli import UsageError

#: environment variables that set the thread count of BLAS / OpenMP in worker processes
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _executor(workers: int, scheduler: str | None):
    """(submit, as_completed, shutdown) for process-pool or dask execution; None in-process."""
    if scheduler:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise UsageError(
                "--scheduler needs dask.distributed: pip install 'ssl-dynamics[cluster]'"
            ) from None
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as err:
            raise UsageError(f"--scheduler {scheduler}: cannot connect: {err}") from None
        return (
            lambda fn, *a: client.submit(fn, *a, pure=False),
            dask_completed,
            client.close,
        )
    if workers > 1:
        # fresh (spawned) workers with one BLAS/OpenMP thread each: N processes x 2 BLAS threads
        # on a 2-core machine made a 2-worker sweep slower than a serial one
        saved = {k: os.environ.get(k) for k in THREAD_VARS}
        os.environ.update({k: "1" for k in THREAD_VARS})
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))

        def shutdown():
            pool.shutdown(wait=False, cancel_futures=True)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

        return pool.submit, cf.as_completed, shutdown
    return None


def execute(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, tuple]],
    finish: Callable[[Any, Any], None],
    workers: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run ``fn(*args)`` for every (key, args) of ``tasks`` and call ``finish(key, result)``.

    ``fn`` must be a top-level function (worker processes and dask import it). In-process the
    tasks run in order; otherwise as they complete.
    """
    parallel = _executor(workers, scheduler)
    if parallel is None:
        for key, args in tasks:
            finish(key, fn(*args))
        return
    submit, completed, shutdown = parallel
    try:
        futures = {submit(fn, *args): key for key, args in tasks}
        for future in completed(futures):
            finish(futures[future], future.result())
    finally:
        shutdown()
