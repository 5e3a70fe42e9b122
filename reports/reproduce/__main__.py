"""``python -m reports.reproduce``: see :mod:`reports.reproduce.cli`."""

import sys

from reports.reproduce.cli import PROG, main
from symbolic.common.cli import run_main

sys.exit(run_main(main, prog=PROG))
