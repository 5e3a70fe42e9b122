"""One finding: a statistic of a run against its prediction and nulls, and its verdict.

The verdict rule is stated in :mod:`reports.compare` (module docstring); :class:`Row` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: how much smaller than every null a statistic must be to count as agreement
NULL_MARGIN = 3.0
#: the tolerance in units of the noise floor (run against its replay)
NOISE_FACTOR = 3.0
FINDING_VERDICTS = (
    "agrees",
    "disagrees",
    "not tested",
    "not distinguishable from the null",
    "not decided",
    "not computed",
)


@dataclass
class Row:
    """One statistic for one run: its value, the nulls' values and the verdict."""

    key: str
    quantity: str
    value: float
    tolerance: float
    nulls: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    ablations: dict[str, float] = field(default_factory=dict)  # ingredient -> its null's value
    kind: str = "prediction"  # or "property" (of the run alone)
    tolerance_rule: str = "fixed"
    context: str = ""  # what the verdict rests on (modes counted, alive modes and RankMe)
    undecided: str = ""  # why no verdict can be given (fewer than MIN_ALIVE alive modes)
    #: why a prediction has no ablation null (then it is "not tested", never "agrees")
    no_nulls: str = "no replay and no ablation nulls for this run"
    #: NOISE_FACTOR x the run's noise floor where measured: beyond the capped tolerance but
    #: within this, the run is too noisy for the statistic to decide (never "disagrees")
    noise_limit: float = float("nan")
    #: the statistic between the prediction and the run's replay (no minibatch noise): where
    #: the run is too noisy, a gap beyond the tolerance still shows the flow missing the
    #: optimiser
    replay_gap: float = float("nan")

    @property
    def best_null(self) -> float:
        finite = [v for v in self.nulls.values() if np.isfinite(v)]
        return min(finite) if finite else float("nan")

    @property
    def untested(self) -> dict[str, float]:
        """The ingredients whose ablation null is not NULL_MARGIN times above the value."""
        return {
            k: v
            for k, v in self.ablations.items()
            if not (np.isfinite(v) and NULL_MARGIN * self.value <= v and v > self.value)
        }

    @property
    def tested(self) -> list[str]:
        return [k for k in self.ablations if k not in self.untested]

    @property
    def too_noisy(self) -> bool:
        """Above the tolerance (capped at the statistic's fixed one) but within the noise
        limit: the run's own minibatch noise could put it there."""
        return self.tolerance < self.value <= self.noise_limit

    @property
    def flow_misses(self) -> bool:
        """The prediction is further than the tolerance from the run's noise-free replay."""
        return bool(self.replay_gap > self.tolerance)

    @property
    def verdict(self) -> str:
        """One of :data:`FINDING_VERDICTS` (see the module docstring)."""
        if not np.isfinite(self.value):
            return "not computed"
        if self.undecided:
            return "not decided"
        if self.value > self.tolerance:
            return "not decided" if self.too_noisy and not self.flow_misses else "disagrees"
        null = self.best_null
        if not (np.isfinite(null) and null > self.value and NULL_MARGIN * self.value <= null):
            return "not distinguishable from the null"
        if self.kind == "prediction" and not self.ablations:
            return "not tested"  # nothing in the physics was put to the test
        return "not tested" if self.untested else "agrees"

    @property
    def detail(self) -> str:
        """The verdict in words with what it rests on: the ingredients tested, or those not
        tested with the numbers, and the context."""
        verdict = self.verdict
        parts = []
        if verdict == "disagrees" and self.too_noisy:
            parts.append(
                f"the run is within {NOISE_FACTOR:g}x its noise floor, but its replay, free "
                f"of minibatch noise, is {self.replay_gap:.3g} from the prediction"
            )
        elif verdict == "not decided" and self.too_noisy:
            parts.append(
                f"the error {self.value:.3g} is above the tolerance {self.tolerance:.3g} but "
                f"within {self.noise_limit:.3g}, {NOISE_FACTOR:g}x the run's noise floor: this "
                "run is too noisy to decide"
            )
        elif verdict == "not decided":
            parts.append(self.undecided)
        elif verdict == "not tested" and not self.ablations:
            parts.append(f"no ablation null: {self.no_nulls}")
        elif verdict == "not tested":
            parts.append(
                "not tested: "
                + "; ".join(
                    f"{k} (its null {v:.3g} is not {NULL_MARGIN:g}x the error {self.value:.3g})"
                    for k, v in self.untested.items()
                )
            )
            if self.tested:
                parts.append("tested: " + ", ".join(self.tested))
        elif verdict == "agrees" and self.kind == "prediction":
            parts.append("tested: " + ", ".join(self.tested))
        if self.context:
            parts.append(self.context)
        return f"{verdict} ({'; '.join(parts)})" if parts else verdict
