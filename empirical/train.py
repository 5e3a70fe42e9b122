"""``python -m empirical.train METHOD [options]``: train a method, measure what the theory predicts.

    python -m empirical.train --list
    python -m empirical.train byol --epochs 20 --out runs/byol
    python -m empirical.train byol --help               # byol's options and defaults
    python -m empirical.train --config runs/byol/config.toml --out runs/byol_again
    python -m empirical.train byol --out runs/byol --resume
    torchrun --nproc-per-node 8 -m empirical.train byol --data imagenet:/data/imagenet

One process, or one per device under torchrun (DDP; BatchNorm synchronised; each method's
cross-sample statistics gathered with gradients). Every option is declared once
(:mod:`empirical.config`, the method's own options in its module); ``--config FILE.toml`` reads
options from a file (the command line overrides it) and every run writes its resolved
``config.toml``. The run folder is locked while a run writes into it. ``--resume`` continues
from the last checkpoint; on the CPU the result is bit-identical to an uninterrupted run. A NaN
or infinite loss stops the run with exit status 1 and leaves the last good checkpoint in place.
See :mod:`empirical.trainer` for what a run does and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from empirical.checkpoint import CHECKPOINT, checkpoints, resume
from empirical.config import config_class, method_listing, option_groups
from empirical.distributed import init_from_env
from empirical.methods import METHODS, get
from empirical.trainer import Run, write_feature_moments
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import check_output_folder, folders_to_make, remove_debris, remove_empty
from symbolic.common.lock import exclusive
from symbolic.common.options import add_options, read_toml, resolve

PROG = "python -m empirical.train"


def build_parser() -> ArgumentParser:
    """The parser: ``--list``, then one sub-command per method with that method's options."""
    parser = ArgumentParser(
        prog=PROG,
        description="Train a self-supervised method and record the observables the linear theory "
        "predicts (netCDF), with checkpoints and the resolved configuration in --out.",
    )
    parser.add_argument("--list", action="store_true", help="list the methods and their defaults")
    sub = parser.add_subparsers(dest="method", metavar="METHOD", parser_class=ArgumentParser)
    for cls in METHODS.values():
        p = sub.add_parser(
            cls.name, help=cls.summary, description=sys.modules[cls.__module__].__doc__
        )
        cfg = config_class(cls)
        groups = {}
        for title, names in option_groups(cfg).items():
            groups[title] = p.add_argument_group(title)
            others = [f.name for f in dataclasses.fields(cfg) if f.name not in names]
            add_options(groups[title], cfg, defaults={"out": f"runs/{cls.name}"}, exclude=others)
        run = groups["output"]
        run.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="FILE.toml",
            help="read options from a TOML file (a run's config.toml reruns it); the command "
            "line overrides it (default: none)",
        )
        run.add_argument("--resume", action="store_true", help="continue the run saved in --out")
        run.add_argument(
            "--stop-after",
            type=int,
            default=None,
            help="stop after this epoch (the schedules keep --epochs; continue with --resume) "
            "(default: none)",
        )
        run.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return parser


def _with_method_from_config(argv: list[str]) -> list[str]:
    """``--config FILE`` without a method: the method named in the file goes first."""
    if any(a in METHODS for a in argv) or {"--list", "-h", "--help"} & set(argv):
        return argv
    pre = ArgumentParser(prog=PROG, add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is None:
        raise UsageError("name a method to train (see --list)")
    method = read_toml(known.config).get("method")
    if not isinstance(method, str):
        given = "no line 'method'" if method is None else f"method = {method!r}"
        raise UsageError(
            f'--config {known.config}: names no method ({given}; expected e.g. method = "byol")'
        )
    return [known_method(method, f"--config {known.config}: "), *argv]


def _not_an_option(method: str | None, unknown: list[str]) -> str:
    """The error for options the method does not take: another method's own option ("simclr
    has no option --predictor linear: it is an option of byol, simsiam ..."), else argparse's."""
    flag = next((a.split("=")[0] for a in unknown if a.startswith("-")), "")
    owners = [
        cls.name
        for cls in METHODS.values()
        for mixin in cls.options
        for f in dataclasses.fields(mixin)
        if flag.replace("--no-", "--") == "--" + f.name.replace("_", "-")
    ]
    if method is None or not owners:
        return f"unrecognized arguments: {' '.join(unknown)}"
    cls = get(method)
    return (
        f"{method} has no option {' '.join(unknown)}: it is an option of {', '.join(owners)} "
        f"only ({method}: predictor {cls.predictor}, target {cls.target}); see {PROG} {method} "
        "--help"
    )


def known_method(name: str, context: str = "") -> str:
    """``name`` if it is a method; UsageError naming the known methods otherwise."""
    try:
        return get(name).name
    except ValueError as err:
        raise UsageError(f"{context}{err}") from None


def configuration(args: argparse.Namespace):
    """The method's configuration from its defaults, ``--config`` and the command line."""
    cls = get(args.method)
    config = read_toml(args.config) if args.config else {}
    named = config.pop("method", args.method)
    if named != args.method:
        raise UsageError(f"--config {args.config} is for method {named!r}, not {args.method!r}")
    defaults = {"method": cls.name, "out": f"runs/{cls.name}", "world_size": 1}
    return resolve(config_class(cls), args, config, defaults, source=f"--config {args.config}")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        known_method(argv[0])
    parser = build_parser()
    args, unknown = parser.parse_known_args(_with_method_from_config(argv))
    if unknown:
        parser.error(_not_an_option(args.method, unknown))
    if args.list:
        print(method_listing(METHODS))
        return 0
    if args.stop_after is not None and args.stop_after < 1:
        raise UsageError(f"--stop-after {args.stop_after}: must be >= 1")
    cfg = configuration(args)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    info = init_from_env(device.type)
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    out = check_output_folder(cfg.out)
    made = folders_to_make(out) if info.main else []
    try:
        return _train(args, cfg, info, device, out)
    except OSError:  # a full disk before the first checkpoint: nothing to resume, nothing kept
        if out.absolute() in made and not (out / CHECKPOINT).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:  # a run refused before it wrote anything leaves no empty folder behind
        remove_empty(made)


def _train(args, cfg, info, device: torch.device, out: Path) -> int:
    """The run in ``out``, under its lock (main rank): debris removed, resumed or fresh."""
    with exclusive(out, folder=True) if info.main else contextlib.nullcontext():
        checkpoint = out / CHECKPOINT
        if info.main:
            remove_debris(out)
        if args.resume and not checkpoints(out):
            raise UsageError(f"--resume: no checkpoint at {checkpoint}")
        if not args.resume and checkpoints(out):
            raise UsageError(
                f"--out {out} already holds a run ({checkpoints(out)[0]}); pass --resume to "
                "continue it or choose another --out"
            )
        run = Run(cfg, info, device, args.quiet)
        if args.resume:
            run.log(resume(run, out))
            if info.main:  # the measurements so far, from the checkpoint (whatever the file holds)
                run.recorder.write(run.epoch, cfg.epochs)
        try:
            code = run.run(args.stop_after)
            write_feature_moments(run)  # an MLP backbone's, once finished
            return code
        finally:
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


if __name__ == "__main__":
    exit_main(main, prog=PROG)
