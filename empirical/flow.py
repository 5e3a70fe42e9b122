"""What one optimiser step is in the flow time of the linear theory (docs/theory.md (D3)).

docs/theory.md (D3) maps plain SGD to gradient flow: learning rate alpha is flow time alpha per
step, the predictor's learning rate alpha alpha_p, EMA 1 - tau = alpha beta, weight decay alpha eta.
A training run records per step k (0-based) the encoder learning rate lr_k, the predictor's lr^p_k,
the EMA momentum tau_k, the weight decay wd and the heavy-ball momentum mu, and from them the
parameters of the flow it follows, so that a simulation can be built from the run
(``dynamics.simulate ... --from-run``) without re-deriving anything:

- heavy-ball SGD (torch's: v_k = mu v_{k-1} + g_k, v_{-1} = 0, w_{k+1} = w_k - lr_k v_k) moves the
  weights, while the gradient g changes slowly, by lr_k (1 - mu^{k+1})/(1 - mu) g, so step k is
  the flow time dt_k = D lr_k (1 - mu^{k+1})/(1 - mu) (the factor tends to 1/(1 - mu), and is 1
  for mu = 0); D = ``loss_directions`` x ``loss_scale``: the number of one-direction losses of
  Tian's eq. 1 that the training loss sums (BYOL sums its two directions: 2; a loop that averages
  them: 1) times the loss's factor s (``--loss-param scale=``, a peer's convention, README "Loss
  conventions");
- the weight decay passes through the same momentum, so per unit flow time it is eta = wd / D;
- the predictor's relative rate is alpha_p(t_k) = lr^p_k / lr_k (SimSiam's fixed predictor lr:
  lr_peak / lr_k, which grows as the cosine schedule decays); its decay per unit flow time is
  then alpha_p eta (one weight decay for both groups: the ``alpha_p_eta`` convention of
  ``dynamics.models.linear_byol``);
- the EMA update W_a <- tau_k W_a + (1 - tau_k) W after step k is, for a W that moves slowly,
  dW_a/dt = beta (W - W_a) with e^{-beta_k dt_k} = tau_k: beta_k = -ln(tau_k) / dt_k (to first
  order (1 - tau_k)/dt_k, (D3)'s 1 - gamma = alpha beta).

LARS rescales every layer's step by its own trust ratio, so a LARS run has no single flow time:
its dt, eta, alpha_p and beta are NaN, and :data:`LARS_REASON` says why.
"""

from __future__ import annotations

import math

LARS_REASON = (
    "LARS rescales each layer's step by its trust ratio eta ||w|| / ||g||, so the run has no "
    "single gradient-flow time: flow time, eta, alpha_p and beta are undefined (NaN)"
)


def flow_step(
    step: int,
    lr: float,
    lr_predictor: float,
    tau: float | None,
    weight_decay: float,
    momentum: float,
    directions: float,
    optimizer: str,
) -> dict[str, float]:
    """dt (flow time of the step), eta, alpha_p and beta of optimiser step ``step`` (0-based)."""
    nan = float("nan")
    if optimizer != "sgd":
        return {"dt": nan, "eta": nan, "alpha_p": nan, "beta": nan}
    warm = 1.0 - momentum ** (step + 1)
    dt = directions * lr * (warm / (1.0 - momentum) if momentum > 0 else 1.0)
    beta = nan if tau is None or dt <= 0 else (-math.log(tau) / dt if tau > 0 else math.inf)
    return {
        "dt": dt,
        "eta": weight_decay / directions,
        "alpha_p": lr_predictor / lr if lr > 0 else nan,
        "beta": beta,
    }
