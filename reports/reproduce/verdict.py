"""The verdict of a claim: an effect per seed, its mean and seed spread, against a threshold.

Each test of a claim reduces the runs of one seed to one number, the **effect** e_s (for
example the final minus the initial value of a statistic in one run, or the contrast between two
configurations trained with the same seed: same initial weights, data order and augmentations).
Over the n seeds let m be the mean of e_s and s their standard deviation (ddof 1: the seed
spread). The claim states a sign d (+1: the effect is positive, -1: negative), a threshold theta
(the effect the claim names, with d theta >= d null) and a null value (the effect of nothing
happening: 0 for a change or a contrast; the threshold itself for a claim that one configuration
is not worse than another by more than a margin). With K = 2:

- **REPRODUCED** when d (m - null) > K s (the effect has the claimed sign and lies outside the
  seed spread) and d (m - theta) > 0 (beyond the claim's threshold);
- **NOT REPRODUCED** when d (m - theta) < -K s (significantly short of the threshold, which
  includes a significant effect of the opposite sign);
- **INCONCLUSIVE** otherwise (the effect lies inside the seed spread).

A test over fewer than 3 seeds (MIN_SEEDS), or with an effect that is undefined in some seed
(NaN: a statistic of a collapsed run), is INCONCLUSIVE: there is never a verdict from one seed.
A claim is REPRODUCED when every test that decides it is, NOT REPRODUCED when any is, and
INCONCLUSIVE otherwise; a context test (a reference series the claim is read against) is
reported with its own verdict but does not enter the claim's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: an effect is outside the seed spread when its mean exceeds K standard deviations over seeds
K = 2.0
#: fewest seeds a verdict is drawn from
MIN_SEEDS = 3
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE"
CLAIM_VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


#: the rule in one sentence, for table captions
SUMMARY = (
    f"REPRODUCED: the mean effect over seeds has the claimed sign, exceeds {K:g} seed standard "
    "deviations and lies beyond the threshold; NOT REPRODUCED: it falls short of the threshold "
    f"by more than {K:g} standard deviations; INCONCLUSIVE otherwise."
)


def definition() -> str:
    """The definition of a verdict: this module's docstring after its first line (the report
    prints it)."""
    return __doc__.split("\n", 1)[1].strip()


def spread(effects: Sequence[float]) -> tuple[float, float]:
    """(mean, standard deviation with ddof 1) of the per-seed effects; sd 0 for one value."""
    e = np.asarray(effects, dtype=float)
    return float(np.mean(e)), float(np.std(e, ddof=1)) if e.size > 1 else 0.0


def decide(
    effects: Sequence[float], sign: int, threshold: float, null: float = 0.0, k: float = K
) -> str:
    """The verdict of one test from its per-seed effects (see the module docstring)."""
    if sign not in (1, -1):
        raise ValueError(f"sign {sign!r}: must be +1 or -1")
    if sign * (threshold - null) < 0:
        raise ValueError(f"threshold {threshold} lies on the wrong side of the null {null}")
    e = np.asarray(effects, dtype=float)
    if e.size < MIN_SEEDS or not np.all(np.isfinite(e)):
        return INCONCLUSIVE
    m, s = spread(e)
    if sign * (m - null) > k * s and sign * (m - threshold) > 0:
        return REPRODUCED
    if sign * (m - threshold) < -k * s:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """A claim's verdict from the verdicts of the tests that decide it."""
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


@dataclass
class Test:
    """One test of a claim: what its effect is, the claimed sign and threshold, the effects.

    ``effects`` holds one value per seed (NaN where undefined), ``seeds`` the seeds; ``note``
    says what else a reader needs (which seeds collapsed, the threshold's origin).
    """

    name: str
    statistic: str
    sign: int
    threshold: float
    effects: list[float]
    seeds: list[int]
    null: float = 0.0
    decides: bool = True
    note: str = ""

    @property
    def verdict(self) -> str:
        return decide(self.effects, self.sign, self.threshold, self.null)

    @property
    def mean(self) -> float:
        finite = [e for e in self.effects if math.isfinite(e)]
        return spread(finite)[0] if finite else float("nan")

    @property
    def sd(self) -> float:
        finite = [e for e in self.effects if math.isfinite(e)]
        return spread(finite)[1] if finite else float("nan")

    @property
    def undefined(self) -> list[int]:
        """Seeds whose effect is undefined (NaN)."""
        return [s for s, e in zip(self.seeds, self.effects, strict=True) if not math.isfinite(e)]

    def claimed(self) -> str:
        """'effect < -0.5' style text of what the claim asserts about the effect."""
        relation = ">" if self.sign > 0 else "<"
        return f"{relation} {self.threshold:.3g}"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "sign": self.sign,
            "threshold": self.threshold,
            "null": self.null,
            "effects": [None if not math.isfinite(e) else e for e in self.effects],
            "seeds": self.seeds,
            "decides": self.decides,
            "note": self.note,
            "mean": None if not math.isfinite(self.mean) else self.mean,
            "sd": None if not math.isfinite(self.sd) else self.sd,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Test:
        effects = [float("nan") if e is None else float(e) for e in data["effects"]]
        return cls(
            data["name"],
            data["statistic"],
            int(data["sign"]),
            float(data["threshold"]),
            effects,
            [int(s) for s in data["seeds"]],
            float(data.get("null", 0.0)),
            bool(data.get("decides", True)),
            str(data.get("note", "")),
        )


def claim_verdict(tests: Sequence[Test]) -> str:
    """The verdict of a claim from its deciding tests."""
    return combine(t.verdict for t in tests if t.decides)
