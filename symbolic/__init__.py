"""Every SSL loss defined once; its gradient derived by sympy and checked; the claims audited.

- :mod:`symbolic.losses`: the losses (``get(name)``, ``names()``) against a small array-operations
  namespace (:mod:`symbolic.ops`) with numpy, torch and sympy back ends;
- :mod:`symbolic.derivation`: entry-by-entry sympy gradients compiled with ``lambdify(cse=True)``,
  checked against torch autograd and finite differences;
- :mod:`symbolic.matrix_forms`: closed matrix forms of the gradients, checked numerically;
- :mod:`symbolic.claims`: the claims of docs/theory.md section 4, each decided by a computation;
- commands ``python -m symbolic.derive`` and ``python -m symbolic.audit``.
"""
