"""Parameter grids of a sweep: ``--grid eta=0:0.3:61 --grid alpha_p=0.5,1,2,4 --grid seed=0:4``.

One axis per swept parameter, in the order given; the points are the Cartesian product, numbered
in C order (the last axis fastest). An axis is written ``name=a:b:n`` (n evenly spaced numbers
from a to b, both included), ``name=a:b`` for an integer parameter (a, a+1, ..., b, both
included) or ``name=v1,v2,...`` (the values as listed).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from symbolic.common.options import ParameterError

#: parameters that set the shape of the result (the mode axis) and cannot be swept
UNSWEEPABLE = ("dim",)
#: at most this many values on one axis (the whole grid is then sized by the sweep's memory
#: estimate); checked before any value is made
MAX_AXIS = 10_000_000


def _kind(field: dataclasses.Field) -> type:
    name = field.type if isinstance(field.type, str) else field.type.__name__
    return {"int": int, "float": float, "str": str, "bool": bool}[name]


def _parse_value(text: str, kind: type, name: str) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        return kind(text)
    except ValueError:
        raise ParameterError(
            f"--grid {name}: {text!r} is not allowed: a value of type {kind.__name__}"
        ) from None


def parse_axis(spec: str, params_cls: type) -> tuple[str, np.ndarray]:
    """(name, values) of one ``--grid`` option for the parameter dataclass ``params_cls``."""
    name, sep, text = spec.partition("=")
    name = name.strip().replace("-", "_")
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    if not sep or not text:
        raise ParameterError(f"--grid {spec!r} is not allowed: write NAME=a:b:n or NAME=v1,v2,...")
    if name not in fields:
        raise ParameterError(
            f"--grid {name}: no such parameter; allowed: {', '.join(n for n in fields)}"
        )
    if name in UNSWEEPABLE:
        raise ParameterError(f"--grid {name}: cannot be swept (it sets the size of the mode axis)")
    kind = _kind(fields[name])
    parts = text.split(":")
    if len(parts) == 1:
        _check_count(name, text, text.count(",") + 1)
        values = [_parse_value(v.strip(), kind, name) for v in text.split(",")]
    elif kind is int and len(parts) == 2:
        lo, hi = (_parse_value(v, int, name) for v in parts)
        if hi < lo:
            raise ParameterError(f"--grid {name}={text}: is not allowed: need a <= b in a:b")
        _check_count(name, text, hi - lo + 1)
        values = np.arange(lo, hi + 1)
    elif kind is float and len(parts) == 3:
        lo, hi = (_parse_value(v, float, name) for v in parts[:2])
        n = _parse_value(parts[2], int, name)
        if n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ParameterError(
                f"--grid {name}={text} is not allowed: a:b:n needs finite a, b and n >= 1"
            )
        _check_count(name, text, n)
        values = np.linspace(lo, hi, n)
    else:
        form = "a:b (integers a..b)" if kind is int else "a:b:n" if kind is float else "v1,v2"
        raise ParameterError(f"--grid {name}={text} is not allowed: write {form} or v1,v2,...")
    values = np.asarray(values)
    if np.unique(values).size != values.size:
        raise ParameterError(f"--grid {name}={text} is not allowed: repeated values")
    return name, values


def _check_count(name: str, text: str, n: int) -> None:
    if n > MAX_AXIS:
        raise ParameterError(
            f"--grid {name}={text} is not allowed: {n} values, at most {MAX_AXIS:,} per axis"
        )


@dataclasses.dataclass(frozen=True)
class Grid:
    """Named axes; ``points()`` yields one dict of parameter values per grid point."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @classmethod
    def parse(cls, specs: list[str], params_cls: type) -> Grid:
        axes = [parse_axis(spec, params_cls) for spec in specs]
        names = [n for n, _ in axes]
        for n in names:
            if names.count(n) > 1:
                raise ParameterError(f"--grid {n}: given more than once")
        return cls(tuple(names), tuple(v for _, v in axes))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(v.size for v in self.values)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def columns(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The value of every swept parameter at the flat point indices ``indices``."""
        multi = np.unravel_index(indices, self.shape)
        return {n: v[i] for n, v, i in zip(self.names, self.values, multi, strict=True)}

    def point(self, index: int) -> dict[str, Any]:
        """The parameter values of point ``index`` as Python scalars."""
        return {n: col[0].item() for n, col in self.columns(np.array([index])).items()}

    def points(self) -> Iterator[dict[str, Any]]:
        for i in range(self.size):
            yield self.point(i)

    def describe(self) -> list[list[Any]]:
        """A JSON-storable description: [[name, [values...]], ...]."""
        return [[n, v.tolist()] for n, v in zip(self.names, self.values, strict=True)]
