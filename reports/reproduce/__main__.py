"""``python -m reports.reproduce``: see :mod:`reports.reproduce.cli`."""

from reports.reproduce.cli import PROG, main
from symbolic.common.cli import exit_main

exit_main(main, prog=PROG)
