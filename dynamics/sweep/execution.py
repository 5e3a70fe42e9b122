"""Where the units of a sweep run: in this process, in a pool of worker processes, or as tasks
of a dask.distributed cluster. Each finished unit is handed to ``finish`` as it completes.

Worker processes never outlive the sweep: each watches its parent (:func:`_watch_parent`: the
parent's process id, polled twice a second) and exits when the parent is gone, however the parent
ended (kill -9 included: the operating system then gives the orphan a new parent). They ignore
SIGINT, which the terminal sends to the whole process group; the parent, interrupted, stops them
itself.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from symbolic.common.cli import UsageError

#: environment variables that set the thread count of BLAS / OpenMP in worker processes
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: seconds between two looks of a worker at its parent
WATCH_INTERVAL_S = 0.5


def _watch_parent(parent: int) -> None:
    """Worker initialiser: ignore SIGINT and exit as soon as the process ``parent`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)  # the sweep is gone: nothing will collect this worker's results

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


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
            lambda failed=False: client.close(),
        )
    if workers > 1:
        # fresh (spawned) workers with one BLAS/OpenMP thread each: N processes x 2 BLAS threads
        # on a 2-core machine made a 2-worker sweep slower than a serial one
        saved = {k: os.environ.get(k) for k in THREAD_VARS}
        os.environ.update({k: "1" for k in THREAD_VARS})
        pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_watch_parent,
            initargs=(os.getpid(),),
        )

        def shutdown(failed: bool = False):
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            if failed:  # interrupted or failed: stop the units still running, do not wait
                for process in processes:
                    process.terminate()
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
    except BaseException:
        shutdown(failed=True)
        raise
    shutdown()
