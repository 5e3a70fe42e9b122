"""Build the report: ``python -m reports.build --sim results/*.nc --runs runs/* --out report/``.

Writes ``OUT/figures/`` (PDF + PNG), ``OUT/tables/`` (LaTeX booktabs, Markdown, CSV),
``OUT/report.md``, a self-contained ``OUT/report.html`` and ``OUT/provenance.json``. Everything is
written into a temporary folder beside OUT and renamed into place at the end, so a failed build
leaves no partial report (and an existing report stays as it was). A missing or malformed input
stops the build before anything is written: exit status 2 and one line naming the file.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from reports import audit as audit_mod
from reports.compose import compose
from reports.document import to_html, to_markdown_text
from reports.inputs import load_inputs
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import atomic_folder, check_output_folder, remove_debris
from symbolic.common.lock import exclusive

DEFAULT_TITLE = "Learning dynamics of self-supervised learning: theory next to measurement"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m reports.build",
        description="Build figures, tables, report.md and report.html from result files.",
    )
    p.add_argument("--sim", nargs="*", default=[], metavar="FILE", help="simulation netCDF files")
    p.add_argument(
        "--runs",
        nargs="*",
        default=[],
        metavar="RUN",
        help="training runs: folders holding one netCDF of measurements, or the files",
    )
    p.add_argument("--out", required=True, help="report folder (replaced if it holds a report)")
    p.add_argument(
        "--audit",
        default="auto",
        metavar="auto|none|FILE",
        help="claims audit: run `python -m symbolic.audit --format json`, leave out, or read JSON",
    )
    p.add_argument(
        "--audit-timeout",
        type=float,
        default=audit_mod.DEFAULT_TIMEOUT_S,
        help="seconds allowed for the claims audit command",
    )
    p.add_argument(
        "--claims",
        default=None,
        metavar="DIR",
        help="add the reproduced claims of `python -m reports.reproduce --out DIR` (default: none)",
    )
    p.add_argument("--title", default=DEFAULT_TITLE, help="report title")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def check_out(out: Path) -> None:
    """Refuse to replace a file or a folder that is not a report."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.md").exists():
        raise UsageError(f"--out {out}: folder is not empty and holds no report.md; not replacing")


def build(
    sims: Sequence[str],
    runs: Sequence[str],
    out: str | Path,
    audit: str = "auto",
    audit_timeout: float = audit_mod.DEFAULT_TIMEOUT_S,
    title: str = DEFAULT_TITLE,
    command: str = "",
    quiet: bool = True,
    reproduced: str | Path | None = None,
) -> Path:
    """Build the report into ``out``; returns ``out``. InputError/UsageError on bad input.

    ``reproduced``: a folder of ``python -m reports.reproduce`` whose claims get a section."""
    out = Path(out)
    check_out(out)
    check_output_folder(out)
    section = None
    if reproduced is not None:
        from reports.reproduce.outputs import load

        section = load(reproduced)
    sim_results, run_results = load_inputs(sims, runs) if sims or runs or not section else ([], [])
    claims = audit_mod.load(audit, audit_timeout)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out, folder=False):  # one build at a time replaces this report
        _write(out, sim_results, run_results, claims, title, command, quiet, section)
    return out


def _write(out: Path, sim_results, run_results, claims, title, command, quiet, section) -> None:
    """Compose the report in a temporary folder beside ``out`` and move it into place
    (:func:`symbolic.common.files.atomic_folder`), after removing what killed builds left."""
    remove_debris(out.parent, out.name)
    with atomic_folder(out) as tmp:
        with tqdm(
            total=8 + bool(section), desc="report", disable=quiet or not sys.stderr.isatty()
        ) as bar:

            def progress(step: str) -> None:
                bar.set_postfix_str(step)
                bar.update(1)

            blocks, manifest = compose(
                tmp, sim_results, run_results, claims, title, command, progress, section
            )
        (tmp / "report.md").write_text(to_markdown_text(blocks, tmp), encoding="utf-8")
        (tmp / "report.html").write_text(to_html(blocks, title), encoding="utf-8")
        (tmp / "provenance.json").write_text(
            json.dumps(manifest.__dict__, indent=2, default=str), encoding="utf-8"
        )
    if not quiet:
        print(
            f"report written to {out}/ ({len(manifest.figures)} figures, "
            f"{len(manifest.tables)} tables)"
        )
        for name, reason in manifest.not_drawn.items():
            print(f"  not drawn: {name} ({reason})")
        if claims.reason:
            print(f"  claims audit: {claims.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (math.isfinite(args.audit_timeout) and args.audit_timeout > 0):
        raise UsageError(f"--audit-timeout {args.audit_timeout}: must be a finite number > 0")
    argv = sys.argv[1:] if argv is None else list(argv)
    build(
        args.sim,
        args.runs,
        args.out,
        audit=args.audit,
        audit_timeout=args.audit_timeout,
        title=args.title,
        command=" ".join(["python -m reports.build", *argv]),
        quiet=args.quiet,
        reproduced=args.claims,
    )
    return 0


if __name__ == "__main__":
    exit_main(main, prog="python -m reports.build")
