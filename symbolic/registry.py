"""The Loss object and the registry behind :func:`symbolic.losses.get` / :func:`names`.

A :class:`Loss` wraps a function ``fn(ops, *arrays, **hyperparameters)`` written against the
namespace of :mod:`symbolic.ops`. Calling it checks the hyperparameters (names, types, values)
and the array shapes, fills in the official defaults, picks the back end from the array types and
returns a numpy scalar, a 0-d torch tensor or a sympy expression.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from symbolic.common.options import param
from symbolic.ops import is_sympy, ops_for


@dataclasses.dataclass(frozen=True)
class Hyper:
    """One hyperparameter: its default (the official value), its kind and the allowed values."""

    name: str
    default: Any
    kind: str  # "real", "int" or "bool"
    doc: str
    minimum: float | None = None  # inclusive lower bound
    positive: bool = False  # strictly > 0

    @property
    def allowed(self) -> str:
        """The allowed values in words."""
        if self.kind == "bool":
            return "True or False"
        what = "an integer" if self.kind == "int" else "a finite real number"
        if self.positive:
            return f"{what} > 0"
        if self.minimum is not None:
            return f"{what} >= {self.minimum:g}"
        return what


def real(name, default, doc, minimum=None, positive=False) -> Hyper:
    return Hyper(name, default, "real", doc, minimum, positive)


def integer(name, default, doc, minimum=None) -> Hyper:
    return Hyper(name, default, "int", doc, minimum)


def boolean(name, default, doc) -> Hyper:
    return Hyper(name, default, "bool", doc)


def check_hyper(loss_name: str, hyper: Hyper, value: Any, symbolic: bool) -> Any:
    """The value to pass on; TypeError/ValueError naming the hyperparameter when it is bad."""
    label = f"{loss_name}: hyperparameter {hyper.name}={value!r}"
    if hyper.kind == "bool":
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{label} has the wrong type: expected {hyper.allowed}")
        return bool(value)
    if is_sympy(value):
        if not symbolic:
            raise TypeError(f"{label} is a sympy expression: allowed only with sympy arrays")
        if hyper.kind == "int" and not value.is_Integer:
            raise TypeError(f"{label} has the wrong type: expected {hyper.allowed}")
        if value.is_number and value.is_real is not False:
            _check_range(label, hyper, float(value))
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{label} has the wrong type: expected {hyper.allowed}")
    if hyper.kind == "int":
        if not isinstance(value, int | np.integer):
            raise TypeError(f"{label} has the wrong type: expected {hyper.allowed}")
        _check_range(label, hyper, int(value))
        return int(value)
    if not isinstance(value, int | float | np.integer | np.floating | Fraction):
        raise TypeError(f"{label} has the wrong type: expected {hyper.allowed}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{label} is not allowed: expected {hyper.allowed}")
    _check_range(label, hyper, float(value))
    if symbolic:
        from symbolic.sympy_backend import exact

        return exact(value)
    return float(value) if isinstance(value, Fraction) else value


def _check_range(label: str, hyper: Hyper, value: float) -> None:
    if hyper.positive and not value > 0:
        raise ValueError(f"{label} is not allowed: expected {hyper.allowed}")
    if hyper.minimum is not None and not value >= hyper.minimum:
        raise ValueError(f"{label} is not allowed: expected {hyper.allowed}")


def _parse_text(hyper: Hyper, text: str) -> Any:
    """A hyperparameter value from its text, by kind ("real", "int", "bool")."""
    try:
        if hyper.kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return int(text) if hyper.kind == "int" else float(text)
    except ValueError:
        expected = {"bool": "true or false", "int": "an integer"}.get(hyper.kind, "a real number")
        raise ValueError(f"{hyper.name}={text!r}: expected {expected}") from None


def split_assignments(items: list[str]) -> dict[str, str]:
    """``["k=8", "c_cov=1"]`` -> ``{"k": "8", "c_cov": "1"}``; ValueError for a text without '='."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r}: expected NAME=VALUE")
        out[name.strip()] = text.strip()
    return out


def loss_params_option(doc: str) -> Any:
    """The ``--loss-param NAME=VALUE`` option (repeatable) of an options dataclass: one flag and
    one syntax for a loss hyperparameter in every command; the values are checked by
    :meth:`Loss.parse`."""
    return param({}, doc, flag="--loss-param", metavar="NAME=VALUE", parse=split_assignments)


class Loss:
    """A loss defined once, evaluated with the numpy, torch or sympy back end.

    ``loss(*arrays, **hyperparameters)``; attributes ``name``, ``args`` (argument roles),
    ``shapes`` (symbolic shape of each argument: "N" samples, "d" features, "K" queue length),
    ``defaults`` (official hyperparameters), ``hypers``, ``formula`` (LaTeX), ``source``,
    ``convention``, ``min_n`` (smallest batch), ``fn`` (the definition against the namespace).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        args: tuple[str, ...],
        shapes: tuple[tuple[str, str], ...],
        hypers: tuple[Hyper, ...],
        formula: str,
        source: str,
        convention: str,
        min_n: int = 1,
    ):
        self.fn = fn
        self.name = name
        self.args = tuple(args)
        self.shapes = tuple(shapes)
        self.hypers = {h.name: h for h in hypers}
        self.defaults = {h.name: h.default for h in hypers}
        self.formula = formula
        self.source = source
        self.convention = convention
        self.min_n = min_n
        self.summary = (fn.__doc__ or "").strip()
        self.__doc__ = self._docstring()

    def _docstring(self) -> str:
        lines = [self.summary, "", f"Formula: {self.formula}", "", f"Source: {self.source}", ""]
        lines += [f"Convention: {self.convention}", "", "Arguments:"]
        for arg, shape in zip(self.args, self.shapes, strict=True):
            lines.append(f"    {arg}: array of shape ({shape[0]}, {shape[1]})")
        if self.hypers:
            lines.append("Hyperparameters (defaults are the official values):")
            for h in self.hypers.values():
                lines.append(f"    {h.name}={h.default!r}: {h.doc} ({h.allowed})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"<Loss {self.name}({', '.join(self.args)}{', ' if hp else ''}{hp})>"

    def __call__(self, *arrays: Any, **hyperparameters: Any) -> Any:
        if len(arrays) != len(self.args):
            raise TypeError(
                f"{self.name} takes {len(self.args)} arrays ({', '.join(self.args)}), "
                f"got {len(arrays)}"
            )
        named = dict(zip(self.args, arrays, strict=True))
        ops = ops_for(named)
        hp = self.resolve(hyperparameters, symbolic=ops.name == "sympy")
        if ops.name == "numpy":
            arrays = tuple(
                a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64) for a in arrays
            )
        self.check_shapes(arrays)
        return self.fn(ops, *arrays, **hp)

    def resolve(self, hyperparameters: dict[str, Any], symbolic: bool = False) -> dict[str, Any]:
        """Defaults overridden by ``hyperparameters``, each checked (unknown names: ValueError)."""
        unknown = [k for k in hyperparameters if k not in self.hypers]
        if unknown:
            allowed = ", ".join(self.hypers) or "none"
            raise ValueError(
                f"{self.name}: unknown hyperparameter {unknown[0]!r} (allowed: {allowed})"
            )
        out = {}
        for name, hyper in self.hypers.items():
            value = hyperparameters.get(name, hyper.default)
            out[name] = check_hyper(self.name, hyper, value, symbolic)
        return out

    def parse(self, assignments: dict[str, Any]) -> dict[str, Any]:
        """Hyperparameter values from ``NAME=VALUE`` options: texts converted by their kind.

        The one parser of ``--loss-param`` for every command. ``assignments`` maps names to
        text ("0.1", "true") or to values already typed (from a TOML file), which pass through.
        ValueError "NAME=TEXT: expected a real number" / "unknown hyperparameter" otherwise;
        ranges are checked by :meth:`resolve`.
        """
        out = {}
        for name, value in assignments.items():
            hyper = self.hypers.get(name)
            if hyper is None:
                allowed = ", ".join(self.hypers) or "none"
                raise ValueError(f"{self.name} has no hyperparameter {name!r} (allowed: {allowed})")
            out[name] = value if not isinstance(value, str) else _parse_text(hyper, value)
        return out

    def check_shapes(self, arrays: tuple[Any, ...]) -> dict[str, int]:
        """The sizes of the symbolic dimensions; ValueError naming an inconsistent argument."""
        sizes: dict[str, int] = {}
        for arg, shape, array in zip(self.args, self.shapes, arrays, strict=True):
            actual = tuple(array.shape)
            if len(actual) != 2:
                raise ValueError(
                    f"{self.name}: argument {arg} has shape {actual}: expected 2 dimensions "
                    f"({shape[0]}, {shape[1]})"
                )
            for dim, size in zip(shape, actual, strict=True):
                if sizes.setdefault(dim, size) != size:
                    raise ValueError(
                        f"{self.name}: argument {arg} has shape {actual}: its {dim} must be "
                        f"{sizes[dim]} like the other arguments"
                    )
        if sizes.get("N", self.min_n) < self.min_n:
            raise ValueError(f"{self.name}: batch size N={sizes['N']} must be >= {self.min_n}")
        return sizes


_REGISTRY: dict[str, Loss] = {}


def register(**spec: Any) -> Callable[[Callable[..., Any]], Loss]:
    """Decorator: turn ``fn(ops, *arrays, **hp)`` into a registered :class:`Loss`."""

    def wrap(fn: Callable[..., Any]) -> Loss:
        loss = Loss(fn, **spec)
        if loss.name in _REGISTRY:
            raise ValueError(f"loss {loss.name!r} registered twice")
        _REGISTRY[loss.name] = loss
        return loss

    return wrap


def get(name: str) -> Loss:
    """The loss called ``name``; ValueError listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r} (known: {', '.join(_REGISTRY)})") from None


def names() -> list[str]:
    """Names of all registered losses, in definition order."""
    return list(_REGISTRY)


def hyper_param(loss: str, name: str, default: Any = dataclasses.MISSING, note: str = "") -> Any:
    """An options field (:func:`symbolic.common.options.param`) that sets hyperparameter ``name``
    of the loss ``loss``, declared by the loss: its meaning and bounds are the loss's, and so is
    its default unless ``default`` is given (a model's own setting; ``note`` says whose).

    The field remembers the hyperparameter it sets, so :func:`hyperparameters_of` hands the values
    to the loss under its names whatever the field is called (``var_eps`` sets VICReg's ``eps``).
    """
    hyper = get(loss).hypers[name]
    bounds: dict[str, Any] = {}
    if hyper.positive:
        bounds["above"] = 0
    elif hyper.minimum is not None:
        bounds["at_least"] = hyper.minimum
    doc = f"{hyper.doc} ({note})" if note else hyper.doc
    declared = param(hyper.default if default is dataclasses.MISSING else default, doc, **bounds)
    return dataclasses.field(
        default=declared.default, metadata={**declared.metadata, "loss_hyper": name}
    )


def hyperparameters_of(params: Any) -> dict[str, Any]:
    """The loss hyperparameters that the fields of the dataclass instance ``params`` made by
    :func:`hyper_param` set, under the loss's names."""
    return {
        field.metadata["loss_hyper"]: getattr(params, field.name)
        for field in dataclasses.fields(params)
        if "loss_hyper" in field.metadata
    }
