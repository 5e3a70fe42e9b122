"""symbolic.losses: each back end against a second, official-style torch implementation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
import torch
from symbolic_reference import REFERENCES

from symbolic import losses
from symbolic.sympy_backend import strip_stop_gradient

SIZES = {"N": 8, "d": 5, "K": 6}
# Hyperparameters away from the defaults, to catch a hyperparameter that is not wired through.
OVERRIDES = {
    "nt_xent": {"temperature": 0.5},
    "infonce": {"temperature": 0.2},
    "barlow_twins": {"lambd": 0.03},
    "vicreg": {"sim_coeff": 3.0, "std_coeff": 7.0, "cov_coeff": 2.0},
    "linear_byol": {"eta": 0.3},
    "liu": {"c_inv": 2.0, "c_cov": 5.0, "k": 2},
}


def random_arrays(loss, rng, sizes=SIZES, scale=1.0):
    return [scale * rng.normal(size=(sizes[r], sizes[c])) for r, c in loss.shapes]


def reference_kwargs(name, hp):
    return {k: v for k, v in hp.items() if k not in ("eps", "scale")}


@pytest.mark.parametrize("name", losses.names())
@pytest.mark.parametrize("use_overrides", [False, True])
def test_torch_matches_official_reference(name, use_overrides):
    loss = losses.get(name)
    hp = OVERRIDES.get(name, {}) if use_overrides else {}
    if name == "liu" and not use_overrides:
        hp = {"k": 4}  # N=8: the default k=8 gives one sample per part, also checked below
    rng = np.random.default_rng(1)
    # VICReg: half the features with std < 1 (hinge active), half with std > 1.
    arrays = random_arrays(loss, rng)
    if name == "vicreg":
        for a in arrays:
            a[:, ::2] *= 0.3
            a[:, 1::2] *= 3.0
    mine = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    value = loss(*mine, **hp)
    expected = REFERENCES[name](*theirs, **reference_kwargs(name, {**loss.defaults, **hp}))
    assert value.shape == ()
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    value.backward()
    expected.backward()
    for arg, a, b in zip(loss.args, mine, theirs, strict=True):
        ga = torch.zeros_like(a) if a.grad is None else a.grad
        gb = torch.zeros_like(b) if b.grad is None else b.grad
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12, msg=f"gradient {arg}")


def test_liu_default_k_one_sample_per_part():
    loss = losses.get("liu")
    rng = np.random.default_rng(2)
    arrays = [torch.tensor(a) for a in random_arrays(loss, rng)]
    torch.testing.assert_close(loss(*arrays), REFERENCES["liu"](*arrays, k=8), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", losses.names())
def test_numpy_and_sympy_back_ends_agree_with_torch(name):
    loss = losses.get(name)
    sizes = {"N": 4, "d": 2, "K": 3}
    hp = {"k": 2} if name == "liu" else {}
    rng = np.random.default_rng(3)
    arrays = random_arrays(loss, rng, sizes)
    expected = loss(*[torch.tensor(a) for a in arrays], **hp).item()
    value = loss(*arrays, **hp)
    assert isinstance(value, np.floating)
    assert value == pytest.approx(expected, rel=1e-12)
    symbols = [
        np.array(sp.symbols(f"{arg}_0:{a.size}", real=True), dtype=object).reshape(a.shape)
        for arg, a in zip(loss.args, arrays, strict=True)
    ]
    expr = loss(*symbols, **hp)
    assert isinstance(expr, sp.Expr)
    point = {
        s: sp.Float(v, 30)
        for S, a in zip(symbols, arrays, strict=True)
        for s, v in zip(S.ravel(), a.ravel(), strict=True)
    }
    assert float(strip_stop_gradient(expr).xreplace(point).evalf(30)) == pytest.approx(
        expected, rel=1e-12
    )


def test_sympy_back_end_keeps_exact_rationals():
    z1 = np.array(sp.symbols("a_0:4", real=True), dtype=object).reshape(2, 2)
    z2 = np.array(sp.symbols("b_0:4", real=True), dtype=object).reshape(2, 2)
    expr = losses.get("barlow_twins")(z1, z2)
    assert sp.Rational(51, 10000) in expr.atoms(sp.Rational)
    assert not expr.atoms(sp.Float)
    tau = sp.Symbol("tau", positive=True)
    expr = losses.get("nt_xent")(z1, z2, temperature=tau)
    assert tau in expr.free_symbols


def test_official_defaults_are_those_of_spec_section_1():
    assert losses.get("barlow_twins").defaults == {"lambd": 0.0051, "eps": 1e-5, "scale": 1.0}
    assert losses.get("vicreg").defaults == {
        "sim_coeff": 25.0,
        "std_coeff": 25.0,
        "cov_coeff": 1.0,
        "eps": 1e-4,
    }
    liu = losses.get("liu").defaults
    assert (liu["c_inv"], liu["c_cov"], liu["k"], liu["standardize"]) == (25.0, 1.0, 8, True)
    assert losses.get("nt_xent").defaults == {"temperature": 0.1, "scale": 1.0}
    assert losses.get("byol").defaults == {"scale": 1.0}
    assert losses.get("batchnorm").defaults == {"eps": 1e-5}


@pytest.mark.parametrize("name", ["byol", "nt_xent", "barlow_twins"])
def test_scale_multiplies_value_and_gradient(name):
    """scale=k: k times the value and k times every gradient (the reference at scale 1, times k)."""
    loss = losses.get(name)
    k = 0.375
    arrays = random_arrays(loss, np.random.default_rng(5))
    mine = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    value = loss(*mine, scale=k)
    expected = REFERENCES[name](*theirs, **reference_kwargs(name, loss.defaults))
    torch.testing.assert_close(value, k * expected, rtol=1e-12, atol=1e-12)
    value.backward()
    expected.backward()
    for a, b in zip(mine, theirs, strict=True):
        if b.grad is None:  # an argument under stop-gradient
            assert a.grad is None
            continue
        torch.testing.assert_close(a.grad, k * b.grad, rtol=1e-10, atol=1e-12)


def test_scale_option_parses_and_is_checked():
    """--loss-param scale=TEXT goes through the one parser and its range check."""
    loss = losses.get("barlow_twins")
    assert loss.resolve(loss.parse({"scale": "0.024"}))["scale"] == 0.024
    with pytest.raises(ValueError, match="scale"):
        loss.resolve(loss.parse({"scale": "0"}))
    with pytest.raises(ValueError, match="no hyperparameter 'scale'"):
        losses.get("vicreg").parse({"scale": "2"})


def test_contract_attributes():
    expected_args = {
        "invariance": ("z1", "z2"),
        "nt_xent": ("z1", "z2"),
        "infonce": ("q", "k", "queue"),
        "byol": ("p1", "p2", "z1", "z2"),
        "simsiam": ("p1", "p2", "z1", "z2"),
        "barlow_twins": ("z1", "z2"),
        "vicreg": ("z1", "z2"),
        "linear_byol": ("wp", "f1", "f2"),
        "liu": ("wp", "z1", "z2"),
        "spectral": ("z1", "z2"),
        "garrido_lc": ("k",),
        "garrido_lnc": ("k",),
        "batchnorm": ("z", "g"),
    }
    assert losses.names() == list(expected_args)
    for name, args in expected_args.items():
        loss = losses.get(name)
        assert loss.name == name and loss.args == args
        for text in (loss.formula, loss.source, loss.convention):
            assert isinstance(text, str) and text
            assert text in loss.__doc__
    assert "HALVED" in losses.get("vicreg").convention


def test_bad_hyperparameters_and_arrays_are_named():
    loss = losses.get("nt_xent")
    z = np.ones((3, 2))
    with pytest.raises(ValueError, match="unknown hyperparameter 'tau'"):
        loss(z, z, tau=0.5)
    with pytest.raises(TypeError, match="temperature='0.5'"):
        loss(z, z, temperature="0.5")
    with pytest.raises(ValueError, match="temperature=0"):
        loss(z, z, temperature=0)
    with pytest.raises(TypeError, match="k=2.0"):
        losses.get("liu")(np.eye(2), np.ones((4, 2)), np.ones((4, 2)), k=2.0)
    with pytest.raises(ValueError, match="k=3 must divide the batch size N=4"):
        losses.get("liu")(np.eye(2), np.ones((4, 2)), np.ones((4, 2)), k=3)
    with pytest.raises(TypeError, match="standardize=1"):
        losses.get("liu")(np.eye(2), np.ones((4, 2)), np.ones((4, 2)), standardize=1)
    with pytest.raises(TypeError, match="is a sympy expression: allowed only with sympy arrays"):
        loss(z, z, temperature=sp.Rational(1, 2))
    with pytest.raises(TypeError, match="mix back ends"):
        loss(z, torch.ones(3, 2))
    with pytest.raises(TypeError, match="argument 'z2' is a list"):
        loss(z, [[1.0, 2.0]])
    with pytest.raises(ValueError, match="argument z2 has shape"):
        loss(z, np.ones((4, 2)))
    with pytest.raises(ValueError, match="unknown loss 'simclr'"):
        losses.get("simclr")


def test_torch_low_precision_and_autocast():
    rng = np.random.default_rng(4)
    for name in losses.names():
        loss = losses.get(name)
        hp = {"k": 2} if name == "liu" else {}
        arrays = random_arrays(loss, rng, scale=0.5)
        exact = loss(*[torch.tensor(a) for a in arrays], **hp).item()
        # bf16 inputs
        low = [torch.tensor(a, dtype=torch.bfloat16, requires_grad=True) for a in arrays]
        value = loss(*low, **hp)
        value.float().backward()
        assert value.dtype == torch.bfloat16 and torch.isfinite(value)
        assert value.item() == pytest.approx(exact, rel=0.1, abs=0.1)
        # float32 inputs under CPU autocast
        inputs = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in arrays]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = loss(*inputs, **hp)
        value.float().backward()
        assert torch.isfinite(value)
        assert value.item() == pytest.approx(exact, rel=0.1, abs=0.1), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_tensors():
    rng = np.random.default_rng(5)
    for name in losses.names():
        loss = losses.get(name)
        hp = {"k": 2} if name == "liu" else {}
        arrays = random_arrays(loss, rng)
        cpu = loss(*[torch.tensor(a) for a in arrays], **hp).item()
        gpu = [torch.tensor(a, device="cuda", requires_grad=True) for a in arrays]
        value = loss(*gpu, **hp)
        value.backward()
        assert value.device.type == "cuda"
        assert value.item() == pytest.approx(cpu, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_standardisation_back_ends(unbiased, eps):
    """torch uses BatchNorm's fused kernel (eps > 0), numpy/sympy compose it: same values."""
    from symbolic.ops import NUMPY, TorchOps

    z = np.random.default_rng(6).normal(size=(6, 4))
    t = torch.tensor(z)
    expected = (t - t.mean(0)) / torch.sqrt(t.var(0, unbiased=unbiased) + eps)
    fused = TorchOps(t.device).standardize(t, eps, unbiased)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(NUMPY.standardize(z, eps, unbiased), expected.numpy(), rtol=1e-12)


def test_numeric_back_ends_do_not_import_sympy():
    """Training and the dynamics models import symbolic.losses: only object arrays load sympy."""
    code = (
        "import sys, numpy as np, torch, symbolic.losses as losses\n"
        "z = np.random.default_rng(0).normal(size=(4, 3))\n"
        "losses.get('vicreg')(z, z + 1)\n"
        "t = torch.tensor(z, requires_grad=True)\n"
        "losses.get('byol')(t, t, t + 1, t - 1).backward()\n"
        "print('sympy' in sys.modules)\n"
        "losses.get('vicreg')(z.astype(object), z.astype(object))\n"
        "print('sympy' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True"]
