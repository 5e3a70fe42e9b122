"""The one experiment runner of the drivers ``reports.bridge``, ``reports.reproduce`` and
``reports.demo``.

A driver turns its options into a plan: :class:`~.commands.Command` s, each the real command
line of a toolkit command (``python -m empirical.train ...``, ``python -m dynamics.simulate
...``) with the file or folder it writes. Before the first command starts, every command line is
parsed by that command's own parser (:func:`~.commands.validate`: a bad option is exit status 2
before anything runs). A :class:`~.workspace.Workspace` owns the driver's work folder: its lock
(two drivers into one folder: the second refuses), ``plan.json`` (what was planned, checked on
``--resume``), one completion marker per finished command (its seconds and the size and SHA-256
of every file it wrote: ``--resume`` skips a command only when its files are unchanged, and
recomputes a damaged one), and the pool that runs ``--jobs`` commands at a time
(:mod:`~.pool`: each child dies with the driver, kill -9 included).
"""

from reports.experiments.commands import Command, validate
from reports.experiments.options import add_runner_options, check_range, device_options
from reports.experiments.pool import Finished
from reports.experiments.workspace import OWNER_FILE, Workspace

__all__ = [
    "OWNER_FILE",
    "Command",
    "Finished",
    "Workspace",
    "add_runner_options",
    "check_range",
    "device_options",
    "validate",
]
