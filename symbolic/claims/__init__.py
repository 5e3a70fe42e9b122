"""The claims of docs/theory.md section 4, each decided by a computation on the loss definitions.

Every claim is stated as docs/theory.md section 4 states it (claims (a)-(j), with the papers they
are about: Garrido et al. 2022 for (h), Liu et al.'s Theorem 3.1, docs/theory.md (D5), for (e)). A
claim function computes, symbolically where it can (sympy on the sympy back end of
:mod:`symbolic.losses`, exact rationals, ``expand``/``cancel``, never ``simplify``) and numerically
otherwise, whether the stated formula holds in the general setting and in the restricted setting
that the corrected statement names. The verdict follows from those results through :func:`decide`:

- ``true``: the stated formula holds in every setting checked;
- ``true_if``: it fails in general but holds under the computed condition;
- ``false``: it fails in every setting checked.

The corrected statements quote the expressions that the computation produced.

The claims live in family modules, one function each, registered with ``@claim(id, title)``
(:mod:`symbolic.claims.base`); importing this package imports the families in
:data:`FAMILIES`. A new claim is a decorated function in a family module; a new family module is
added to :data:`FAMILIES`.
"""

from __future__ import annotations

import importlib

from symbolic.claims.base import AUDIT_VERDICTS, CLAIMS, Claim, Verdict, audit, claim, decide

__all__ = ["CLAIMS", "FAMILIES", "AUDIT_VERDICTS", "Claim", "Verdict", "audit", "claim", "decide"]

#: The family modules of this package; importing one registers its claims.
FAMILIES = ("contrastive", "regularizers", "batchnorm", "flows", "predictor", "garrido")

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
