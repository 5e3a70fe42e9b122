"""A driver's work folder: its lock, its plan, and the commands run in it.

``WORK/.owner`` names the driver that owns the folder (another folder is never replaced);
``WORK/plan.json`` records the settings (sizes) and every command line planned so far, and
``--resume`` refuses a folder planned with other settings or other command lines, or a damaged
``plan.json``, in one line naming it. Finished commands are marked (:mod:`~.markers`): on
``--resume`` a command is skipped only when its files are unchanged, a damaged one recomputed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reports.experiments import pool
from reports.experiments.commands import Command
from reports.experiments.markers import Markers, remove, unreadable
from reports.experiments.pool import Finished
from symbolic.common.cli import EXIT_USAGE, RunFailure, UsageError
from symbolic.common.files import folders_to_make, remove_empty, write_text
from symbolic.common.lock import exclusive

PLAN = "plan.json"
OWNER_FILE = ".owner"
#: a device with less free space than this is named when a command fails
LOW_SPACE = 16 * 2**20


class Workspace:
    """The work folder ``work`` of the driver ``owner`` (``python -m reports.bridge``).

    ``locks``: (folder, option) pairs locked while the driver runs (``--out``, ``--work``): a
    second driver into one of them refuses in one line. A fresh work folder that a refusal
    (exit status 2: bad input, a file that cannot be written, a full disk) leaves without one
    finished command is removed, with the folders made for it: nothing is written.
    """

    def __init__(self, work: Path, owner: str, option: str, locks: Sequence[tuple[Path, str]]):
        self.work = Path(work)
        self.owner = owner
        self.option = option
        #: the folder the user named with ``option`` (``--out`` of reproduce holds the work)
        self.shown = next((Path(f) for f, o in locks if o == option), self.work)
        self.locks = list(locks)
        self.markers = Markers(self.work)
        self._held = contextlib.ExitStack()
        self._made: list[Path] = []
        self._fresh = False  # this session started the folder afresh
        self._kept = False  # a command finished (its marker written) in this session

    def __enter__(self) -> Workspace:
        made = {
            p
            for folder in (self.work, *(f for f, _ in self.locks))
            for p in folders_to_make(folder)
        }
        self._made = sorted(made, key=lambda p: len(p.parts), reverse=True)
        locked = set()
        for folder, option in self.locks:
            if Path(folder).absolute() not in locked:  # --work may be --out itself
                locked.add(Path(folder).absolute())
                self._held.enter_context(exclusive(folder, folder=True, what=option))
        return self

    def __exit__(self, kind, error, trace) -> None:
        refused = kind is not None and issubclass(kind, UsageError | OSError)  # exit status 2
        if refused and self._fresh and not self._kept and self.work.is_dir():
            for entry in self.work.iterdir():
                if entry.name != ".lock":
                    remove(entry)
        self._held.close()
        if refused and self._fresh and not self._kept:
            remove_empty(self._made)

    def space_note(self) -> str:
        """' (WORK: 96 KiB free on its device)' when the device is nearly full, else ''."""
        try:
            free = shutil.disk_usage(self.work).free
        except OSError:
            return ""
        return f" ({self.work}: {free // 1024} KiB free on its device)" if free < LOW_SPACE else ""

    # ------------------------------------------------------------------ the plan
    def _recorded(self) -> dict[str, Any] | None:
        """plan.json, or None where there is none; UsageError naming a damaged one."""
        path = self.work / PLAN
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or type(err).__name__
            raise UsageError(f"{path}: damaged ({reason}); remove it or choose another "
                             f"{self.option}") from None  # fmt: skip
        commands = data.get("commands") if isinstance(data, dict) else None
        if not isinstance(commands, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in commands.values()
        ):
            raise UsageError(
                f"{path}: damaged (no table of command lines); remove it or choose another "
                f"{self.option}"
            )
        return data

    def _owned(self) -> bool:
        """Whether the work folder is ``owner``'s (or empty, or not there)."""
        if not self.work.is_dir():
            return True
        entries = [p for p in self.work.iterdir() if p.name != ".lock"]
        marker = self.work / OWNER_FILE
        if marker.is_file():
            text = marker.read_text(encoding="utf-8", errors="replace")
            return text.split(" owns ")[0].strip() == self.owner
        return not entries or (self.work / PLAN).is_file()

    def check(
        self,
        commands: Iterable[Command],
        settings: Mapping[str, Any],
        resume: bool,
        fresh: str,
        options: str = "",
    ) -> dict[str, Any] | None:
        """Refuse (UsageError, one line) a folder that is not ``owner``'s; without ``resume`` a
        planned folder when ``fresh`` is "refuse" (``reproduce``: "replace" starts afresh);
        with it, a damaged plan.json, other ``settings`` (``options`` names the options that
        set them) or other command lines. Returns the recorded plan (None: none). Writes
        nothing."""
        if not self._owned():
            raise UsageError(
                f"{self.option} {self.shown}: not empty and not a work folder of {self.owner}; "
                "not replacing"
            )
        path = self.work / PLAN
        if not path.exists():
            return None
        if not resume:
            if fresh == "refuse":
                raise UsageError(
                    f"{self.option} {self.shown} "
                    f"already holds a plan ({path}); pass --resume to continue it or choose "
                    f"another {self.option}"
                )
            return None
        data = self._recorded()
        before = data.get("settings", data)
        for key, value in settings.items():
            if key in before and before[key] != value:
                hint = f" ({options})" if options else ""
                raise UsageError(
                    f"--resume: {self.work} was planned with {key} {before[key]!r}, this "
                    f"command asks for {key} {value!r}; give the same options{hint} or another "
                    f"{self.option}"
                )
        for command in commands:
            old = data["commands"].get(command.name)
            if old is not None and old != command.recorded(self.work):
                raise UsageError(
                    f"--resume: {command.name} was planned with other options (other sizes, "
                    f"data or version); use the same options or another {self.option}"
                )
        return data

    def begin(
        self,
        commands: Sequence[Command],
        settings: Mapping[str, Any],
        resume: bool,
        fresh: str,
        extra: Mapping[str, Any] | None = None,
        options: str = "",
    ) -> None:
        """Inside the lock: check again, start afresh where asked, record the plan (the commands
        of an earlier plan of the same settings kept; a resumed plan that adds nothing is not
        rewritten)."""
        data = self.check(commands, settings, resume, fresh, options) if resume else None
        self._fresh = data is None
        if not resume:
            self.check(commands, settings, resume, fresh, options)
            if self.work.is_dir():
                for entry in self.work.iterdir():
                    if entry.name != ".lock":
                        remove(entry)
        self.work.mkdir(parents=True, exist_ok=True)
        if not (self.work / OWNER_FILE).is_file():
            write_text(self.work / OWNER_FILE, f"{self.owner} owns this folder\n")
        recorded = dict(data["commands"]) if data else {}
        if (
            data
            and data.get("settings") == dict(settings)
            and all(c.name in recorded for c in commands)
        ):
            return  # the same plan, resumed: plan.json stays as it was
        recorded.update({c.name: c.recorded(self.work) for c in commands})
        record = {"owner": self.owner, "settings": dict(settings), "commands": recorded}
        write_text(self.work / PLAN, json.dumps({**record, **(extra or {})}, indent=2) + "\n")

    # ------------------------------------------------------------------ markers
    def state(self, command: Command) -> tuple[str, str]:
        """("done" | "resume" | "new", why): see :meth:`Markers.state`."""
        return self.markers.state(command)

    def log(self, command: Command) -> Path:
        return self.markers.log(command)

    def timings(self) -> dict[str, float]:
        """Seconds of every finished command (earlier sessions included), by name."""
        return self.markers.timings()

    # ------------------------------------------------------------------ running
    def run(
        self,
        commands: Sequence[tuple[Command, str]],
        jobs: int,
        keep_going: bool,
        report: Callable[[Finished], None],
    ) -> list[Finished]:
        """Run each (command, state) ``jobs`` at a time; ``report`` as each ends. A command's
        exit status 2 stops everything (UsageError); another failure stops the rest unless
        ``keep_going``. A finished command's files are read back before its marker is written;
        an interrupted training that its ``--resume`` leaves unreadable is recomputed once."""
        items = []
        for command, state in commands:
            if state == "new":
                remove(command.output)
                self.markers.marker(command).unlink(missing_ok=True)
            command.output.parent.mkdir(parents=True, exist_ok=True)
            items.append((command, command.argv(resume=state == "resume"), self.log(command)))
        finished: list[Finished] = []
        retried: set[str] = set()

        def ended(item: pool.Item, code: int, seconds: float) -> object:
            command, argv, log = item
            if code == EXIT_USAGE:
                raise UsageError(
                    f"{command.name} rejected its input: {pool.last_line(log)}{self.space_note()}"
                )
            failure = None if code == 0 else pool.last_line(log) + self.space_note()
            if code == 0:
                problem = unreadable(command)
                if problem is not None and argv[-1] == "--resume" and command.name not in retried:
                    retried.add(command.name)
                    remove(command.output)
                    return (command, command.argv(), log)
                if problem is not None:
                    code, failure = 1, f"wrote an unreadable result: {problem}"
                else:
                    self.markers.finish(command, seconds)
                    self._kept = True
            done = Finished(command, seconds, code, failure)
            finished.append(done)
            report(done)
            return keep_going or failure is None

        try:
            pool.execute(items, jobs, ended)
        except KeyboardInterrupt as err:
            reason = f"{err}; " if str(err) else ""
            raise KeyboardInterrupt(
                f"{reason}continue with the same command and --resume"
            ) from None
        return finished

    def run_stage(
        self, commands: Sequence[Command], jobs: int, report: Callable[[Finished], None]
    ) -> int:
        """Run what is left of ``commands`` (the finished ones kept); RunFailure naming the
        first that fails and its log. Returns how many were already finished."""
        states = [(c, self.state(c)[0]) for c in commands]
        pending = [(c, state) for c, state in states if state != "done"]
        for f in self.run(pending, jobs, keep_going=False, report=report):
            if f.failure is not None:
                raise RunFailure(
                    f"{f.command.name} failed: {f.failure} (its log: {self.log(f.command)}; "
                    "continue with the same command and --resume)"
                )
        return len(states) - len(pending)
