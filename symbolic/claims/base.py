"""What the claim modules share: :class:`Verdict`, the :func:`claim` registry, :func:`audit`.

Also :func:`decide` and the exact-arithmetic helpers that the computations use.

A claim is one function ``check(rng) -> Verdict`` in a family module, registered with
``@claim(id, title)``; the registry fills in the verdict's ``id`` and ``title``. :data:`CLAIMS`
lists the registered claims in id order (the order of docs/theory.md section 4), whatever order the
family modules are imported in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

AUDIT_VERDICTS = ("true", "false", "true_if")


@dataclasses.dataclass
class Verdict:
    """One audited claim. A claim function leaves ``id`` and ``title`` to its registration."""

    id: str = dataclasses.field(default="", kw_only=True)
    title: str = dataclasses.field(default="", kw_only=True)
    claim: str
    source: str
    verdict: str
    condition: str | None
    corrected_statement: str
    method: str
    evidence: dict[str, Any]
    formulas: dict[str, str] = dataclasses.field(default_factory=dict)
    formulas_latex: dict[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A registered claim: its id (a letter of docs/theory.md section 4), title, check function."""

    id: str
    title: str
    check: Callable[[np.random.Generator], Verdict]

    def __call__(self, rng: np.random.Generator) -> Verdict:
        verdict = dataclasses.replace(self.check(rng), id=self.id, title=self.title)
        if verdict.verdict not in AUDIT_VERDICTS:
            raise ValueError(
                f"claim {self.id!r}: verdict {verdict.verdict!r} not in {AUDIT_VERDICTS}"
            )
        return verdict


#: Claim id -> registered :class:`Claim`, in id order.
CLAIMS: dict[str, Claim] = {}


def claim(claim_id: str, title: str) -> Callable[[Callable[[np.random.Generator], Verdict]], Claim]:
    """Decorator: register ``check(rng) -> Verdict`` as the claim ``claim_id`` titled ``title``.

    The id is one character (:func:`audit` seeds each claim's generator with its code point);
    a second registration of an id is a ValueError naming both functions.
    """
    if not (isinstance(claim_id, str) and len(claim_id) == 1):
        raise ValueError(f"claim id {claim_id!r} must be a single character")

    def register(check: Callable[[np.random.Generator], Verdict]) -> Claim:
        if claim_id in CLAIMS:
            first = CLAIMS[claim_id].check
            raise ValueError(
                f"claim id {claim_id!r} registered twice: by {first.__module__}."
                f"{first.__qualname__} and by {check.__module__}.{check.__qualname__}"
            )
        registered = Claim(claim_id, title, check)
        ordered = sorted([*CLAIMS.items(), (claim_id, registered)])
        CLAIMS.clear()
        CLAIMS.update(ordered)
        return registered

    return register


def audit(ids: list[str] | None = None, seed: int = 0) -> list[Verdict]:
    """Run the claims ``ids`` (default: all), each with its own generator from ``seed``."""
    ids = list(CLAIMS) if ids is None else ids
    return [CLAIMS[claim_id](np.random.default_rng([seed, ord(claim_id)])) for claim_id in ids]


def decide(general: bool, conditional: bool) -> str:
    """The verdict from whether the stated formula holds in general / under the condition."""
    if general:
        return "true"
    return "true_if" if conditional else "false"


def formula_strings(**exprs: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The expressions as sympy strings and as LaTeX, for ``Verdict.formulas(_latex)``."""
    return {k: sp.sstr(v) for k, v in exprs.items()}, {k: sp.latex(v) for k, v in exprs.items()}


def is_zero(expr: sp.Expr) -> bool:
    """Exact zero test by expansion (no simplify)."""
    return sp.expand(expr) == 0


def sqrt_bases(expr: sp.Expr, marker: sp.Symbol) -> list[sp.Expr]:
    """Bases u of the half-integer powers u**(k/2) in ``expr`` that contain ``marker``."""
    bases = {
        p.base
        for p in expr.atoms(sp.Pow)
        if p.exp.is_Rational and p.exp.q == 2 and p.base.has(marker)
    }
    return sorted(bases, key=sp.default_sort_key)


def rational_array(rng: np.random.Generator, shape, low=-9, high=10, den=7) -> np.ndarray:
    """Object array of exact rationals k/den, k drawn uniformly from [low, high)."""
    values = rng.integers(low, high, size=shape)
    out = np.empty(shape, dtype=object)
    for idx, v in np.ndenumerate(values):
        out[idx] = sp.Rational(int(v), den)
    return out
