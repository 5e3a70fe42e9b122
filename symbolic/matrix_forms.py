"""Closed matrix forms of the gradients that have one, checked against the entry-wise result.

Each :class:`MatrixForm` is a gradient written by hand as sympy matrix expressions (displayed as
text or LaTeX) plus a numerical check: the expressions are evaluated at a random float64 point
(matrix symbols replaced by explicit matrices) and compared with the entry-by-entry sympy gradient
of :mod:`symbolic.derivation` at the same point.

Where sympy's own matrix calculus (``Derivative(L, X).doit()`` on the loss written with matrix
symbols) gives an answer, it is evaluated the same way and reported as agreeing or not. It
silently drops terms of sums of traces (it loses linear BYOL's weight decay; sympy issues 26585,
26561, 27406) and cannot handle masks or Liu et al.'s covariance term; it is shown only with that
verdict.

Forms: MSE (the invariance loss); linear BYOL, dL/dW_p = (W_p F1 - F2) F1^T + eta W_p and
dL/dF1 = W_p^T (W_p F1 - F2) + eta F1, and the time derivative of the conservation law
(docs/theory.md (D4)) under Tian's flow; Liu et al. eqs. 17/19; the spectral contrastive loss;
Garrido's L_c and L_nc.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from symbolic import losses
from symbolic.derivation import derive, relative_error, sample_point

N, D = sp.symbols("N d", integer=True, positive=True)
ETA, ALPHA, C_INV, C_COV = sp.symbols("eta alpha_p c_inv c_cov", positive=True)
#: Hyperparameter name -> the scalar symbol used in the displayed forms.
SCALARS = {"eta": ETA, "c_inv": C_INV, "c_cov": C_COV}

Pair = Callable[[int, int, dict, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass
class MatrixForm:
    """A closed form: ``label = text`` (and LaTeX), with ``pair(n, d, hp, rng)`` returning
    (closed form, entry-wise result) at a random point; ``sympy_pair`` does the same for sympy's
    own matrix calculus, or is None where that was not attempted."""

    loss: str
    label: str
    text: str
    latex: str
    note: str
    pair: Pair
    sympy_pair: Pair | None = None


@dataclasses.dataclass(frozen=True)
class FormCheck:
    form: MatrixForm
    error: float  # largest relative error of the closed form against the entry-wise gradient
    sympy_calculus: str  # "agrees (...)", "DISAGREES (...)", "fails (...)" or "not attempted"


def display(label: str, latex_label: str, *parts: tuple[str, Any, str]) -> tuple[str, str]:
    """Text and LaTeX of ``label = part + part ...``; each part is (prefix, expression, suffix)
    with prefix/suffix given as (text, latex) pairs joined by '|'."""
    text, tex = [], []
    for prefix, expr, suffix in parts:
        p_text, p_tex = prefix.split("|") if prefix else ("", "")
        s_text, s_tex = suffix.split("|") if suffix else ("", "")
        text.append(f"{p_text}{sp.sstr(expr)}{s_text}")
        tex.append(f"{p_tex}{sp.latex(expr)}{s_tex}")
    return f"{label} = {' + '.join(text)}", f"{latex_label} = {' + '.join(tex)}"


def evaluate(expr: Any, values: dict[Any, Any]) -> np.ndarray:
    """Float value of a matrix expression with every symbol replaced by a number or matrix."""
    replace = {
        k: sp.ImmutableMatrix(v) if isinstance(k, sp.MatrixSymbol) else sp.Float(float(v), 20)
        for k, v in values.items()
    }
    out = expr.xreplace(replace).doit()
    if hasattr(out, "as_explicit"):
        out = out.as_explicit()
    return np.array(sp.Matrix(out).evalf(), dtype=float)


def scalar_values(loss_name: str, hp: dict[str, Any], n: int, d: int) -> dict[Any, float]:
    """Values of N, d and the hyperparameter symbols (defaults filled in)."""
    values: dict[Any, float] = {N: n, D: d}
    for name, value in {**losses.get(loss_name).defaults, **hp}.items():
        if name in SCALARS:
            values[SCALARS[name]] = float(value)
    return values


def _sympy_derivative_pair(matrix_loss, wrt, values_of, which, convert=lambda v, n: v) -> Pair:
    """sympy's Derivative(matrix_loss, wrt).doit() against the entry-wise gradient ``which``."""

    def pair(n, d, hp, rng):
        arrays, grads, values = values_of(n, d, hp, rng)
        derived = sp.Derivative(matrix_loss, wrt).doit()
        return convert(evaluate(derived, values), n), grads[which]

    return pair


def _closed_pair(closed, values_of, which, convert=lambda v, n: v) -> Pair:
    def pair(n, d, hp, rng):
        arrays, grads, values = values_of(n, d, hp, rng)
        return convert(evaluate(closed, values), n), grads[which]

    return pair


def _transposed(value, n):
    """dL/df (rows are samples) from dL/dF with F = f^T / sqrt(N)."""
    return value.T / np.sqrt(n)


def _gradient_form(
    name, label, sym, closed, note, matrix_loss, values_of, which, convert=lambda v, n: v
) -> MatrixForm:
    """The form ``label = closed`` of dL/d(sym), checked two ways against the entry-wise
    gradient ``which``: the closed form evaluated, and sympy's derivative of ``matrix_loss``."""
    text, tex = display(
        label, rf"\frac{{\partial L}}{{\partial {sp.latex(sym)}}}", ("", closed, "")
    )
    return MatrixForm(
        name,
        label,
        text,
        tex,
        note,
        _closed_pair(closed, values_of, which, convert),
        _sympy_derivative_pair(matrix_loss, sym, values_of, which, convert),
    )


# --------------------------------------------------------------------------- MSE (invariance)


def _invariance_forms(name: str, hp: dict[str, Any]) -> list[MatrixForm]:
    z1, z2 = sp.MatrixSymbol("Z_1", N, D), sp.MatrixSymbol("Z_2", N, D)
    matrix_loss = sp.Trace((z1 - z2).T * (z1 - z2)) / N

    def values_of(n, d, hp, rng):
        arrays = sample_point(losses.get(name), n, d, rng)
        grads = derive(name, n, d, **hp).gradient(*arrays)
        return arrays, grads, {z1: arrays[0], z2: arrays[1], **scalar_values(name, hp, n, d)}

    note = "Z_v: the (N, d) embeddings of view v"
    pairs = [(z1, 2 * (z1 - z2) / N), (z2, -2 * (z1 - z2) / N)]
    return [
        _gradient_form(name, f"dL/dz{k + 1}", sym, closed, note, matrix_loss, values_of, k)
        for k, (sym, closed) in enumerate(pairs)
    ]


# --------------------------------------------------------------------------- linear BYOL


def _linear_byol_forms(name: str, hp: dict[str, Any]) -> list[MatrixForm]:
    wp = sp.MatrixSymbol("W_p", D, D)
    f1, f2 = sp.MatrixSymbol("F_1", D, N), sp.MatrixSymbol("F_2", D, N)
    residual = wp * f1 - f2
    matrix_loss = sp.Trace(residual.T * residual) / 2 + ETA / 2 * (
        sp.Trace(wp.T * wp) + sp.Trace(f1.T * f1)
    )
    note = "F_v = f_v^T / sqrt(N) (d x N), F_2 under stop-gradient; dL/df1 = (dL/dF_1)^T / sqrt(N)"

    def values_of(n, d, hp, rng):
        arrays = sample_point(losses.get(name), n, d, rng)
        grads = derive(name, n, d, **hp).gradient(*arrays)
        root = np.sqrt(n)
        values = {wp: arrays[0], f1: arrays[1].T / root, f2: arrays[2].T / root}
        return arrays, grads, {**values, **scalar_values(name, hp, n, d)}

    forms = [
        _gradient_form(
            name, "dL/dW_p", wp, residual * f1.T + ETA * wp, note, matrix_loss, values_of, 0
        ),
        _gradient_form(
            name,
            "dL/dF_1",
            f1,
            wp.T * residual + ETA * f1,
            note,
            matrix_loss,
            values_of,
            1,
            _transposed,
        ),
    ]
    forms.append(_conservation_form(name))
    return forms


def _conservation_form(name: str) -> MatrixForm:
    """d/dt (W W^T - W_p^T W_p / alpha_p) = -2 eta (W W^T - W_p^T W_p / alpha_p) (Tian Thm 1).

    Checked with Tian's flow built from the entry-wise gradient of linear BYOL without decay at
    f1 = x1 W^T, f2 = x2 W_a^T (random data x1, x2 and target W_a):
    dW_p/dt = -alpha_p dL/dW_p - eta W_p, dW/dt = -(dL/df1)^T x1 - eta W.
    """
    w = sp.MatrixSymbol("W", D, sp.Symbol("n_1", integer=True, positive=True))
    wp = sp.MatrixSymbol("W_p", D, D)
    conserved = w * w.T - wp.T * wp / ALPHA
    closed = -2 * ETA * conserved

    def pair(n, d, hp, rng):
        alpha, eta, n1 = 2.5, 0.3, d + 1
        w_v, wa_v, wp_v = (rng.normal(size=s) for s in ((d, n1), (d, n1), (d, d)))
        x1, x2 = rng.normal(size=(n, n1)), rng.normal(size=(n, n1))
        g_wp, g_f1, _ = derive(name, n, d, eta=0.0).gradient(wp_v, x1 @ w_v.T, x2 @ wa_v.T)
        dwp = -alpha * g_wp - eta * wp_v
        dw = -g_f1.T @ x1 - eta * w_v
        entrywise = dw @ w_v.T + w_v @ dw.T - (dwp.T @ wp_v + wp_v.T @ dwp) / alpha
        return evaluate(closed, {w: w_v, wp: wp_v, ALPHA: alpha, ETA: eta}), entrywise

    label = "d/dt (W W^T - W_p^T W_p / alpha_p)"
    text, tex = display(
        label, r"\frac{d}{dt}\left(W W^{T} - \alpha_p^{-1} W_p^{T} W_p\right)", ("", closed, "")
    )
    note = (
        "Tian's flow (docs/theory.md (D1)) dW_p/dt = -alpha_p dL/dW_p - eta W_p, "
        "dW/dt = -dL/dW - eta W for any data and any target W_a: the conservation law "
        "W W^T - W_p^T W_p / alpha_p = exp(-2 eta t) C"
    )
    return MatrixForm(name, label, text, tex, note, pair, None)


# --------------------------------------------------------------------------- Liu et al.


def _liu_forms(name: str, hp: dict[str, Any]) -> list[MatrixForm]:
    loss = losses.get(name)
    k = int({**loss.defaults, **hp}["k"])
    plain = {**hp, "standardize": False}
    wp = sp.MatrixSymbol("W_p", D, D)
    f1, f2 = sp.MatrixSymbol("F_1", D, N), sp.MatrixSymbol("F_2", D, N)
    part = sp.MatrixSymbol("F_{1,i}", D, N / k)
    e_i = sp.MatrixSymbol("E_i", D, D)
    residual = wp * f1 - f2
    gap = wp.T * wp - wp * part * part.T * wp.T
    block_wp = wp * e_i - e_i * wp * part * part.T
    block_f1 = wp.T * e_i * wp * part
    note = (
        f"k={k}; F_v = z_v^T / sqrt(N) (the standardised z when standardize); F_{{1,i}} = "
        "sqrt(k) x the i-th block of N/k columns of F_1; E_i = W_p^T W_p - W_p F_{1,i} "
        "F_{1,i}^T W_p^T; dL/dz_v = (dL/dF_v)^T / sqrt(N); checked on standardize=False"
    )

    def values_of(n, d, hp_, rng):
        arrays = sample_point(loss, n, d, rng)
        grads = derive(name, n, d, **plain).gradient(*arrays)
        root = np.sqrt(n)
        values = {wp: arrays[0], f1: arrays[1].T / root, f2: arrays[2].T / root}
        return arrays, grads, {**values, **scalar_values(name, plain, n, d)}

    def blocks(arrays, values, n):
        size = n // k
        for i in range(k):
            vals = {**values, part: arrays[1][i * size : (i + 1) * size].T / np.sqrt(size)}
            vals[e_i] = evaluate(gap, vals)
            yield vals

    def pair_wp(n, d, hp_, rng):
        arrays, grads, values = values_of(n, d, hp_, rng)
        total = evaluate(2 * C_INV * residual * f1.T, values)
        for vals in blocks(arrays, values, n):
            total = total + evaluate(4 * C_COV / D * block_wp, vals)
        return total, grads[0]

    def pair_f1(n, d, hp_, rng):
        arrays, grads, values = values_of(n, d, hp_, rng)
        side = [
            evaluate(-4 * sp.sqrt(k) * C_COV / D * block_f1, v) for v in blocks(arrays, values, n)
        ]
        total = evaluate(2 * C_INV * wp.T * residual, values) + np.concatenate(side, axis=1)
        return _transposed(total, n), grads[1]

    sympy_pair = None
    if k == 1:
        whole = wp.T * wp - wp * f1 * f1.T * wp.T
        matrix_loss = C_INV * sp.Trace(residual.T * residual) + C_COV / D * sp.Trace(
            whole.T * whole
        )
        sympy_pair = _sympy_derivative_pair(matrix_loss, wp, values_of, 0)

    text_wp, tex_wp = display(
        "dL/dW_p",
        r"\frac{\partial L}{\partial W_p}",
        ("", 2 * C_INV * residual * f1.T, ""),
        ("sum_i [|\\sum_{i=1}^{k}\\left[", 4 * C_COV / D * block_wp, "]|\\right]"),
    )
    text_f1, tex_f1 = display(
        "dL/dF_1",
        r"\frac{\partial L}{\partial F_1}",
        ("", 2 * C_INV * wp.T * residual, ""),
        (
            "[block_i]_{i=1..k} with block_i = |\\left[",
            -4 * sp.sqrt(k) * C_COV / D * block_f1,
            "|\\right]_{i=1}^{k}\\ \\text{(blocks side by side)}",
        ),
    )
    closed_f2 = -2 * C_INV * residual
    text_f2, tex_f2 = display("dL/dF_2", r"\frac{\partial L}{\partial F_2}", ("", closed_f2, ""))
    return [
        MatrixForm(name, "dL/dW_p", text_wp, tex_wp, note, pair_wp, sympy_pair),
        MatrixForm(name, "dL/dF_1", text_f1, tex_f1, note, pair_f1, None),
        MatrixForm(
            name,
            "dL/dF_2",
            text_f2,
            tex_f2,
            note,
            _closed_pair(closed_f2, values_of, 2, _transposed),
            None,
        ),
    ]


# --------------------------------------------------------------------------- spectral, Garrido


def _spectral_forms(name: str, hp: dict[str, Any]) -> list[MatrixForm]:
    z1, z2 = sp.MatrixSymbol("Z_1", N, D), sp.MatrixSymbol("Z_2", N, D)
    mask = sp.MatrixSymbol("M", N, N)
    gram = sp.HadamardProduct(z1 * z2.T, mask)
    closed = [
        -2 * z2 / N + 2 / (N * (N - 1)) * gram * z2,
        -2 * z1 / N + 2 / (N * (N - 1)) * gram.T * z1,
    ]
    note = "M = 1 1^T - I (off-diagonal mask), o the entry-wise product, Z_v the (N, d) embeddings"

    def values_of(n, d, hp, rng):
        arrays = sample_point(losses.get(name), n, d, rng)
        grads = derive(name, n, d, **hp).gradient(*arrays)
        values = {z1: arrays[0], z2: arrays[1], mask: np.ones((n, n)) - np.eye(n)}
        return arrays, grads, {**values, **scalar_values(name, hp, n, d)}

    off = sp.HadamardProduct(z1 * z2.T, mask)
    matrix_loss = -2 * sp.Trace(z1 * z2.T) / N + sp.Trace(off.T * off) / (N * (N - 1))
    return [
        _gradient_form(name, f"dL/dz{k + 1}", sym, closed[k], note, matrix_loss, values_of, k)
        for k, sym in enumerate((z1, z2))
    ]


def _garrido_forms(name: str, hp: dict[str, Any]) -> list[MatrixForm]:
    k = sp.MatrixSymbol("K", D, N)
    if name == "garrido_lc":
        mask = sp.MatrixSymbol("M", N, N)
        closed = 4 * k * sp.HadamardProduct(k.T * k, mask)
        off = sp.HadamardProduct(k.T * k, mask)
        note = "K (d, N), a column per sample; M = 1 1^T - I (N x N off-diagonal mask)"
    else:
        mask = sp.MatrixSymbol("M", D, D)
        closed = 4 * sp.HadamardProduct(k * k.T, mask) * k
        off = sp.HadamardProduct(k * k.T, mask)
        note = "K (d, N), a column per sample; M = 1 1^T - I (d x d off-diagonal mask)"

    def values_of(n, d, hp, rng):
        arrays = sample_point(losses.get(name), n, d, rng)
        grads = derive(name, n, d, **hp).gradient(*arrays)
        size = n if name == "garrido_lc" else d
        values = {k: arrays[0], mask: np.ones((size, size)) - np.eye(size)}
        return arrays, grads, {**values, **scalar_values(name, hp, n, d)}

    text, tex = display("dL/dK", r"\frac{\partial L}{\partial K}", ("", closed, ""))
    sympy_pair = _sympy_derivative_pair(sp.Trace(off.T * off), k, values_of, 0)
    return [
        MatrixForm(name, "dL/dK", text, tex, note, _closed_pair(closed, values_of, 0), sympy_pair)
    ]


_BUILDERS = {
    "invariance": _invariance_forms,
    "linear_byol": _linear_byol_forms,
    "liu": _liu_forms,
    "spectral": _spectral_forms,
    "garrido_lc": _garrido_forms,
    "garrido_lnc": _garrido_forms,
}


def forms(name: str, **hyperparameters: Any) -> list[MatrixForm]:
    """The closed forms of loss ``name`` (empty when it has none)."""
    builder = _BUILDERS.get(name)
    return builder(name, hyperparameters) if builder else []


def check_forms(
    name: str, n: int, d: int, points: int = 2, seed: int = 0, **hyperparameters: Any
) -> list[FormCheck]:
    """Largest relative error of each closed form (and of sympy's matrix calculus) over
    ``points`` random points."""
    out = []
    for form in forms(name, **hyperparameters):
        rng = np.random.default_rng(seed)
        error = max(
            relative_error([c], [e])
            for c, e in (form.pair(n, d, hyperparameters, rng) for _ in range(points))
        )
        out.append(FormCheck(form, error, _sympy_verdict(form, n, d, hyperparameters, seed)))
    return out


def _sympy_verdict(form: MatrixForm, n: int, d: int, hp: dict[str, Any], seed: int) -> str:
    if form.sympy_pair is None:
        return "not attempted"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found, entrywise = form.sympy_pair(n, d, hp, np.random.default_rng(seed))
    except Exception as err:  # sympy raises assorted errors on what it cannot differentiate
        return f"fails ({type(err).__name__}: {str(err) or 'no message'})"
    error = relative_error([found], [entrywise])
    return f"{'agrees' if error < 1e-10 else 'DISAGREES'} (max rel err {error:.1e})"
