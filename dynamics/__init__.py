"""Linear models of self-supervised learning dynamics (Tian et al. 2021; Liu et al. 2022).

Each model is a frozen parameter dataclass plus a right-hand side for ``scipy.integrate.solve_ivp``;
results are xarray Datasets with the variable names of :mod:`symbolic.common.schema`.
"""
