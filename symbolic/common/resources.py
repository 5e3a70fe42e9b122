"""What a run will need against what the machine has: refuse sizes that cannot fit, in one line.

Each command estimates the memory its largest arrays take from its options alone, before it
allocates anything, and calls :func:`check_memory`; a run that cannot fit stops at once with a
UsageError ("--dim 100000: needs ~224 GiB, this machine has 23.5 GiB") instead of dying of
MemoryError (or being killed by the kernel) minutes later. The machine's memory is the smallest of
its physical memory (``os.sysconf``), the cgroup limit of a container, and the address-space limit
of this process (``ulimit -v``). Estimates are of the order of magnitude, not exact: they count the
arrays that grow with the options and leave a margin (:data:`MARGIN`) for the rest.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

from symbolic.common.cli import UsageError

GIB = 1 << 30
#: a run is refused when its estimate exceeds this fraction of the machine's memory (the rest is
#: the interpreter, the libraries and what the estimate does not count)
MARGIN = 0.8
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int:
    """Bytes of memory this process can use: physical memory, cgroup limit, ``ulimit -v``."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        pass
    for name in _CGROUP_FILES:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            limits.append(int(text))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft > 0:
        limits.append(soft)
    return min(limits) if limits else 1 << 62


def gib(n_bytes: float) -> str:
    """'3.2 GiB', '224 GiB', '1,490,116 GiB'."""
    value = n_bytes / GIB
    return f"{value:.2g} GiB" if value < 10 else f"{value:,.0f} GiB"


def check_memory(
    needed: float, what: str, available: int | None = None, where: str = "this machine"
) -> None:
    """UsageError "WHAT: needs ~X GiB, this machine has Y GiB" when ``needed`` bytes cannot fit.

    ``what`` names the options that set the size (``--dim 100000``), so the one line says what to
    change. ``needed`` may be a float (an estimate that overflows an int is still refused).
    ``available``/``where``: another memory than this machine's (a GPU's).
    """
    available = machine_memory() if available is None else available
    if not math.isfinite(needed) or needed > MARGIN * available:
        shown = gib(needed) if math.isfinite(needed) else "more memory than exists"
        raise UsageError(
            f"{what}: needs ~{shown}, {where} has {gib(available)}; choose smaller sizes"
        )


def float_bytes(*counts: float, itemsize: int = 8) -> float:
    """Bytes of arrays holding ``counts`` numbers of ``itemsize`` bytes (float64 by default),
    as a float so that a product of large sizes cannot overflow."""
    return float(sum(float(c) for c in counts)) * itemsize
