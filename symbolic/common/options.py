"""Options declared once: a dataclass field says its default, meaning, allowed values and flag.

Every command of the toolkit (simulations, sweeps, training) declares its parameters as fields made
by :func:`param`. From that one declaration come

- the checks (:func:`validate`: finite numbers, bounds, choices; one error naming the value),
- the command-line options with their help and defaults (:func:`add_options`),
- the values read from a TOML configuration file (:func:`from_mapping`, :func:`read_toml`),
- the resolved configuration written back as TOML (:func:`to_toml`), which ``--config`` reads, so
  that ``--config runs/x/config.toml`` reruns an experiment,
- which options may differ when a run is resumed (``resume_free``).

Values are resolved in this order: the field default, then the configuration file, then the
options given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import operator
import stat
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

from symbolic.common.cli import UsageError


class ParameterError(ValueError):
    """A parameter outside its allowed range (reported as bad input, exit status 2)."""


#: the numeric bounds ``param`` declares: keyword -> (symbol, test of value against bound)
_BOUNDS = {
    "at_least": (">=", operator.ge),
    "above": (">", operator.gt),
    "at_most": ("<=", operator.le),
    "below": ("<", operator.lt),
}


def param(
    default: Any,
    help: str,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    choices: tuple | None = None,
    why: str | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    parse: Callable[[list[str]], Any] | None = None,
    resume_free: bool = False,
    option: bool = True,
) -> Any:
    """A dataclass field with its help text, the values it allows and how it is given.

    ``at_least``/``above``/``at_most``/``below`` bound a number and ``choices`` lists the allowed
    values (checked by :func:`validate`); ``why``, a short reason, follows the allowed values in the
    error. ``flag`` names the command-line option (default ``--field-name``; a boolean that is on
    by default gets ``--no-field-name``). ``parse`` makes a repeatable option whose texts (a list)
    it turns into the value, e.g. ``--loss-param NAME=VALUE``. ``resume_free`` marks an option that
    may differ when a run is resumed (where files go, how many workers). ``option=False``: a value
    that is resolved by the program, not given by the user.
    """
    limits = {"at_least": at_least, "above": above, "at_most": at_most, "below": below}
    metadata: dict[str, Any] = {k: v for k, v in limits.items() if v is not None}
    metadata.update(help=help, resume_free=resume_free, option=option)
    for key, value in (("choices", choices), ("why", why), ("flag", flag), ("parse", parse)):
        if value is not None:
            metadata[key] = value
    if metavar is not None:
        metadata["metavar"] = metavar
    bounds = [
        f"{symbol} {metadata[key]}" for key, (symbol, _) in _BOUNDS.items() if key in metadata
    ]
    if bounds:
        metadata["help"] += f" [{', '.join(bounds)}]"
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def require(condition: bool, name: str, value: Any, allowed: str) -> None:
    """Raise ParameterError "NAME=VALUE is not allowed: ALLOWED" unless ``condition``."""
    if not condition:
        raise ParameterError(f"{name}={value!r} is not allowed: {allowed}")


@functools.cache
def _hints(owner: type) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def _base_type(field: dataclasses.Field, owner: type) -> tuple[type, bool]:
    """(the field's value type, whether None is allowed) from its annotation."""
    hint = _hints(owner).get(field.name, field.type)
    args = typing.get_args(hint)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return typing.get_origin(hint) or hint, False


def validate(params: Any) -> None:
    """Check what the fields of the dataclass instance ``params`` declare with :func:`param`.

    First every float must be finite ("eta=nan is not allowed: must be finite"), then each field
    must satisfy its bounds and choices, in field order (a number is not true or false, an
    integer without an upper bound fits in 64 bits); the first violation raises
    ParameterError, e.g. "dim=0 is not allowed: an integer >= 1", "eta=-1.0 is not allowed:
    eta >= 0", "convention='x' is not allowed: 'code' or 'paper'", with the ``why`` text in
    parentheses after it. A value of None (an optional field left unset) is not checked.
    """
    fields = dataclasses.fields(params)
    for field in fields:
        value = getattr(params, field.name)
        finite = not isinstance(value, float) or math.isfinite(value)
        require(finite, field.name, value, "must be finite")
    for field in fields:
        value = getattr(params, field.name)
        if value is None:
            continue
        limits = field.metadata
        why = f" ({limits['why']})" if "why" in limits else ""
        kind, _ = _base_type(field, type(params))
        subject = "an integer" if kind is int else field.name
        if kind in (int, float):
            require(not isinstance(value, bool), field.name, value, f"{_TOML_KINDS[kind]}")
        for key, (symbol, holds) in _BOUNDS.items():
            if key in limits:
                bound = limits[key]
                require(holds(value, bound), field.name, value, f"{subject} {symbol} {bound}{why}")
        if kind is int and isinstance(value, int) and "at_most" not in limits:
            low = limits.get("at_least", -INT64_MAX - 1)
            require(
                low <= value <= INT64_MAX,
                field.name,
                value,
                f"an integer from {low} to 2^63 - 1 (result files store 64-bit integers)",
            )
        if "choices" in limits:
            *others, last = (repr(c) for c in limits["choices"])
            allowed = f"{', '.join(others)} or {last}" if others else last
            require(value in limits["choices"], field.name, value, allowed + why)


def option_name(field: dataclasses.Field) -> str:
    """The command-line flag of a field: its ``flag``, ``--no-NAME`` for a boolean on by
    default, else ``--NAME`` with dashes."""
    if "flag" in field.metadata:
        return field.metadata["flag"]
    name = field.name.replace("_", "-")
    return f"--no-{name}" if field.default is True else f"--{name}"


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return lowered in ("true", "1", "yes")


def _scalar_parser(kind: type, optional: bool) -> Callable[[str], Any]:
    """The argparse ``type`` for a field: numbers, text, booleans; 'none' for an optional one."""
    base = {int: int, float: float, str: str, bool: _parse_bool}.get(kind, str)

    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        return base(text)

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names it in errors
    return parse


def options_of(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are command-line options (``option=True``)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("option", True)]


def add_options(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    defaults: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
) -> None:
    """One command-line option per option field of the dataclass ``cls``.

    Options are added with ``default=SUPPRESS``: the parsed namespace holds only what the user
    gave, so a configuration file can sit between the defaults and the command line (see
    :func:`resolve`). The help shows each default (``defaults`` overrides the field's); fields
    named in ``exclude`` get no option.
    """
    defaults = dict(defaults or {})
    for field in options_of(cls):
        if field.name in exclude:
            continue
        meta = field.metadata
        default = defaults.get(field.name, _default_of(field))
        flag = option_name(field)
        kind, optional = _base_type(field, cls)
        text = meta.get("help", "")
        if "parse" in meta:
            parser.add_argument(
                flag,
                dest=field.name,
                action="append",
                default=argparse.SUPPRESS,
                metavar=meta.get("metavar", "VALUE"),
                help=f"{text} (repeatable; default: {default or 'none'})",
            )
        elif kind is bool and flag.startswith("--no-"):
            parser.add_argument(
                flag,
                dest=field.name,
                action="store_false",
                default=argparse.SUPPRESS,
                help=f"{text} (default: on; this option switches it off)",
            )
        elif kind is bool and default is False:
            parser.add_argument(
                flag,
                dest=field.name,
                action="store_true",
                default=argparse.SUPPRESS,
                help=f"{text} (default: off)",
            )
        else:
            shown = "none" if default is None else default
            parser.add_argument(
                flag,
                dest=field.name,
                type=_scalar_parser(kind, optional),
                default=argparse.SUPPRESS,
                metavar=meta.get("metavar"),
                help=f"{text} (default: {shown})" if "default" not in text else text,
            )


def given(namespace: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The option values the user gave on the command line (parsed by :func:`add_options`)."""
    values = {}
    for field in options_of(cls):
        if not hasattr(namespace, field.name):
            continue
        value = getattr(namespace, field.name)
        if "parse" in field.metadata:
            try:
                value = field.metadata["parse"](value)
            except ValueError as err:
                raise UsageError(f"{option_name(field)} {err}") from None
        values[field.name] = value
    return values


#: the largest integer a result file stores (its attributes are 64-bit integers)
INT64_MAX = 2**63 - 1
#: what a path to a configuration file may be instead of a regular file, in words
_NOT_REGULAR = {
    stat.S_ISFIFO: "a named pipe",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def read_toml(path: str | Path, option: str = "--config") -> dict[str, Any]:
    """The table of a TOML configuration file; UsageError naming the file and the problem.

    Only a regular file is opened (a named pipe would block the command forever), and only
    UTF-8 text (TOML's encoding) is read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{option} {path}: is a folder, expected a TOML file")
    for test, what in _NOT_REGULAR.items():
        if test(mode):
            raise UsageError(f"{option} {path}: is {what}, expected a TOML file")
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{option} {path}: not a TOML file (byte {err.object[err.start]:#04x} at offset "
            f"{err.start} is not UTF-8 text)"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{option} {path}: not valid TOML ({err})") from None
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot read it ({err.strerror})") from None


_TOML_KINDS = {int: "an integer", float: "a number", str: "a text", bool: "true or false"}


def from_mapping(cls: type, values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Option values from a mapping (a TOML table), checked against the fields of ``cls``.

    Keys are field names (``batch_size``) or option names (``batch-size``); an unknown key or a
    value of the wrong type (true or false where a number is expected, a text where a table is)
    is a UsageError naming ``source``, the key and the value.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in fields:
            allowed = ", ".join(f.name for f in options_of(cls))
            raise UsageError(f"{source}: unknown option {key!r} (allowed: {allowed})")
        kind, optional = _base_type(fields[name], cls)
        wrong = f"{source}: option {key!r} = {_toml_value(value)} is not allowed: expected"
        if value == "none" and optional:
            value = None
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif kind in _TOML_KINDS and (
            not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
        ):
            raise UsageError(f"{wrong} {_TOML_KINDS[kind]}")
        elif kind is dict and not isinstance(value, Mapping):
            raise UsageError(f"{wrong} a table, e.g. {key} = {{ name = 1.0 }}")
        elif kind in (list, tuple) and not isinstance(value, list):
            raise UsageError(f"{wrong} an array, e.g. {key} = [1, 2]")
        out[name] = value
    return out


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """``cls(**values)``, a ParameterError from its checks turned into a UsageError."""
    try:
        return cls(**values)
    except ParameterError as err:
        raise UsageError(str(err)) from None


def resolve(
    cls: type,
    namespace: argparse.Namespace,
    config: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    source: str = "--config",
) -> Any:
    """The instance of ``cls`` from defaults, then the configuration file, then the command line."""
    values = dict(defaults or {})
    values.update(from_mapping(cls, config or {}, source))
    values.update(given(namespace, cls))
    return build(cls, values)


def _toml_value(value: Any) -> str:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar: its Python value (repr would be np.float64(...))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
        return repr(value)
    if value is None:
        return '"none"'
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def to_toml(values: Mapping[str, Any], header: Iterable[str] = ()) -> str:
    """A flat TOML document of ``values`` (comments from ``header`` first); :func:`read_toml`
    reads it back to the same values (None is written as "none")."""
    lines = [f"# {line}" for line in header]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def resume_conflicts(saved: Mapping[str, Any], current: Any) -> list[str]:
    """Options of ``current`` (a dataclass instance) whose value differs from ``saved`` and that
    are not ``resume_free``: "name: saved -> current" texts."""
    out = []
    for field in dataclasses.fields(current):
        if field.metadata.get("resume_free"):
            continue
        value = getattr(current, field.name)
        before = saved.get(field.name, dataclasses.MISSING)
        if before != value:
            shown = "absent" if before is dataclasses.MISSING else repr(before)
            out.append(f"{field.name}={shown} in the saved run, {value!r} now")
    return out
