"""What a claim is: its source, the runs it needs, and how their measurements decide it.

An empirical claim is one function in a family module, registered with
:func:`empirical_claim` (the symbolic audit's claims, :mod:`symbolic.claims`, are another kind:
identities checked on the equations)::

    @empirical_claim("tian-fig2", "W_p becomes symmetric and aligns with F under weight decay",
           paper="Tian, Chen, Ganguli 2021", where="Fig. 2, Sec. 5",
           quote="...the sentence it tests...")
    def tian_fig2(scale: Scale) -> Experiment:
        runs = {"wd": byol_linear(scale), "no_wd": byol_linear(scale, weight_decay=0.0)}
        return Experiment(runs, evaluate, sizing="...")

The function returns an :class:`Experiment` for a :class:`~reports.reproduce.scale.Scale`: the
training configurations it needs (:class:`RunSpec`, by role), the sizing argument (why the runs
are long enough for the effect to show), and ``evaluate(measured) -> Outcome``, which turns the
runs' ``measurements.nc`` of every seed into the claim's tests
(:class:`~reports.reproduce.verdict.Test`) and the panels of its figure. Configurations are
identified by their options, so two claims that need the same run share it: the runner trains
every distinct configuration once per seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from reports.reproduce.verdict import Test

if TYPE_CHECKING:
    from reports.reproduce.measured import Measured
    from reports.reproduce.scale import Scale


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training configuration, trained once per seed: ``python -m empirical.train METHOD
    OPTIONS --seed S``.

    ``label`` names it in tables and figures; ``steps`` is its length and ``seconds`` the
    estimated time of one run at its scale (the plan's estimate).
    """

    method: str
    options: tuple[str, ...]
    label: str
    steps: int
    seconds: float

    @property
    def key(self) -> str:
        """The configuration's folder name: the method and a hash of the options (two claims
        asking for the same options under other labels share the runs)."""
        digest = hashlib.sha256(" ".join((self.method, *self.options)).encode()).hexdigest()
        return f"{self.method}_{digest[:10]}"


@dataclasses.dataclass
class Panel:
    """One panel of a claim's figure: series over seeds against x, with reference lines.

    ``series`` maps a label to (x, y) with one list of values per seed; ``hlines``/``vlines``
    are (value, label) reference lines.
    """

    title: str
    xlabel: str
    ylabel: str
    series: dict[str, tuple[list[list[float]], list[list[float]]]]
    hlines: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    vlines: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    logx: bool = False
    logy: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Panel:
        fields = dict(data)
        fields["series"] = {k: (v[0], v[1]) for k, v in data["series"].items()}
        fields["hlines"] = [tuple(h) for h in data.get("hlines", [])]
        fields["vlines"] = [tuple(v) for v in data.get("vlines", [])]
        return cls(**fields)


@dataclasses.dataclass
class Outcome:
    """What the measurements say about a claim: its tests, its figure's panels, the numbers its
    sizing argument quotes (``facts``: e.g. eta t reached)."""

    tests: list[Test]
    panels: list[Panel]
    facts: dict[str, float | str] = dataclasses.field(default_factory=dict)


#: runs an experiment asks for after reading its measurements: role -> (configuration, seeds)
Refinement = dict[str, tuple[RunSpec, tuple[int, ...]]]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A claim at one scale: the runs it needs (role -> configuration), its sizing argument,
    and the evaluation of the runs' measurements.

    An adaptive experiment (a bisection) also has ``refine(measured) -> Refinement``: the runs
    to train next, given the measurements of every run so far (the empty dict when it is done;
    a function of the measurements only, so that ``--resume`` asks for the same runs), and at
    most ``refine_rounds`` rounds of one run per seed, ``refine_seconds`` each, for the plan's
    estimate."""

    runs: dict[str, RunSpec]
    evaluate: Callable[[Measured], Outcome]
    sizing: str
    refine: Callable[[Measured], Refinement] | None = None
    refine_rounds: int = 0
    refine_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class EmpiricalClaim:
    """A registered empirical claim: id, title, source (paper, figure or table, the sentence it
    tests), and the function that builds its experiment at a scale."""

    id: str
    title: str
    paper: str
    where: str
    quote: str
    build: Callable[[Scale], Experiment]

    @property
    def source(self) -> str:
        return f"{self.paper}, {self.where}"

    def describe(self) -> str:
        """Its definition: the docstring of the function that builds it (the statistic, the
        threshold, why the runs are long enough)."""
        doc = self.build.__doc__ or ""
        return " ".join(doc.split())


#: claim id -> registered empirical claim, in the order of registration
EMPIRICAL_CLAIMS: dict[str, EmpiricalClaim] = {}


def empirical_claim(
    claim_id: str, title: str, *, paper: str, where: str, quote: str
) -> Callable[[Callable[[Scale], Experiment]], Callable[[Scale], Experiment]]:
    """Register ``build(scale) -> Experiment`` as the claim ``claim_id``.

    ``quote`` is the sentence of the source that the claim tests; an id registered twice is a
    ValueError naming both functions.
    """

    def register(build: Callable[[Scale], Experiment]) -> Callable[[Scale], Experiment]:
        if claim_id in EMPIRICAL_CLAIMS:
            first = EMPIRICAL_CLAIMS[claim_id].build
            raise ValueError(
                f"claim {claim_id!r} is registered twice: by {first.__module__}."
                f"{first.__qualname__} and by {build.__module__}.{build.__qualname__}"
            )
        if not build.__doc__:
            raise ValueError(f"claim {claim_id!r}: {build.__qualname__} has no docstring")
        EMPIRICAL_CLAIMS[claim_id] = EmpiricalClaim(claim_id, title, paper, where, quote, build)
        return build

    return register
