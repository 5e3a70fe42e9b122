"""The sympy back end of :mod:`symbolic.ops`, imported on first use (sympy loads slowly).

:func:`symbolic.ops.ops_for` imports this module only when it is handed numpy object arrays, so
that ``import symbolic.losses`` (training, the dynamics models) does not import sympy.

- :class:`SympyOps`: numpy object arrays of sympy expressions, a sympy expression comes out;
  constants are exact rationals (:func:`exact`) and ``stop_gradient`` is :class:`StopGradient`,
  a sympy function whose derivative is 0;
- :func:`strip_stop_gradient`: sg(x) replaced by x, for evaluation after differentiation.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from symbolic.ops import NumpyOps, composed_standardize


class StopGradient(sp.Function):
    """sg(x): the value of x, with derivative 0 (sympy's stop-gradient).

    ``diff`` treats sg(x) as a constant; :func:`strip_stop_gradient` replaces sg(x) by x once the
    derivative is taken, so that the expression can be evaluated.
    """

    @classmethod
    def eval(cls, arg):
        if arg.is_Number:
            return arg
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _latex(self, printer):
        return r"\operatorname{sg}\left(" + printer._print(self.args[0]) + r"\right)"


def strip_stop_gradient(expr: sp.Basic) -> sp.Basic:
    """``expr`` with every sg(x) replaced by x (for evaluation after differentiation)."""
    return expr.replace(lambda e: isinstance(e, StopGradient), lambda e: e.args[0])


def exact(value: Any) -> sp.Expr:
    """An exact sympy number for a Python/numpy number (floats by their shortest decimal form)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool | np.bool_):
        return sp.Integer(int(value))
    if isinstance(value, int | np.integer):
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Rational(repr(float(value)))


def _elementwise(fn):
    ufunc = np.frompyfunc(fn, 1, 1)

    def apply(x):
        if isinstance(x, np.ndarray):
            out = ufunc(x)
            return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)
        return fn(x)

    return apply


class SympyOps(NumpyOps):
    """sympy back end: numpy object arrays of sympy expressions, exact rational constants.

    The shape operations (matmul, T, reshape, concat) are numpy's, inherited; every operation on
    the entries is overridden.
    """

    name = "sympy"

    _exp = staticmethod(_elementwise(sp.exp))
    _log = staticmethod(_elementwise(sp.log))
    _sqrt = staticmethod(_elementwise(sp.sqrt))
    _relu = staticmethod(_elementwise(lambda a: sp.Max(sp.S.Zero, a)))
    _sg = staticmethod(_elementwise(StopGradient))

    def const(self, value):
        return exact(value)

    def csqrt(self, value):
        return sp.sqrt(exact(value))

    def sum(self, x, axis=None, keepdims=False):
        out = np.sum(np.asarray(x, dtype=object), axis=axis, keepdims=keepdims)
        return sp.sympify(out) if not isinstance(out, np.ndarray) else out

    def mean(self, x, axis=None, keepdims=False):
        x = np.asarray(x, dtype=object)
        count = x.size if axis is None else x.shape[axis]
        return self.sum(x, axis=axis, keepdims=keepdims) / sp.Integer(count)

    def exp(self, x):
        return self._exp(x)

    def log(self, x):
        return self._log(x)

    def sqrt(self, x):
        return self._sqrt(x)

    def relu(self, x):
        return self._relu(x)

    def diagonal(self, x, offset=0):
        return np.diagonal(x, offset, axis1=-2, axis2=-1).copy()

    def eye(self, n):
        return np.eye(n, dtype=bool)

    def offdiag(self, x):
        out = np.array(x, dtype=object, copy=True)
        idx = np.arange(out.shape[-1])
        out[..., idx, idx] = sp.S.Zero
        return out

    def logsumexp(self, x, axis, where=None):
        e = self.exp(x)
        if where is not None:
            e = np.where(where, e, sp.S.Zero)
        return self.log(self.sum(e, axis=axis))

    def standardize(self, z, eps, unbiased):
        return composed_standardize(self, z, eps, unbiased)

    def normalize(self, x, axis=-1):
        return x / self.sqrt(self.sum(x * x, axis=axis, keepdims=True))

    def stop_gradient(self, x):
        return self._sg(x)


SYMPY = SympyOps()
