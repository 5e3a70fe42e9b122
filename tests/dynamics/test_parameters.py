"""Declared parameter bounds: param(..., at_least=, above=, choices=, why=) checked by validate."""

import dataclasses
import re

import pytest

from dynamics import scenarios
from dynamics.models.directpred import DirectPredDiscreteParams
from dynamics.models.linear_byol import LinearBYOLParams
from dynamics.models.liu import LiuParams
from symbolic.common.options import ParameterError, param, validate


@dataclasses.dataclass(frozen=True)
class Base:
    n: int = param(3, "a count", at_least=1)
    rate: float = param(0.5, "a rate", above=0, why="rate = 0 never moves")

    def __post_init__(self):
        validate(self)


@dataclasses.dataclass(frozen=True)
class Derived(Base):
    mode: str = param("a", "'a', 'b' or 'c'", choices=("a", "b", "c"))
    decay: float = param(0.0, "a decay", at_least=0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n": 0}, "n=0 is not allowed: an integer >= 1"),
        ({"rate": 0.0}, "rate=0.0 is not allowed: rate > 0 (rate = 0 never moves)"),
        ({"decay": -1.0}, "decay=-1.0 is not allowed: decay >= 0"),
        ({"mode": "d"}, "mode='d' is not allowed: 'a', 'b' or 'c'"),
        ({"decay": float("nan")}, "decay=nan is not allowed: must be finite"),
        ({"rate": float("inf"), "n": 0}, "rate=inf is not allowed: must be finite"),
    ],
)
def test_validate_names_the_value_and_what_is_allowed(kwargs, message):
    """Subclass fields are checked by the base's validate; finiteness comes before bounds."""
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}$"):
        Derived(**kwargs)


def test_bounds_are_shown_in_the_help_text():
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(Derived)}
    assert helps["n"] == "a count [>= 1]" and helps["rate"] == "a rate [> 0]"
    assert helps["decay"] == "a decay [>= 0]" and helps["mode"] == "'a', 'b' or 'c'"


@pytest.mark.parametrize(
    "params,kwargs,message",
    [
        (LinearBYOLParams, {"dim": 0}, "dim=0 is not allowed: an integer >= 1"),
        (LinearBYOLParams, {"alpha_p": 0.0}, "alpha_p=0.0 is not allowed: alpha_p > 0"),
        (
            LinearBYOLParams,
            {"beta": 0.0},
            "beta=0.0 is not allowed: beta > 0 (beta = 0: the target never moves)",
        ),
        (DirectPredDiscreteParams, {"convention": "x"}, "'code' or 'paper'"),
        (DirectPredDiscreteParams, {"rho": 1.0}, "rho=1.0 is not allowed: 0 <= rho < 1"),
        (LiuParams, {"k": 3}, "k=3 is not allowed: a divisor of n_samples"),
        (LiuParams, {"encoder": "deep"}, "encoder='deep' is not allowed: 'linear' or 'free'"),
    ],
)
def test_model_parameters_reject_bad_values(params, kwargs, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        params(**kwargs)


def test_every_scenario_accepts_its_defaults():
    for scenario in scenarios.SCENARIOS.values():
        scenario.params()


def test_loss_hyperparameters_are_declared_once_by_the_loss():
    """The encoder models take meaning, bounds and default of a loss hyperparameter from the loss
    (symbolic.losses.hyper_param) and hand it back under the loss's name."""
    from dynamics.models.contrastive import BarlowTwinsParams, VICRegModel, VICRegParams
    from symbolic import losses

    # the official values: Zbontar et al. 2021 (lambda), Bardes et al. 2022 (25, 25, 1, 1e-4)
    vicreg = VICRegParams()
    assert BarlowTwinsParams().lambd == 0.0051
    assert (vicreg.sim_coeff, vicreg.std_coeff, vicreg.cov_coeff, vicreg.var_eps) == (
        25.0,
        25.0,
        1.0,
        1e-4,
    )
    # Liu et al.'s Table 3 setting, not their ImageNet one (c_inv 25, k 8) that the loss declares
    assert (LiuParams().c_inv, LiuParams().k) == (1.0, 1)
    assert losses.get("liu").defaults["c_inv"] == 25.0
    model = VICRegModel(VICRegParams(dim=2, input_dim=3, n_samples=8, var_eps=1e-3))
    assert model.hyper() == {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0, "eps": 1e-3}
    with pytest.raises(
        ParameterError, match=re.escape("var_eps=-1.0 is not allowed: var_eps >= 0")
    ):
        VICRegParams(var_eps=-1.0)
    with pytest.raises(ParameterError, match=re.escape("c_cov=-1.0 is not allowed: c_cov >= 0")):
        LiuParams(c_cov=-1.0)
