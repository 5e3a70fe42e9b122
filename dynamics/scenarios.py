"""The registry of scenarios that ``python -m dynamics.simulate`` runs.

A scenario is a model class, its parameter dataclass and the run settings it defaults to.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynamics.models.ablations import AblationParams, NoPredictorModel, NoStopGradModel
from dynamics.models.base import Model
from dynamics.models.contrastive import (
    BarlowTwinsModel,
    BarlowTwinsParams,
    SpectralModel,
    SpectralParams,
    VICRegModel,
    VICRegParams,
)
from dynamics.models.cosine_modes import CosineModeModel, CosineModeParams
from dynamics.models.directpred import (
    DirectCopyModel,
    DirectCopyParams,
    DirectPredDiscreteModel,
    DirectPredDiscreteParams,
    DirectPredModel,
    DirectPredParams,
)
from dynamics.models.eigenmodes import EigenmodeModel, EigenmodeParams
from dynamics.models.ema_gap import EmaGapModel, EmaGapParams
from dynamics.models.free_features import FreeFeatureModel, FreeFeatureParams
from dynamics.models.general import GeneralModel, GeneralParams
from dynamics.models.isoloss import IsoLossModel, IsoLossParams
from dynamics.models.linear_byol import (
    LinearBYOLModel,
    LinearBYOLParams,
    LinearSimSiamModel,
    LinearSimSiamParams,
)
from dynamics.models.liu import LiuModel, LiuParams
from dynamics.models.stepwise_bt import StepwiseBTModel, StepwiseBTParams
from dynamics.models.vicreg_aligned import VICRegAlignedModel, VICRegAlignedParams


@dataclass(frozen=True)
class Scenario:
    """A named model with its parameter class and default flow-time horizon."""

    model: type[Model]
    params: type
    t_end: float

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def description(self) -> str:
        return self.model.description


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(LinearBYOLModel, LinearBYOLParams, t_end=100.0),
        Scenario(LinearSimSiamModel, LinearSimSiamParams, t_end=100.0),
        Scenario(FreeFeatureModel, FreeFeatureParams, t_end=40.0),
        Scenario(EigenmodeModel, EigenmodeParams, t_end=150.0),
        Scenario(EmaGapModel, EmaGapParams, t_end=20.0),
        Scenario(DirectPredModel, DirectPredParams, t_end=100.0),
        Scenario(DirectCopyModel, DirectCopyParams, t_end=100.0),
        Scenario(DirectPredDiscreteModel, DirectPredDiscreteParams, t_end=100.0),
        Scenario(NoPredictorModel, AblationParams, t_end=40.0),
        Scenario(NoStopGradModel, AblationParams, t_end=40.0),
        Scenario(LiuModel, LiuParams, t_end=50.0),
        Scenario(BarlowTwinsModel, BarlowTwinsParams, t_end=50.0),
        Scenario(VICRegModel, VICRegParams, t_end=20.0),
        Scenario(SpectralModel, SpectralParams, t_end=30.0),
        Scenario(GeneralModel, GeneralParams, t_end=100.0),
        Scenario(StepwiseBTModel, StepwiseBTParams, t_end=12.0),
        Scenario(IsoLossModel, IsoLossParams, t_end=40.0),
        Scenario(VICRegAlignedModel, VICRegAlignedParams, t_end=3.0),
        Scenario(CosineModeModel, CosineModeParams, t_end=12.0),
    )
}


def get(name: str) -> Scenario:
    """The scenario called ``name``; ValueError naming the allowed ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; allowed: {', '.join(SCENARIOS)}") from None
