"""The general autograd model: it tends to Tian's population ODE as the data set grows, and it
accepts every training loss of symbolic.losses."""

import numpy as np
import pytest

import symbolic.losses as losses
from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.general import GeneralModel, GeneralParams
from dynamics.models.linear_byol import (
    LinearBYOLModel,
    LinearBYOLParams,
    LinearSimSiamModel,
    LinearSimSiamParams,
)
from dynamics.simulate import main
from symbolic.common.cli import run_main
from symbolic.common.options import ParameterError

SHAPE = dict(dim=3, input_dim=5, eta=0.05, alpha_p=1.5, sigma2=0.4, x_spectrum="random",
             aug_spectrum="random")  # fmt: skip
T_END = 8.0


def _predictor_path(model, n_out=9) -> np.ndarray:
    traj = integrate(
        model.rhs,
        model.initial_state(),
        SaveAt.uniform(T_END, n_out),
        SolverSettings(rtol=1e-7, atol=1e-9),
    )
    assert traj.complete
    b = model.layout.unpack(traj.y)
    return np.concatenate([b["W"].reshape(n_out, -1), b["W_p"].reshape(n_out, -1)], axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["ema", "online"])
def test_trajectories_approach_the_population_ode_as_n_grows(target):
    """loss linear_byol with an EMA target -> linear_byol (Tian Lemma 1); with the online network
    as target -> linear_simsiam. Error ~ n^(-1/2) (sampling error of the data moments); averaged
    over 3 seeds (each seed: its own data set and initial weights, shared with the ODE)."""
    ns = (64, 512, 4096)
    errors = np.zeros((3, len(ns)))
    for seed in range(3):
        if target == "ema":
            pop = LinearBYOLModel(LinearBYOLParams(**SHAPE, beta=0.6, seed=seed))
        else:
            pop = LinearSimSiamModel(LinearSimSiamParams(**SHAPE, seed=seed))
        ref = _predictor_path(pop)
        for i, n in enumerate(ns):
            general = GeneralModel(
                GeneralParams(
                    **SHAPE, beta=0.6, seed=seed, n_samples=n, loss="linear_byol", target=target
                )  # fmt: skip
            )
            g0 = general.layout.unpack(general.initial_state())
            p0 = pop.layout.unpack(pop.initial_state())
            for block in ("W", "W_p"):  # the same initial weights
                np.testing.assert_array_equal(g0[block], p0[block])
            path = _predictor_path(general)
            errors[seed, i] = np.max(np.abs(path - ref)) / np.max(np.abs(ref))
    mean = errors.mean(axis=0)
    assert mean[0] > mean[1] > mean[2]
    slope = np.polyfit(np.log(ns), np.log(mean), 1)[0]
    assert -0.8 < slope < -0.3, (mean, slope)
    assert mean[-1] < 0.1


@pytest.mark.parametrize("batch_size", [0, 8])
@pytest.mark.parametrize("name", [n for n in losses.names() if n != "batchnorm"])
def test_rhs_is_minus_the_gradient_for_every_training_loss(name, batch_size):
    """<dW/dt + eta W, V> = -dL(W + h V)/dh at h = 0 (central differences of the loss value), for
    a random direction V over all trained blocks: the roles are wired and differentiated. The
    loss value is numpy's, block by block; the right-hand side is torch's, all blocks at once
    (batch_size 8: two blocks of the 16 pairs; liu both ways)."""
    params = GeneralParams(
        dim=3, input_dim=4, n_samples=16, loss=name, queue_size=8, batch_size=batch_size,
        symmetrize=name == "liu" and batch_size > 0,
    )  # fmt: skip
    model = GeneralModel(params)
    rng = np.random.default_rng(0)
    y = model.initial_state() + 0.1 * rng.standard_normal(model.layout.size)
    b = model.layout.unpack(y)
    rhs = model.layout.unpack(model.rhs(0.0, y))
    trained = [k for k in b if k != "W_a"]
    v = {k: rng.standard_normal(b[k].shape) for k in trained}
    rate = {"W": 1.0, "W_p": model.params.alpha_p}
    predicted = sum(np.sum((rhs[k] + model.params.eta * b[k]) * v[k]) / rate[k] for k in trained)

    # a stop-gradient on the online targets (simsiam): the targets stay at the unperturbed W
    frozen = {"W_a": b["W"]} if model.params.role == "predict" and "W_a" not in b else {}

    def loss_at(h):
        return model.loss_value({**b, **frozen, **{k: b[k] + h * v[k] for k in trained}})

    h = 1e-5
    numeric = -(loss_at(h) - loss_at(-h)) / (2 * h)
    assert predicted == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_a_general_run_integrates_to_finite_results():
    model = GeneralModel(GeneralParams(dim=3, input_dim=4, n_samples=32, loss="nt_xent"))
    traj = integrate(
        model.rhs,
        model.initial_state(),
        SaveAt.uniform(2.0, 3),
        SolverSettings(rtol=1e-6, atol=1e-8),
    )
    assert traj.complete
    ds = model.observables(traj.t, traj.y)
    assert np.all(np.isfinite(ds["loss"].values)) and float(ds["loss"][-1]) < float(ds["loss"][0])


def test_bad_loss_or_hyperparameter_is_a_one_line_usage_error(tmp_path, capsys):
    with pytest.raises(ParameterError, match="batchnorm"):
        GeneralParams(loss="batchnorm")
    with pytest.raises(ParameterError, match="temperature"):
        GeneralParams(loss="nt_xent", loss_params={"temperature": "-1"})
    with pytest.raises(ParameterError, match="lambd"):
        GeneralParams(loss="nt_xent", loss_params={"lambd": "1"})
    out = tmp_path / "g.nc"
    assert run_main(main, ["general", "--loss", "no_such_loss", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_loss" in err and not out.exists()


@pytest.mark.parametrize(("temperature", "scale"), [(0.1, 1.0), (0.5, 2.0), (0.004, 1.0)])
def test_nt_xents_closed_form_gradient_is_autograds_block_by_block(temperature, scale):
    """dynamics.models.nt_xent_gradient (claim (a) and the chain rule) against torch autograd
    of the registered loss, one block at a time: 3 blocks of 6 pairs, 3 of 5 input dimensions
    (tau 0.004: logits up to 250 apart, the shifted exponentials stay in range)."""
    import torch

    from dynamics.models.nt_xent_gradient import block_gradients

    rng = np.random.default_rng(3)
    x1, x2 = (torch.from_numpy(rng.standard_normal((3, 6, 5))) for _ in range(2))
    w = rng.standard_normal((3, 5))
    found = block_gradients(w, x1, x2, temperature, scale)
    for b in range(3):
        wt = torch.from_numpy(w).requires_grad_(True)
        value = losses.nt_xent(x1[b] @ wt.T, x2[b] @ wt.T, temperature=temperature, scale=scale)
        (expected,) = torch.autograd.grad(value, wt)
        np.testing.assert_allclose(found[b], expected.numpy(), rtol=1e-9, atol=1e-12)


def test_nt_xent_falls_back_to_autograd_where_the_closed_form_does_not_apply():
    """A zero embedding (the normalisation's floor) and a row whose exponentials all underflow
    (cosines between embeddings at most 0.2, tau = 1e-3): no closed form, and GeneralModel's
    gradient there is still the central difference of its numpy loss; with ``symmetrize`` (the
    swapped views' loss added) the closed form's gradient is too."""
    import torch

    from dynamics.models.general import RunInputs
    from dynamics.models.nt_xent_gradient import block_gradients

    rng = np.random.default_rng(4)
    x1, x2 = np.array([[1.0, 0.0], [0.0, 1.0]] * 2), np.array([[-1.0, 0.2], [0.2, -1.0]] * 2)
    blocks = [torch.from_numpy(x.reshape(2, 2, 2)) for x in (x1, x2)]
    assert block_gradients(np.zeros((2, 2)), *blocks, 0.1, 1.0) is None
    assert block_gradients(np.eye(2), *blocks, 1e-3, 1.0) is None
    assert block_gradients(np.eye(2), *blocks, 0.1, 1.0) is not None
    for temperature, symmetrize in ((1e-3, False), (0.2, True)):
        params = GeneralParams(
            dim=2, input_dim=2, n_samples=4, loss="nt_xent", batch_size=2, symmetrize=symmetrize,
            loss_params={"temperature": temperature},
        )  # fmt: skip
        model = GeneralModel(params, RunInputs(x1, x2))
        w, v = np.eye(2), rng.standard_normal((2, 2))
        h = 1e-6
        up, down = (model.loss_value({"W": w + sign * h * v}) for sign in (1, -1))
        numeric = (up - down) / (2 * h)
        assert np.sum(model.gradients({"W": w})["W"] * v) == pytest.approx(numeric, rel=1e-5)
