"""python -m symbolic.derive LOSS [--n 3] [--d 2] [--latex] [--check]: a loss's gradient.

Prints the gradient of LOSS at N samples and d features: the closed matrix form where there is one
(:mod:`symbolic.matrix_forms`), otherwise the entry-by-entry sympy derivatives (shared
subexpressions first). ``--check`` adds the largest relative error of the sympy gradient against
torch autograd and against central finite differences at random float64 points, and of each
closed form against the entry-wise gradient; exit status 1 when one exceeds its tolerance.
``all`` derives every loss (with ``--check``: one line per loss). ``--list`` lists the losses.
Bad input (unknown loss, N < 2, d < 1, N x d above MAX_ENTRIES, a bad hyperparameter, an --out
that cannot be written) exits with status 2 and one line, before any work.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sympy as sp
from tqdm import tqdm

from symbolic import losses, matrix_forms
from symbolic.common.cli import ArgumentParser, RunFailure, UsageError, exit_main
from symbolic.common.files import check_output_file, write_text
from symbolic.derivation import (
    AUTOGRAD_TOL,
    FINITE_DIFFERENCE_TOL,
    check,
    derive,
    fit_to_size,
)
from symbolic.registry import Loss, split_assignments

FORM_TOL = 1e-10
#: largest N x d: sympy's entry-wise derivation grows steeply with the entries (Barlow Twins:
#: 2 s at N=4, d=2; 40 s at N=8, d=4; over 5 minutes at N=16, d=8)
MAX_ENTRIES = 64
#: most random check points, and the largest seed
MAX_POINTS, MAX_SEED = 1000, 2**32 - 1


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m symbolic.derive",
        description="Derive a loss's gradient with sympy (entry by entry) and check it.",
    )
    parser.add_argument("loss", nargs="?", help="loss name (see --list) or 'all'")
    parser.add_argument(
        "--n", type=int, default=3, help=f"batch size N (>= 2; N x d <= {MAX_ENTRIES})"
    )
    parser.add_argument("--d", type=int, default=2, help="feature dimension d (>= 1)")
    parser.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with torch autograd and finite differences (and the closed forms)",
    )
    parser.add_argument(
        "--loss-param",
        dest="loss_param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a hyperparameter of the loss (repeatable); default: the official values",
    )
    parser.add_argument(
        "--points", type=int, default=3, help=f"random points per check (1..{MAX_POINTS})"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random check points (>= 0)"
    )
    parser.add_argument("--list", action="store_true", help="list the losses and exit")
    parser.add_argument("--out", type=Path, help="also write the check results as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_params(texts: Sequence[str], targets: list[Loss]) -> dict[str, dict[str, Any]]:
    """Per-loss hyperparameters from NAME=VALUE texts (each goes to the losses that have it),
    parsed and checked by the losses themselves; UsageError naming a bad one."""
    try:
        given = split_assignments(list(texts))
    except ValueError as err:
        raise UsageError(f"--loss-param {err}") from None
    out: dict[str, dict[str, Any]] = {loss.name: {} for loss in targets}
    for name, text in given.items():
        holders = [loss for loss in targets if name in loss.hypers]
        if not holders:
            allowed = sorted({h for loss in targets for h in loss.hypers}) or ["none"]
            raise UsageError(
                f"--loss-param {name}={text}: unknown hyperparameter {name!r} "
                f"(allowed: {', '.join(allowed)})"
            )
        for loss in holders:
            try:
                value = loss.parse({name: text})
                loss.resolve(value)
            except (TypeError, ValueError) as err:
                raise UsageError(f"--loss-param {err}") from None
            out[loss.name].update(value)
    return out


def tex_name(symbol: sp.Symbol) -> str:
    """LaTeX of an entry symbol ``role_i_j``: z1_0_1 -> z^{(1)}_{0,1}, wp_0_1 -> (W_p)_{0,1}."""
    role, i, j = symbol.name.rsplit("_", 2)
    match = re.fullmatch(r"([a-z]+?)(\d*)", role)
    base, digits = match.groups() if match else (role, "")
    base = {"wp": "(W_p)", "queue": r"\mathrm{queue}"}.get(base, base)
    return f"{base}{f'^{{({digits})}}' if digits else ''}_{{{i},{j}}}"


def entry_lines(derivation, latex: bool) -> list[str]:
    """The entry-wise gradient: shared subexpressions, then dL/d(entry) for each entry."""
    loss = derivation.loss
    names = {s: tex_name(s) for s in derivation.flat_symbols}
    stopped = set(derivation.stopped())
    entries = [
        (arg, idx, grad[idx])
        for arg, grad in zip(loss.args, derivation.gradients, strict=True)
        if arg not in stopped
        for idx in sorted(_indices(grad.shape))
    ]
    replacements, reduced = sp.cse([e for _, _, e in entries])
    lines = []
    for sym, expr in replacements:
        lines.append(
            f"{sp.latex(sym)} = {sp.latex(expr, symbol_names=names)}"
            if latex
            else f"{sym} = {sp.sstr(expr)}"
        )
    for (arg, (i, j), _), expr in zip(entries, reduced, strict=True):
        if latex:
            target = tex_name(sp.Symbol(f"{arg}_{i}_{j}"))
            lines.append(
                rf"\frac{{\partial L}}{{\partial {target}}} = {sp.latex(expr, symbol_names=names)}"
            )
        else:
            lines.append(f"dL/d{arg}[{i},{j}] = {sp.sstr(expr)}")
    return lines + _stopped_lines(loss, stopped, latex)


def _indices(shape):
    return [(i, j) for i in range(shape[0]) for j in range(shape[1])]


def _stopped_lines(loss: Loss, stopped: set[str], latex: bool) -> list[str]:
    return [
        (rf"\frac{{\partial L}}{{\partial {arg}}} = 0" if latex else f"dL/d{arg} = 0")
        + " (stop-gradient)"
        for arg in loss.args
        if arg in stopped
    ]


def describe(loss: Loss, n: int, d: int, hp: dict[str, Any]) -> str:
    full = {**loss.defaults, **hp}
    settings = ", ".join(f"{k}={v!r}" for k, v in full.items())
    return f"{loss.name}: N={n}, d={d}" + (f"; {settings}" if settings else "")


def run_one(loss: Loss, n: int, d: int, hp: dict[str, Any], args) -> dict[str, Any]:
    """Print the gradient of one loss (and its check); return the check record."""
    derivation = derive(loss.name, n, d, **hp)
    print(f"== {describe(loss, n, d, hp)} ==")
    print(f"loss: {loss.formula}" if args.latex else f"loss: {loss.summary}")
    forms = matrix_forms.forms(loss.name, **hp)
    if forms:
        print(f"gradient, closed matrix form ({forms[0].note}):")
        for form in forms:
            print(f"  {form.latex if args.latex else form.text}")
        for line in _stopped_lines(loss, set(derivation.stopped()), args.latex):
            print(f"  {line}")
    else:
        print("gradient, entry by entry (shared subexpressions first):")
        for line in entry_lines(derivation, args.latex):
            print(f"  {line}")
    if not args.check:
        return {}
    record = check_record(loss, n, d, hp, args)
    print(record["summary"])
    return record


def check_record(loss: Loss, n: int, d: int, hp: dict[str, Any], args) -> dict[str, Any]:
    """Check one loss: sympy vs autograd vs finite differences, closed forms vs entry-wise."""
    start = time.perf_counter()
    result = check(derive(loss.name, n, d, **hp), points=args.points, seed=args.seed)
    forms = matrix_forms.check_forms(loss.name, n, d, points=2, seed=args.seed, **hp)
    form_error = max((f.error for f in forms), default=0.0)
    ok = result.ok and form_error <= FORM_TOL
    summary = (
        f"check ({args.points} random float64 points, seed {args.seed}): sympy vs torch autograd "
        f"max rel err {result.autograd_error:.1e} (tol {AUTOGRAD_TOL:g}); vs central finite "
        f"differences {result.finite_difference_error:.1e} (tol {FINITE_DIFFERENCE_TOL:g})"
    )
    if forms:
        summary += f"; closed forms vs entry-wise {form_error:.1e} (tol {FORM_TOL:g})"
        for f in forms:
            if f.sympy_calculus != "not attempted":
                summary += f"\n  sympy matrix calculus for {f.form.label}: {f.sympy_calculus}"
    summary += f"\n  {'OK' if ok else 'FAILED'}"
    return {
        "loss": loss.name,
        "n": n,
        "d": d,
        "hyperparameters": result.hyperparameters,
        "autograd_error": result.autograd_error,
        "finite_difference_error": result.finite_difference_error,
        "closed_form_error": form_error if forms else None,
        "sympy_matrix_calculus": {f.form.label: f.sympy_calculus for f in forms},
        "ok": ok,
        "seconds": time.perf_counter() - start,
        "summary": summary,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name in losses.names():
            loss = losses.get(name)
            hp = ", ".join(f"{k}={v!r}" for k, v in loss.defaults.items())
            print(f"{name:13s} ({', '.join(loss.args)}){'  ' + hp if hp else ''}")
            print(f"{'':13s} {loss.summary}")
        return 0
    if args.loss is None:
        raise UsageError("give a loss name (see --list) or 'all'")
    if args.n < 2:
        raise UsageError(f"--n {args.n} is not allowed: N must be an integer >= 2")
    if args.d < 1:
        raise UsageError(f"--d {args.d} is not allowed: d must be an integer >= 1")
    if args.n * args.d > MAX_ENTRIES:
        raise UsageError(
            f"--n {args.n} --d {args.d} is not allowed: N x d = {args.n * args.d} entries, at most "
            f"{MAX_ENTRIES} (the sympy derivation grows steeply with them)"
        )
    if not 1 <= args.points <= MAX_POINTS:
        raise UsageError(f"--points {args.points} is not allowed: must be >= 1 and <= {MAX_POINTS}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed {args.seed} is not allowed: an integer >= 0 and <= {MAX_SEED}")
    if args.out is not None:
        check_output_file(args.out)
    try:
        targets = losses.names() if args.loss == "all" else [losses.get(args.loss).name]
    except ValueError as err:
        raise UsageError(str(err)) from None
    targets = [losses.get(t) for t in targets]
    params = parse_params(args.loss_param, targets)
    settings = {}
    for loss in targets:
        hp, notes = fit_to_size(loss, args.n, params[loss.name])
        try:
            loss.resolve(hp)
            if "k" in hp and args.n % hp["k"]:
                raise ValueError(f"{loss.name}: hyperparameter k={hp['k']} must divide N={args.n}")
        except (TypeError, ValueError) as err:
            raise UsageError(str(err)) from None
        settings[loss.name] = (hp, notes)

    records = []
    if args.loss == "all" and args.check:
        start = time.perf_counter()
        quiet = args.quiet or not sys.stderr.isatty()
        for loss in tqdm(targets, desc="derive+check", disable=quiet):
            hp, _ = settings[loss.name]
            derive_start = time.perf_counter()
            derive(loss.name, args.n, args.d, **hp)
            record = check_record(loss, args.n, args.d, hp, args)
            record["seconds"] = time.perf_counter() - derive_start
            records.append(record)
            closed = record["closed_form_error"]
            print(
                f"{loss.name:13s} autograd {record['autograd_error']:.1e}  "
                f"finite-diff {record['finite_difference_error']:.1e}  "
                f"closed-form {'-' if closed is None else f'{closed:.1e}'}  "
                f"{record['seconds']:5.1f}s  {'OK' if record['ok'] else 'FAILED'}"
            )
        print(
            f"all {len(records)} losses at N={args.n}, d={args.d}: "
            f"{time.perf_counter() - start:.1f}s"
        )
    else:
        for loss in targets:
            hp, notes = settings[loss.name]
            for note in notes:
                print(f"note: {note}")
            record = run_one(loss, args.n, args.d, hp, args)
            if record:
                records.append(record)
    if args.out and records:
        write_json(args.out, records, vars(args))
    failed = [r["loss"] for r in records if not r["ok"]]
    if failed:
        raise RunFailure(f"gradient check failed for {', '.join(failed)}")
    return 0


def write_json(path: Path, records: list[dict[str, Any]], options: dict[str, Any]) -> None:
    """Write the check records with provenance atomically."""
    from symbolic.common.provenance import provenance

    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    payload = {
        "provenance": provenance("derivation-check", "symbolic.derive", params),
        "checks": [{k: v for k, v in r.items() if k != "summary"} for r in records],
    }
    write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


if __name__ == "__main__":
    exit_main(main, prog="python -m symbolic.derive")
