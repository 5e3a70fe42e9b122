"""A command for the warm-start tests: ``python -m tests.reports.warm_commands ACTION [ARG]``.

exit N: exit status N; message: SystemExit with a text; raise: an uncaught exception;
interrupt: an uncaught KeyboardInterrupt; report FILE: writes its working folder,
sys.argv and the environment variable WARM_TEST into FILE as JSON; sleep S: sleeps S seconds.
"""

import json
import os
import sys
import time

if __name__ == "__main__":
    action, arg = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    print("to the log", file=sys.stderr)
    if action == "exit":
        sys.exit(int(arg))
    if action == "message":
        sys.exit("a message as the exit")
    if action == "raise":
        raise ValueError("raised by the command")
    if action == "interrupt":
        raise KeyboardInterrupt
    if action == "report":
        record = {"cwd": os.getcwd(), "argv": sys.argv, "env": os.environ.get("WARM_TEST")}
        with open(arg, "w") as fh:
            json.dump(record, fh)
    if action == "sleep":
        time.sleep(float(arg))
