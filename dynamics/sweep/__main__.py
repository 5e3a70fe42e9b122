"""``python -m dynamics.sweep``: see :mod:`dynamics.sweep.cli`."""

import sys

from dynamics.sweep.cli import main
from symbolic.common.cli import run_main

sys.exit(run_main(main, prog="python -m dynamics.sweep"))
