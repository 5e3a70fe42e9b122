"""A new method is one class: declared here, it is listed, parsed, trained and recorded.

The class is made inside a fixture (registration happens when the class is created) and removed
from the registry afterwards, so the other tests see only the toolkit's methods.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import xarray as xr

from empirical.methods import METHODS, Method
from symbolic.common.options import param
from tests.empirical.conftest import cli, train


@pytest.fixture
def toy_method():
    @dataclasses.dataclass(frozen=True)
    class ToyOptions:
        scale: float = param(1.0, "scale of the second view's projection", above=0)

    class Toy(Method):
        """Naive invariance between the two views, with an option of its own."""

        name = "toy_invariance"
        summary = "toy: mean squared difference of the two views' projections"
        losses = ("invariance",)
        options = (ToyOptions,)
        defaults = {"optimizer": "sgd", "lr": 0.01, "proj_dim": 16}

        def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
            return (out["z1"], self.cfg.scale * out["z2"])

    yield Toy
    del METHODS[Toy.name]


def test_a_new_method_is_one_class(toy_method, fashion_dir, tmp_path, capsys):
    assert METHODS["toy_invariance"] is toy_method
    out = tmp_path / "toy"
    assert train("toy_invariance", out, fashion_dir, "--scale", "0.5", "--proj-dim", "16") == 0
    ds = xr.open_dataset(out / "measurements.nc")
    assert ds.attrs["name"] == "toy_invariance" and ds.attrs["param_scale"] == 0.5
    assert ds.attrs["predictor_kind"] == "absent" and ds.attrs["target"] == "none"
    assert ds.sizes["mode"] == 16 and float(ds["loss"][1]) > 0
    capsys.readouterr()
    assert train("toy_invariance", tmp_path / "bad", fashion_dir, "--scale", "-1") == 2
    assert "scale=-1.0" in capsys.readouterr().err


def test_the_registry_refuses_a_second_method_of_the_same_name(toy_method):
    with pytest.raises(ValueError, match="registered twice"):

        class Other(Method):  # noqa: F841 - registration is the side effect under test
            name = "toy_invariance"
            losses = ("invariance",)


def test_the_toolkits_methods_are_listed_from_their_classes():
    res = cli("--list")
    assert res.returncode == 0
    for cls in METHODS.values():
        assert cls.summary in res.stdout
