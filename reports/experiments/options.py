"""The options every driver shares (``--jobs``, ``--resume``, ``--quiet``; the device of its
runs) and the range check of a count, made before anything runs."""

from __future__ import annotations

from symbolic.common.cli import ArgumentParser, UsageError

#: most commands a driver runs at once
MAX_JOBS = 256
#: most seeds a driver trains per configuration
MAX_SEEDS = 100


def add_runner_options(parser: ArgumentParser, jobs: int | None, jobs_help: str) -> None:
    """``--jobs``, ``--resume`` and ``--quiet``."""
    parser.add_argument("--jobs", type=int, default=jobs, help=jobs_help)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the work folder of an interrupted run: finished commands whose files are "
        "unchanged are kept, damaged ones recomputed, interrupted trainings continued",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")


def add_device_options(parser: ArgumentParser) -> None:
    """``--device`` and ``--precision`` of the training runs a driver launches."""
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="device of every training run (the sizes are the CPU's)",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "auto"),
        help="arithmetic of every training run (fp32: the numbers the theory is compared with)",
    )


def check_device(device: str) -> None:
    """UsageError for ``--device cuda`` on a machine without a CUDA device (before any run)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available on this machine")


def device_options(device: str = "cpu", precision: str = "fp32") -> tuple[str, ...]:
    """``--device DEVICE --precision PRECISION`` of a training run: a run sized for the CPU
    stays there, in fp32, on a machine with a GPU too (``auto`` would pick CUDA and bf16)."""
    return ("--device", device, "--precision", precision)


def check_range(option: str, value: int, low: int, high: int, why: str = "") -> int:
    """``value`` if ``low <= value <= high``; else UsageError "--seeds 1000000: allowed 3 to
    100" (and ``why`` a smaller value is not)."""
    if not low <= value <= high:
        reason = f" ({why})" if why and value < low else ""
        raise UsageError(f"{option} {value}: allowed {low} to {high}{reason}")
    return value
