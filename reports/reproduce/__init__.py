"""Reproduce the papers' empirical claims: ``python -m reports.reproduce``.

Each claim (Tian et al. 2021, Liu et al. 2022, VICReg, Garrido et al. 2022) is a registered
experiment (:mod:`~reports.reproduce.registry`: its source and the sentence it tests, the runs it
needs, how their measurements decide it), defined in a family module: :mod:`~.tian`, :mod:`~.liu`,
:mod:`~.vicreg`. :mod:`~.plan` lists every distinct configuration once per seed; the one runner
of the drivers (:mod:`reports.experiments`) trains them with the real ``python -m
empirical.train`` and resumes an interrupted set; the verdict (:mod:`~.verdict`) comes from an
effect per seed, its mean and seed spread against the claim's threshold; :mod:`~.outputs` writes
``claims.md``, ``claims.tex``, ``claims.csv``, one figure per claim (:mod:`~.figures`) and
``claims.json``, which ``python -m reports.build --claims`` reads. Sizes: :mod:`~.scale`;
shared configurations: :mod:`~.configs`.
"""

import importlib

from reports.reproduce.registry import EMPIRICAL_CLAIMS, EmpiricalClaim, empirical_claim

#: The family modules; importing one registers its claims (tables list them in this order).
FAMILIES = ("tian", "liu", "vicreg")

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["EMPIRICAL_CLAIMS", "FAMILIES", "EmpiricalClaim", "empirical_claim"]
