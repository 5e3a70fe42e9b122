"""The models of the breadth issue against autograd of their symbolic.losses loss, closed forms
and the collapse results of Tian et al. and Liu et al."""

import numpy as np
import pytest
import torch

import symbolic.losses as losses
from dynamics import scenarios
from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.directpred import paper_fixed_point
from dynamics.models.eigenmodes import fixed_points
from dynamics.simulate import RunSettings, simulate


@pytest.fixture(autouse=True)
def float64_default():
    """float64 tensors by default in this module only (a module-level set_default_dtype would
    leak into every test collected after it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _model(name, **params):
    scenario = scenarios.get(name)
    return scenario.model(scenario.params(**params))


def _random_state(model, seed=1):
    return np.random.default_rng(seed).standard_normal(model.layout.size)


def _grads(value, tensors):
    value.backward()
    return {k: t.grad.numpy() for k, t in tensors.items() if t.grad is not None}


def _leaves(blocks, names):
    return {k: torch.tensor(blocks[k], requires_grad=True) for k in names}


def exact_moment_views(x_corr, view_corr, seed=0):
    """x1, x2 (n, n1) with X1^T X1/n = X2^T X2/n = X + X' and X1^T X2/n = X exactly, so that a
    batch loss equals the population loss of Tian's Lemma 1 (and so do its gradients)."""
    n1 = x_corr.shape[0]
    joint = np.block([[view_corr, x_corr], [x_corr, view_corr]])
    vals, vecs = np.linalg.eigh(joint)
    root = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    n = 4 * n1
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, 2 * n1)))
    y = np.sqrt(n) * q @ root
    return torch.tensor(y[:, :n1]), torch.tensor(y[:, n1:])


# ---- right-hand side == -(gradient of the symbolic loss) - weight decay, by autograd ----------

ENCODER = {"dim": 3, "input_dim": 4, "n_samples": 16, "eta": 0.07}


@pytest.mark.parametrize(
    "name,params",
    [
        ("barlow_twins", {"lambd": 0.3}),
        ("vicreg", {"var_eps": 1e-3}),
        ("spectral", {}),
        ("liu", {}),
        ("liu", {"standardize": False, "alpha_p": 1.7}),
        ("liu", {"k": 4, "std_eps": 0.1}),
        ("liu", {"identity_predictor": True}),
        ("liu", {"sg_view2": True, "c_cov": 0.0}),
        ("liu", {"encoder": "free"}),
        ("liu", {"encoder": "free", "k": 2, "standardize": False}),
    ],
)
def test_encoder_model_rhs_is_minus_the_autograd_gradient(name, params):
    model = _model(name, **ENCODER, **params)
    y = _random_state(model)
    blocks = model.layout.unpack(y)
    rhs = model.layout.unpack(model.rhs(0.0, y))
    t = _leaves(blocks, blocks)
    n = model.params.n_samples
    if "W" in t:
        z1 = torch.tensor(model.data.x1) @ t["W"].T
        z2 = torch.tensor(model.data.x2) @ t["W"].T
    else:  # Liu's free features: F1 = Z1^T / sqrt(n), Z2 = Z1 + E
        z1 = t["F1"].T * np.sqrt(n)
        z2 = z1 + torch.tensor(model.offset)
    if params.get("sg_view2"):
        z2 = z2.detach()
    loss = losses.get(name)
    if name == "liu":
        wp = t["W_p"] if "W_p" in t else torch.eye(model.params.dim)
        value = loss(wp, z1, z2, **model.hyper())
    else:
        value = loss(z1, z2, **(model.hyper() if hasattr(model, "hyper") else {}))
    grads = _grads(value, t)
    for k in blocks:
        rate = model.params.alpha_p if k == "W_p" else 1.0
        expected = -rate * grads[k] - model.params.eta * blocks[k]
        np.testing.assert_allclose(rhs[k], expected, rtol=1e-9, atol=1e-12, err_msg=k)


POPULATION = {"dim": 3, "input_dim": 4, "x_spectrum": "random", "aug_spectrum": "random",
              "eta": 0.07, "seed": 2}  # fmt: skip


@pytest.mark.parametrize("name", ["directpred", "directcopy"])
def test_directpred_w_flow_is_minus_the_linear_byol_gradient_at_its_predictor(name):
    """W moves by -d/dW linear_byol(W_p, X1 W^T, X2 W_a^T) - eta W with W_p = rule(F_hat)."""
    model = _model(name, **POPULATION)
    y = _random_state(model)
    b = model.layout.unpack(y)
    b["F_hat"] = b["F_hat"] @ b["F_hat"].T  # a correlation matrix
    y = model.layout.pack(**b)
    rhs = model.layout.unpack(model.rhs(0.0, y))
    x1, x2 = exact_moment_views(model.byol.x_corr, model.byol.view_corr)
    t = _leaves(b, ["W"])
    wp = torch.tensor(model.predictor(b["F_hat"]))
    value = losses.get("linear_byol")(wp, x1 @ t["W"].T, x2 @ torch.tensor(b["W_a"]).T)
    expected = -_grads(value, t)["W"] - model.params.eta * b["W"]
    np.testing.assert_allclose(rhs["W"], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rhs["W_a"], model.params.beta * (b["W"] - b["W_a"]))


@pytest.mark.parametrize("variant", ["simsiam", "byol"])
def test_no_predictor_rhs_is_the_linear_byol_gradient_with_identity_predictor(variant):
    model = _model("no_predictor", variant=variant, **POPULATION)
    y = _random_state(model)
    b = model.layout.unpack(y)
    rhs = model.layout.unpack(model.rhs(0.0, y))
    x1, x2 = exact_moment_views(model.x_corr, model.view_corr)
    t = _leaves(b, ["W"])
    target = torch.tensor(b["W_a"]) if variant == "byol" else t["W"]
    value = losses.get("linear_byol")(torch.eye(3), x1 @ t["W"].T, x2 @ target.T)
    expected = -_grads(value, t)["W"] - model.params.eta * b["W"]
    np.testing.assert_allclose(rhs["W"], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", ["simsiam", "byol"])
def test_no_stopgrad_rhs_is_the_gradient_through_both_branches(variant):
    """Without stop-gradient the loss is Liu's with c_inv = 1/2, c_cov = 0, no standardisation:
    1/2 ||W_p F1 - F2||^2, differentiated through F2 = (X2 W^T or X2 W_a^T)^T/sqrt(n) too."""
    model = _model("no_stopgrad", variant=variant, alpha_p=1.3, **POPULATION)
    y = _random_state(model)
    b = model.layout.unpack(y)
    rhs = model.layout.unpack(model.rhs(0.0, y))
    x1, x2 = exact_moment_views(model.x_corr, model.view_corr)
    names = ["W", "W_p", "W_a"] if variant == "byol" else ["W", "W_p"]
    t = _leaves(b, names)
    target = t["W_a"] if variant == "byol" else t["W"]
    value = losses.get("liu")(t["W_p"], x1 @ t["W"].T, x2 @ target.T, c_inv=0.5, c_cov=0.0, k=1,
                              standardize=False)  # fmt: skip
    g = _grads(value, t)
    eta = model.params.eta
    np.testing.assert_allclose(rhs["W"], -g["W"] - eta * b["W"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rhs["W_p"], -1.3 * g["W_p"] - eta * b["W_p"], rtol=1e-9, atol=1e-12)
    if variant == "byol":
        ema = model.params.beta * (b["W"] - b["W_a"])
        np.testing.assert_allclose(rhs["W_a"], ema - g["W_a"] - eta * b["W_a"], rtol=1e-9,
                                   atol=1e-12)  # fmt: skip


# ---- DirectPred / DirectCopy fixed points ------------------------------------------------------


@pytest.mark.parametrize("name,convention", [("directpred", "paper"), ("directcopy", None)])
def test_directpred_fixed_point_spectrum_matches_its_rule(name, convention):
    """Surviving modes: W_p eigenvalue p*_+ (Tian's fixed point) and F_hat eigenvalue s* with
    rule(s*) = p*_+: sqrt(s*) + eps s* = p*_+ (paper convention), s* + eps = p*_+ (DirectCopy)."""
    extra = {"convention": convention} if convention else {}
    params = dict(dim=5, input_dim=7, eta=0.05, sigma2=0.4, eps=0.1, rho_rate=3.0, **extra)
    ds = simulate(name, RunSettings(t_end=150.0, n_out=11), **params)
    final = ds.isel(time=-1)
    p_plus = fixed_points(0.05, 1.0, 0.4)[0]
    s_star = paper_fixed_point(p_plus, 0.1) if convention else p_plus - 0.1
    np.testing.assert_allclose(final["wp_eig_real"].values, p_plus, rtol=1e-6)
    np.testing.assert_allclose(final["fhat_eig"].values, s_star, rtol=1e-6)
    assert float(final["fhat_gap"]) < 1e-6  # F_hat has caught up with E[f f^T]
    # s* is an eigenvalue of E[f f^T] = (1+sigma^2) W W^T: the modes survived
    np.testing.assert_allclose(final["corr_eig"].values, s_star, rtol=1e-6)


def test_directpred_code_convention_is_scale_free_and_collapses_the_linear_model():
    """p_j = max(sqrt(s_j/s_max) + eps, 1e-4): the largest W_p eigenvalue is 1 + eps at all times,
    above p*_+ here, so ||W|| decays (the unnormalised linear loss has no other fixed point)."""
    ds = simulate(
        "directpred", RunSettings(t_end=80.0, n_out=9), dim=4, input_dim=6, eps=0.1,
        convention="code",
    )  # fmt: skip
    np.testing.assert_allclose(ds["wp_eig_real"].max("mode").values, 1.1, rtol=1e-12)
    assert float(ds["w_norm"][-1]) < 1e-3 * float(ds["w_norm"][0])


def test_discrete_directpred_approaches_the_flow_as_the_step_shrinks():
    """directpred_discrete with lr -> 0 and r = 1 - lr rho_rate follows the directpred flow."""
    common = dict(dim=4, input_dim=6, convention="paper", rho_rate=5.0, eta=0.05)
    flow = _model("directpred", **common)
    ref = integrate(flow.rhs, flow.initial_state(), SaveAt.uniform(5.0, 6))
    w_ref = flow.layout.unpack(ref.y[-1])["W"]
    errors = []
    for lr in (0.02, 0.005):
        disc = _model("directpred_discrete", lr=lr, rho=1 - lr * 5.0, **common)
        traj = disc.run_discrete(SaveAt.uniform(5.0, 6), SolverSettings(blowup=1e6))
        w = disc.layout.unpack(traj.y[-1])["W"]
        errors.append(np.linalg.norm(w - w_ref) / np.linalg.norm(w_ref))
    assert errors[1] < errors[0] / 2.5  # first order in lr
    assert errors[1] < 0.02


def test_discrete_freq_keeps_the_predictor_between_resets():
    """With freq = 4 the rule sets W_p at steps 0, 4, ...; in between W_p takes SGD steps."""
    model = _model("directpred_discrete", dim=3, input_dim=4, lr=0.01, freq=4)
    b = model.layout.unpack(model.initial_state())
    state = (b["W"], b["W_a"], b["F_hat"], b["W_p"])
    for k in range(5):
        before = state
        state = model.step(k, *state)
        rule = model.predictor(before[2])
        set_now = np.allclose(state[3], rule + 0.01 * model.byol.velocities(
            before[0], rule, before[1])[1])  # fmt: skip
        assert set_now == (k % 4 == 0)


# ---- collapse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,variant,t_end",
    [("no_predictor", "simsiam", 60), ("no_predictor", "byol", 120),
     ("no_stopgrad", "simsiam", 60), ("no_stopgrad", "byol", 300)],
)  # fmt: skip
def test_ablations_collapse_where_linear_byol_does_not(name, variant, t_end):
    params = dict(dim=4, input_dim=6, eta=0.04, sigma2=0.5)
    ds = simulate(name, RunSettings(t_end=float(t_end), n_out=5), variant=variant, **params)
    top0 = float(ds["corr_eig"].isel(time=0).max())
    assert float(ds["corr_eig"].isel(time=-1).max()) < 1e-4 * top0
    full = simulate("linear_byol", RunSettings(t_end=float(t_end), n_out=5), **params)
    assert float(full["corr_eig"].isel(time=-1).max()) > 0.05 * top0


LIU = dict(dim=6, input_dim=10, n_samples=128, c_inv=1.0, c_cov=1.0, k=1)


def test_liu_without_standardisation_and_learned_predictor_collapses():
    """Liu et al. Table 3, row (c_cov 1, no STD, learned W_p): collapse. The loss has the zero
    W_p = 0, Z = 0, and the flow reaches it."""
    ds = simulate("liu", RunSettings(t_end=60.0, n_out=5, rtol=1e-8, atol=1e-10),
                  standardize=False, **LIU)  # fmt: skip
    assert float(ds["z_norm"][-1]) < 1e-6 * float(ds["z_norm"][0])
    assert float(ds["loss"][-1]) < 1e-3 * float(ds["loss"][0])


def test_liu_with_standardisation_does_not_collapse():
    """Table 3, row (c_cov 1, STD, learned W_p): no collapse. Standardised features cannot
    shrink; the simulation keeps several dimensions (RankMe >= 3 of 6)."""
    ds = simulate("liu", RunSettings(t_end=60.0, n_out=5, rtol=1e-8, atol=1e-10), **LIU)
    assert float(ds["z_norm"][-1]) > 0.5 * float(ds["z_norm"][0])
    assert float(ds["effective_rank"][-1]) >= 3.0


@pytest.mark.parametrize("sigma2,collapses", [(0.5, True), (0.05, False)])
def test_liu_identity_predictor_without_standardisation_depends_on_augmentation(sigma2, collapses):
    """Table 3 (c_cov 1, no STD, I-PRED) reports no collapse. In the linear model with isotropic
    augmentation the loss at Z^T Z/n = c I is 2 sigma^2 d c/(1+sigma^2) + (1 - c)^2, minimised at
    c = 1 - sigma^2 d/(1+sigma^2): collapse (c = 0) when sigma^2 (d - 1) >= 1."""
    d = 8
    ds = simulate("liu", RunSettings(t_end=200.0, n_out=5, rtol=1e-8, atol=1e-10), dim=d,
                  input_dim=d, n_samples=1024, sigma2=sigma2, standardize=False,
                  identity_predictor=True, x_spectrum="isotropic")  # fmt: skip
    corr = ds["corr_eig"].isel(time=-1).values
    if collapses:
        assert corr.max() < 1e-6
    else:
        c = 1 - sigma2 * d / (1 + sigma2)
        assert abs(corr.mean() - c) < 0.05 * c  # finite n: a few percent off
