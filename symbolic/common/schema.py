"""The result schema shared by simulations (:mod:`dynamics`) and training runs (:mod:`empirical`).

One xarray Dataset per run (docs/conventions.md, "Result files"; the observables of docs/theory.md
section 3). Dimensions: the axes along which a result progresses, ``time`` (flow time t = sum of
learning rates), ``epoch`` and ``step`` for training runs; ``mode`` (eigen index), ``rank`` (place
in a sorted spectrum), ``row``/``col`` (stored matrices), ``input``/``input_col`` (input-space
matrices), ``feature``/``feature_col`` (the rows of a linear encoder W of a training run with a
projector: the encoder's output features h, which the projector maps to the d rows of W_p),
``component``; and one dimension per swept parameter or grid variable, which the
writer of such a file declares (``extra_dims``).

Every variable is listed in :data:`VARIABLES` with its long name and units (a report labels an
axis without knowing who wrote the file) and, in :data:`CORE_DIMS`, the dimensions it ends with;
its other dimensions must be axes or declared extra dimensions. :func:`check` refuses anything
else, so a misspelt variable or a transposed array fails when it is written, not when it is read.

Eigenvalue order, decided here once: a spectrum (:data:`RANKED_VARIABLES`: ``wp_eig_real``/
``wp_eig_imag``, ``corr_eig``, ...) is sorted by decreasing real part, ties by decreasing
imaginary part (:func:`dynamics.observables.sort_spectrum`), so for the real, non-negative spectra
of the theory the order is by decreasing magnitude and readers never re-sort. Its dimension says
which index it has: ``rank`` (0 = the largest) in a result that also holds variables per mode
(the eigenmode model: ``p``, ``s``, ``tau``, ``invariant_residual``, ``mode_collapsed`` over
``mode``), so that ``ds.sel(mode=j)`` is one mode in every variable; ``mode`` in the matrix models
(whose modes are the ranks) and in the eigenmode sweeps, where ``wp_eig_real`` is the final p_j of
mode j itself, unsorted, next to ``mode_collapsed``.
"""

from __future__ import annotations

import xarray as xr

TIME = "time"
EPOCH = "epoch"
STEP = "step"
MODE = "mode"
RANK = "rank"
ROW = "row"
COL = "col"
INPUT = "input"
INPUT_COL = "input_col"
COMPONENT = "component"
PAIR = "pair"
LAYER = "layer"
FEATURE = "feature"
FEATURE_COL = "feature_col"

#: dimensions along which a result progresses
AXES = (TIME, EPOCH, STEP)
#: dimensions with a fixed meaning
KNOWN_DIMS = (
    *AXES, MODE, RANK, ROW, COL, INPUT, INPUT_COL, COMPONENT, PAIR, LAYER, FEATURE, FEATURE_COL,
)  # fmt: skip

#: name -> (long name, units). "1" marks a dimensionless quantity.
VARIABLES: dict[str, tuple[str, str]] = {
    "wp_eig_real": ("real part of the eigenvalues of W_p", "1"),
    "wp_eig_imag": ("imaginary part of the eigenvalues of W_p", "1"),
    "wp_singular": ("singular values of W_p", "1"),
    "wp_sym_eig": ("eigenvalues of the symmetric part (W_p + W_p^T)/2", "1"),
    "wp_asymmetry": ("||W_p - W_p^T||_F / ||W_p + W_p^T||_F", "1"),
    "alignment_cos": ("cos(W_p u_j, u_j) for eigenvectors u_j of the feature correlation", "1"),
    "commutator_norm": ("||[F, W_p]||_F / (||F||_F ||W_p||_F)", "1"),
    "corr_eig": ("eigenvalues of the single-view feature correlation E[f f^T]", "1"),
    "conservation_residual": ("||W_p^T W_p - E[f f^T]||_F / ||E[f f^T]||_F (feature space)", "1"),
    "conservation_residual_weight": (
        "||W W^T - W_p^T W_p / alpha_p||_F / ||C||_F (Tian Theorem 1: equals exp(-2 eta t))",
        "1",
    ),
    "conservation_error": (
        "||W W^T - W_p^T W_p / alpha_p - exp(-2 eta t) C||_F / ||C||_F (0 if Theorem 1 holds)",
        "1",
    ),
    "sigma_corr_mean_sq": (
        "mean over pairs i != j of alive dimensions of the squared Pearson correlation "
        "(||Sigma - I||_F^2 / (d (d - 1)) when no dimension is dead; NaN when fewer than 2 live)",
        "1",
    ),
    "sigma_floor": ("estimator floor 1/(N-1) of sigma_corr_mean_sq (independent features)", "1"),
    "dead_dims": ("dimensions with centred std below 2% of the largest (dead units)", "1"),
    "collapsed": (
        "1 where the embedding collapsed (z_std < 0.05, centred effective rank < 2, or no live "
        "dimension)",
        "1",
    ),
    "aug_ratio": (
        "sigma^2 in feature space: tr(Cov(z) - Cov(z1, z2)) / tr(Cov(z1, z2)) on two views "
        "(centred)",
        "1",
    ),
    "sigma_dist_pearson": ("||Sigma - I||_F^2, Sigma the Pearson correlation of outputs", "1"),
    "sigma_dist_moment": (
        "||Sigma - I||_F^2, Sigma = M d / tr M, M the uncentred second moment of outputs",
        "1",
    ),
    "sigma_dist_pearson_per_dim": ("||Sigma - I||_F^2 / d, Pearson correlation", "1"),
    "sigma_dist_moment_per_dim": ("||Sigma - I||_F^2 / d, uncentred second moment", "1"),
    "sigma_offdiag_pearson": ("squared Frobenius norm of the off-diagonal of Sigma (Pearson)", "1"),
    "sigma_offdiag_moment": ("squared Frobenius norm of the off-diagonal of Sigma (moment)", "1"),
    "effective_rank": ("RankMe effective rank exp(H(sigma / ||sigma||_1))", "1"),
    "effective_rank_centred": ("RankMe of the centred outputs z - mean(z)", "1"),
    "z_std": ("mean over dims of the std of l2-normalised embeddings, times sqrt(d)", "1"),
    "loss": ("training loss", "1"),
    "ema_gap": ("||W_a - W||_F, the lag of the EMA target behind the online weights", "1"),
    "ema_gap_predicted": ("closed-form EMA gap", "1"),
    "tau": ("EMA target ratio tau = <W_a, W> / ||W||^2 (per mode in eigenmode models)", "1"),
    "w_norm": ("||W||_F, norm of the online weights", "1"),
    "p": ("eigenvalue p_j of the symmetric predictor", "1"),
    "s": ("eigenvalue s_j of F = W X W^T", "1"),
    "invariant_residual": (
        "s_j - p_j^2/alpha_p - exp(-2 eta t) c_j (0 if the invariant holds)",
        "1",
    ),
    "p_star_plus": ("stable fixed point p*_+ of a mode at the current tau", "1"),
    "p_star_minus": ("unstable fixed point p*_- (collapse basin boundary)", "1"),
    "wp": ("predictor matrix W_p", "1"),
    "w": ("online weight matrix W", "1"),
    "w_target": ("target weight matrix W_a", "1"),
    "flow_time": ("flow time t = sum of learning rates", "flow time t"),
    # Sweeps (dynamics.sweep): one value per grid point (and mode); added by dynamics breadth.
    "mode_collapsed": ("1 where the mode collapsed at the end of the run", "1"),
    "mode_converged": ("1 where the mode reached its non-collapsed fixed point p*_+", "1"),
    "collapsed_modes": ("number of collapsed modes", "1"),
    "converged_modes": ("number of modes at p*_+", "1"),
    "collapse_fraction": ("fraction of the modes that collapsed", "1"),
    "time_to_converge": (
        "time after which max|dy/dt| stays below conv_tol (t_reached where it never did)",
        "flow time t",
    ),
    "converged": ("1 where the run converged (max|dy/dt| < conv_tol at the end)", "1"),
    "diverged": ("1 where the run blew up or turned non-finite (values: last finite state)", "1"),
    "t_reached": ("flow time the run reached", "flow time t"),
    "fhat_eig": ("eigenvalues of DirectPred's running feature correlation F_hat", "1"),
    "fhat_gap": ("||F_hat - E[f f^T]||_F / ||E[f f^T]||_F (DirectPred, DirectCopy)", "1"),
    "z_norm": ("||Z_eval||_F / sqrt(n), the scale of the evaluation-set embeddings", "1"),
    "dp_dt": ("dp_j/dt of the per-mode system at fixed tau (phase diagrams)", "1"),
    "collapse_fraction_alpha_p": ("fraction of collapsed modes over (eta, alpha_p)", "1"),
    "collapse_fraction_beta": ("fraction of collapsed modes over (eta, beta)", "1"),
    "invariant_constant": ("c_j = s_j(0) - p_j(0)^2/alpha_p of the per-mode invariant", "1"),
    "delta": ("EMA gap xi - theta per component", "1"),
    "delta_predicted": ("closed-form EMA gap per component", "1"),
    "wp_init": ("initial predictor matrix W_p(0)", "1"),
    "conservation_C": ("C = W(0) W(0)^T - W_p(0)^T W_p(0) / alpha_p of Tian Theorem 1", "1"),
    "x_corr": ("X = E[xbar xbar^T], xbar = E[x'|x] (augmentation-averaged data correlation)", "1"),
    "aug_cov": ("X' = E_x[Cov(x'|x)] (augmentation covariance)", "1"),
    "x_corr_se": ("standard error of each entry of x_corr", "1"),
    "pca_variance": ("variance of the training images along each principal component", "1"),
    "aug_cov_se": ("standard error of each entry of aug_cov", "1"),
    "eval_mean": ("mean of the held-out clean images (input coordinates)", "1"),
    "eval_second_moment": ("uncentred second moment of the held-out clean images", "1"),
    "x1": ("first augmented view of each pair (input coordinates)", "1"),
    "w_up": ("layers W_2 ... W_L of a deep linear encoder (W = W_L ... W_1 is w)", "1"),
    "x2": ("second augmented view of each pair (input coordinates)", "1"),
    "ds_dt": ("ds_j/dt of the per-mode system at fixed tau (phase diagrams)", "1"),
    "fixed_p": ("p of each isolated fixed point at fixed tau (NaN: none; phase diagrams)", "1"),
    "fixed_s": ("s of each isolated fixed point at fixed tau (NaN: none; phase diagrams)", "1"),
    "fixed_stability": ("stability of each fixed point (flag_meanings; NaN: none)", "1"),
    "fixed_line_p": ("p of the line of stable fixed points at eta = 0 (NaN: none)", "1"),
    "axis_stability": ("stability of the fixed points (p, 0) at eta = 0 (NaN: none)", "1"),
    # The collapse map of a run (dynamics.collapse_map): per grid point and mode.
    "surviving_modes": ("modes alive at the run's horizon (per-mode ODE)", "1"),
    "surviving_modes_closed_form": ("modes whose threshold exceeds the weight decay", "1"),
    "mode_survives": ("1 where the mode is alive at the run's horizon (per-mode ODE)", "1"),
    "mode_weight": ("u_j = ||W v_j||^2 at the run's horizon (per-mode ODE)", "1"),
    "mode_weight_initial": ("u_j(0) = ||W(0) v_j||^2, the run's initial weights", "1"),
    "mode_p_initial": ("p_j(0) = w_j^T W_p(0) w_j, w_j = W(0) v_j / ||W(0) v_j||", "1"),
    "mode_tau_initial": ("tau_j(0) = <W_a(0) v_j, W(0) v_j> / u_j(0)", "1"),
    "mode_x": ("x_j = v_j^T X v_j, the mode's data correlation", "1"),
    "mode_x_aug": ("x'_j = v_j^T X' v_j, the mode's augmentation variance", "1"),
    "mode_p_critical": ("p at which the mode's threshold is reached (x_j / (2 (x_j + x'_j)))", "1"),
    "threshold_eta": ("largest eta with a non-collapsed fixed point of the mode", "1"),
    "threshold_weight_decay": ("the mode's threshold as an SGD weight decay (D eta*_j)", "1"),
    "threshold_weight_decay_diagonal": (
        "the threshold from the diagonal of X' in the eigenbasis of X (D x_j^2 / (4 (x_j + x'_j)))",
        "1",
    ),
    "mode_direction": ("unit input direction v_j of the mode (X and X' coordinates)", "1"),
    # Training runs (empirical.train); added by the empirical package.
    "flow_time_step": ("flow time t after each optimiser step (empirical.flow)", "flow time t"),
    "lr_step": ("encoder learning rate of each step", "1"),
    "lr_predictor_step": ("predictor learning rate of each step", "1"),
    "ema_momentum_step": ("EMA momentum tau of each step (NaN: no EMA target)", "1"),
    "weight_decay_step": ("weight decay of each step", "1"),
    "momentum_step": ("heavy-ball momentum of each step", "1"),
    "eta_step": ("weight decay per unit flow time eta of each step", "1"),
    "alpha_p_step": ("predictor rate alpha_p = lr_predictor / lr of each step", "1"),
    "beta_step": ("EMA rate beta = -ln(tau) / dt of each step", "1"),
    "step_at_measurement": ("optimiser steps completed at the measurement", "1"),
    "lr": ("learning rate of the last step before the measurement", "1"),
    "ema_momentum": ("EMA target momentum of the last step before the measurement", "1"),
    "throughput": ("training throughput, source images per second (all ranks)", "images/s"),
    "knn_acc": ("weighted kNN accuracy on the test split (k, T chosen on validation)", "1"),
    "knn_acc_val": ("weighted kNN accuracy on the validation split at the chosen k, T", "1"),
    "knn_acc_random": ("kNN accuracy of the randomly initialised encoder", "1"),
    "knn_k": ("number of neighbours k chosen on validation", "1"),
    "knn_temperature": ("kNN temperature T chosen on validation", "1"),
    "linear_acc": ("linear-probe accuracy on the test split (penalty chosen on validation)", "1"),
    "linear_acc_val": ("linear-probe accuracy on the validation split", "1"),
    "linear_acc_random": ("linear-probe accuracy of the randomly initialised encoder", "1"),
    "linear_penalty": ("L2 penalty of the linear probe chosen on validation", "1"),
    "loss_invariance": ("invariance term of the loss, unweighted", "1"),
    "loss_variance": ("variance (hinge) term of the loss, unweighted", "1"),
    "loss_covariance": ("covariance term of the loss, unweighted", "1"),
    "loss_on_diag": ("Barlow Twins on-diagonal term sum_i (1 - C_ii)^2", "1"),
    "loss_off_diag": ("Barlow Twins off-diagonal term sum_{i!=j} C_ij^2, unweighted", "1"),
    "sigma_corr_mean_sq_backbone": ("mean squared off-diagonal correlation, backbone", "1"),
    "sigma_floor_backbone": ("estimator floor 1/(N-1) of sigma_corr_mean_sq_backbone", "1"),
    "dead_dims_backbone": ("dead dimensions of backbone features", "1"),
    "sigma_dist_pearson_backbone": ("||Sigma - I||_F^2 of backbone features, Pearson", "1"),
    "sigma_dist_moment_backbone": ("||Sigma - I||_F^2 of backbone features, moment", "1"),
    "sigma_dist_pearson_per_dim_backbone": ("||Sigma - I||_F^2 / D, backbone, Pearson", "1"),
    "sigma_dist_moment_per_dim_backbone": ("||Sigma - I||_F^2 / D, backbone, moment", "1"),
    "sigma_offdiag_pearson_backbone": ("off-diagonal ||Sigma||_F^2, backbone, Pearson", "1"),
    "sigma_offdiag_moment_backbone": ("off-diagonal ||Sigma||_F^2, backbone, moment", "1"),
    "effective_rank_backbone": ("RankMe effective rank of backbone features", "1"),
    "effective_rank_centred_backbone": ("RankMe of the centred backbone features", "1"),
    "z_std_backbone": ("z_std of backbone features", "1"),
    # Closed forms of the literature (dynamics.models.stepwise_bt, dynamics.models.isoloss).
    "lambda_mode": ("eigenvalue gamma_j s_j^2 of W Gamma W^T per mode (Simon et al. 2023)", "1"),
    "lambda_mode_closed_form": ("closed-form lambda_mode (logistic in s_j^2)", "1"),
    "offdiag_norm": ("||offdiag(W Gamma W^T)||_F (0 from an aligned start)", "1"),
    "corr_eig_closed_form": ("closed-form corr_eig of the per-mode eigenvalue ODE", "1"),
    "feature_std": ("std of each output dimension, sqrt(C_jj) (population VICReg flow)", "1"),
    "feature_std_closed_form": ("closed-form feature_std of the aligned VICReg flow", "1"),
    # Bao 2025's cosine-loss modes beside Tian's L2 modes (dynamics.models.cosine_modes).
    "p_l2": ("eigenvalue p_j of W_p under Tian's L2 loss", "1"),
    "s_l2": ("eigenvalue s_j of F under Tian's L2 loss", "1"),
    "p_cos": ("eigenvalue p_j of W_p under the concentrated cosine loss", "1"),
    "s_cos": ("eigenvalue s_j of F under the concentrated cosine loss", "1"),
    "tau_cos": ("EMA target ratio tau_j under the concentrated cosine loss", "1"),
    "share_cos": ("p_j / max_k p_k under the cosine loss (the normalised spectrum)", "1"),
    "scale_residual": ("sum_j p_j^2 e^(2 eta t) - sum_j p_j(0)^2 (0: conserved)", "1"),
    "frozen_threshold": ("Tian's threshold with the cosine norms frozen at the state", "1"),
}


_MODE_VARIABLES = (
    "wp_eig_real",
    "wp_eig_imag",
    "wp_singular",
    "wp_sym_eig",
    "alignment_cos",
    "corr_eig",
    "p",
    "s",
    "invariant_residual",
    "invariant_constant",
    "p_star_plus",
    "p_star_minus",
    "mode_collapsed",
    "mode_converged",
    "fhat_eig",
    "lambda_mode",
    "lambda_mode_closed_form",
    "corr_eig_closed_form",
    "feature_std",
    "feature_std_closed_form",
    "p_l2",
    "s_l2",
    "p_cos",
    "s_cos",
    "tau_cos",
    "share_cos",
    "mode_survives",
    "mode_weight",
    "mode_weight_initial",
    "mode_p_initial",
    "mode_tau_initial",
    "mode_x",
    "mode_x_aug",
    "mode_p_critical",
    "threshold_eta",
    "threshold_weight_decay",
    "threshold_weight_decay_diagonal",
)

#: name -> the dimensions the variable ends with (absent: none, a value per axis point)
CORE_DIMS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_MODE_VARIABLES, (MODE,)),
    "wp": (ROW, COL),
    "wp_init": (ROW, COL),
    "conservation_C": (ROW, COL),
    "w": (ROW, INPUT),
    "w_target": (ROW, INPUT),
    "x_corr": (INPUT, INPUT_COL),
    "aug_cov": (INPUT, INPUT_COL),
    "x_corr_se": (INPUT, INPUT_COL),
    "pca_variance": (INPUT,),
    "aug_cov_se": (INPUT, INPUT_COL),
    "mode_direction": (MODE, INPUT),
    "eval_mean": (INPUT,),
    "eval_second_moment": (INPUT, INPUT_COL),
    "x1": (PAIR, INPUT),
    "w_up": (LAYER, ROW, COL),
    "x2": (PAIR, INPUT),
    "delta": (COMPONENT,),
    "delta_predicted": (COMPONENT,),
}
#: a linear encoder's weights behind a projector (rows: the encoder's output features h, not the
#: embedding's d rows of W_p): the dimensions they end with there
BEHIND_PROJECTOR: dict[str, tuple[str, ...]] = {
    "w": (FEATURE, INPUT),
    "w_target": (FEATURE, INPUT),
    "w_up": (LAYER, FEATURE, FEATURE_COL),
}
#: variables stored per mode by some models and as one value by others (tau: per mode in the
#: eigenmode models, <W_a, W>/||W||^2 in the matrix models)
PER_MODE_OPTIONAL = ("tau",)
#: sorted spectra: over ``rank`` where the result also has per-mode variables, else ``mode``
RANKED_VARIABLES = (
    "wp_eig_real",
    "wp_eig_imag",
    "wp_singular",
    "wp_sym_eig",
    "corr_eig",
    "fhat_eig",
)


def core_dims(name: str, dims: tuple[str, ...]) -> tuple[str, ...]:
    """The dimensions variable ``name`` with ``dims`` must end with (:data:`CORE_DIMS`, where a
    per-mode-optional variable may end with ``mode``, a spectrum with ``rank`` and an encoder
    weight behind a projector with :data:`BEHIND_PROJECTOR`'s)."""
    core = CORE_DIMS.get(name, ())
    if name in BEHIND_PROJECTOR and FEATURE in dims:
        return BEHIND_PROJECTOR[name]
    if name in PER_MODE_OPTIONAL and dims and dims[-1] == MODE:
        return (MODE,)
    if name in RANKED_VARIABLES and dims and dims[-1] == RANK:
        return (RANK,)
    return core


class SchemaError(ValueError):
    """A Dataset that does not follow the schema (a programming error, reported loudly)."""


def check(ds: xr.Dataset, extra_dims: tuple[str, ...] = ()) -> None:
    """Raise SchemaError unless every variable of ``ds`` follows the schema.

    Each data variable must be listed in :data:`VARIABLES`; it must end with its
    :data:`CORE_DIMS` and its other dimensions must be axes (:data:`AXES`) or ``extra_dims``
    (the swept parameters of a sweep, the grid variables of a phase diagram). Every dimension of
    the Dataset must be known or declared.
    """
    allowed = set(KNOWN_DIMS) | set(extra_dims)
    unknown_dims = [d for d in ds.dims if d not in allowed]
    if unknown_dims:
        raise SchemaError(f"unknown dimension(s) {unknown_dims}; declare them as extra_dims")
    leading = set(AXES) | set(extra_dims)
    for name, var in ds.data_vars.items():
        if name not in VARIABLES:
            raise SchemaError(f"variable {name!r} is not in the schema (symbolic.common.schema)")
        dims = var.dims
        core = core_dims(name, dims)
        if core and tuple(dims[-len(core) :]) != core:
            raise SchemaError(f"variable {name!r} has dims {dims}; it must end with {core}")
        stray = [d for d in dims[: len(dims) - len(core)] if d not in leading]
        if stray:
            raise SchemaError(f"variable {name!r} has dims {dims}: {stray} are not axes")


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Set ``long_name`` and ``units`` on every variable of ``ds`` listed in :data:`VARIABLES`."""
    for name, (long_name, units) in VARIABLES.items():
        if name in ds.variables:
            ds[name].attrs.setdefault("long_name", long_name)
            ds[name].attrs.setdefault("units", units)
    if TIME in ds.coords:
        ds[TIME].attrs.setdefault("long_name", "flow time t")
        ds[TIME].attrs.setdefault("units", "flow time t")
    return ds
