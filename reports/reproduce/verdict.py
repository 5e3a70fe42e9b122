"""The verdict of a claim: a one-sided test of the per-seed effects at the claim's threshold.

Each test of a claim reduces the runs of one seed to one number, the **effect** e_s (for
example the final minus the initial value of a statistic in one run, or the contrast between two
configurations trained with the same seed: same initial weights, data order and augmentations).
Over the n seeds let m be the mean of e_s and s their standard deviation (ddof 1: the seed
spread). The claim states a sign d (+1: the effect is positive, -1: negative), a threshold theta
(the effect the claim names) and a null value (the effect of nothing happening, with
d theta >= d null: 0 for a change or a contrast; the margin itself for a claim that one
configuration is not worse than another by more than a margin; the figures draw it). The
statistic is Student's t at the threshold,

    T = d (m - theta) / (s / sqrt(n)),

and with t* the one-sided 1 - ALPHA quantile of Student's t with n - 1 degrees of freedom
(ALPHA = 0.05; t* = 2.92 for 3 seeds, 2.13 for 5):

- **REPRODUCED** when T > t* (the effect lies beyond the threshold, significantly);
- **NOT REPRODUCED** when T < -t* (it falls short of the threshold, significantly; this
  includes a significant effect of the opposite sign);
- **INCONCLUSIVE** otherwise.

The rule is symmetric at the threshold: for normally distributed effects whose true mean is
exactly theta, each of REPRODUCED and NOT REPRODUCED occurs with probability ALPHA, whatever the
seed spread (Monte Carlo of this function, 3 seeds, 20 000 draws with spreads over four
decades: 4.8% and 5.1%, standard error 0.15%). The power (REPRODUCED) for a true effect
beyond the threshold by k seed standard deviations (the noncentral t, noncentrality
k sqrt(n)), 3 seeds: k = 1: 32%, 2: 71%, 3: 93%, 4: 99%; with 5 seeds k = 2: 97%. (The rule
this replaces asked d (m - null) > 2 s and only d (m - theta) > 0 for REPRODUCED: at a
threshold far from the null it said REPRODUCED 50% and NOT REPRODUCED 3.7% of the time.)
Since the threshold lies beyond the null, an effect significantly beyond the threshold is
significantly beyond the null too. tests/reports/test_claims_verdict.py checks these rates
by simulation.

A test over fewer than 3 seeds (MIN_SEEDS), or with an effect that is undefined in some seed
(NaN: a statistic of a collapsed run), is INCONCLUSIVE: there is never a verdict from one seed.
A claim is REPRODUCED when every test that decides it is, NOT REPRODUCED when any is, and
INCONCLUSIVE otherwise; a context test (a reference series the claim is read against) is
reported with its own verdict but does not enter the claim's. The rates above are per test: a
claim with k deciding tests all exactly at their thresholds is NOT REPRODUCED with probability
up to 1 - (1 - ALPHA)^k (independent tests: 14% for k = 3) and REPRODUCED with at most ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: one-sided error rate of each side of the rule at the threshold
ALPHA = 0.05
#: fewest seeds a verdict is drawn from
MIN_SEEDS = 3
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE"
CLAIM_VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


#: the rule in one sentence, for table captions
SUMMARY = (
    "REPRODUCED: the mean effect over seeds lies beyond the claim's threshold by a one-sided "
    f"t-test at level {ALPHA:g} (n - 1 degrees of freedom, n seeds); NOT REPRODUCED: it falls "
    f"short of the threshold by the same test on the other side; INCONCLUSIVE otherwise (each "
    f"wrong verdict {ALPHA:.0%} of the time for a true effect exactly at the threshold)."
)


def definition() -> str:
    """The definition of a verdict: this module's docstring after its first line (the report
    prints it)."""
    return __doc__.split("\n", 1)[1].strip()


def spread(effects: Sequence[float]) -> tuple[float, float]:
    """(mean, standard deviation with ddof 1) of the per-seed effects; sd 0 for one value."""
    e = np.asarray(effects, dtype=float)
    return float(np.mean(e)), float(np.std(e, ddof=1)) if e.size > 1 else 0.0


def critical_t(n: int, alpha: float = ALPHA) -> float:
    """t*: the one-sided 1 - alpha quantile of Student's t with n - 1 degrees of freedom."""
    return float(stats.t.ppf(1 - alpha, n - 1))


def half_width(effects: Sequence[float], alpha: float = ALPHA) -> float:
    """t* s / sqrt(n): how far the mean must lie from the threshold for a verdict (the one-sided
    confidence bound's distance from the mean; NaN below MIN_SEEDS finite effects)."""
    e = np.asarray([x for x in effects if math.isfinite(x)], dtype=float)
    if e.size < MIN_SEEDS:
        return math.nan
    return critical_t(e.size, alpha) * spread(e)[1] / math.sqrt(e.size)


def t_statistic(effects: Sequence[float], sign: int, threshold: float) -> float:
    """T = d (m - theta) / (s / sqrt(n)); +-inf for effects without spread off the threshold,
    0 on it."""
    e = np.asarray(effects, dtype=float)
    m, s = spread(e)
    distance = sign * (m - threshold)
    if s == 0:
        return math.copysign(math.inf, distance) if distance else 0.0
    return distance / (s / math.sqrt(e.size))


def decide(
    effects: Sequence[float], sign: int, threshold: float, null: float = 0.0, alpha: float = ALPHA
) -> str:
    """The verdict of one test from its per-seed effects (see the module docstring); ``null``
    only has to lie on the near side of the threshold."""
    if sign not in (1, -1):
        raise ValueError(f"sign {sign!r}: must be +1 or -1")
    if sign * (threshold - null) < 0:
        raise ValueError(f"threshold {threshold} lies on the wrong side of the null {null}")
    e = np.asarray(effects, dtype=float)
    if e.size < MIN_SEEDS or not np.all(np.isfinite(e)):
        return INCONCLUSIVE
    t, critical = t_statistic(e, sign, threshold), critical_t(e.size, alpha)
    if t > critical:
        return REPRODUCED
    if t < -critical:
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
