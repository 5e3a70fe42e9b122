"""``python -m dynamics.sweep``: see :mod:`dynamics.sweep.cli`."""

from dynamics.sweep.cli import main
from symbolic.common.cli import exit_main

exit_main(main, prog="python -m dynamics.sweep")
