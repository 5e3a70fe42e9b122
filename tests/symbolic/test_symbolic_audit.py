"""symbolic.claims: each verdict of docs/theory.md section 4 and its corrected statement.

The expected verdicts below are worked out by hand from the definitions (independent of the
code that computes them); the corrected statements must carry the computed key expressions.
"""

from __future__ import annotations

import re

import pytest

from symbolic import claims

#: docs/theory.md section 4's list of claims: each id and, in its words, what the claim is about.
THEORY_CLAIMS = {
    "a": "NT-Xent",
    "b": "VICReg variance hinge gradient",
    "c": "BatchNorm leakage",
    "d": "EMA steady-state gap",
    "e": "Liu Theorem 3.1",
    "f": "optimal linear predictor",
    "g": "Barlow Twins off-diagonal vs VICReg covariance",
    "h": "Garrido: L_nc = L_c + N - M",
    "j": "BYOL full collapse",
}


def words(text: str) -> set[str]:
    """Lower-case words and numbers (3.1 stays one), punctuation and hyphens dropped."""
    return set(re.findall(r"\d+(?:\.\d+)*|\w+", text.lower()))


@pytest.fixture(scope="module")
def verdicts():
    return {v.id: v for v in claims.audit(seed=0)}


def test_every_claim_of_spec_section_4_is_audited(verdicts):
    assert list(verdicts) == ["a", "b", "c", "d", "e", "f", "g", "h", "j"]
    for v in verdicts.values():
        assert v.verdict in ("true", "false", "true_if")
        assert v.claim and v.corrected_statement and v.method and v.evidence
        assert (v.condition is not None) == (v.verdict == "true_if")


def test_a_nt_xent_similarity_gradient(verdicts):
    v = verdicts["a"]
    # negatives: exactly p_m/tau; the positive sits in Z too, so it gets (p_+ - 1)/tau
    assert v.verdict == "true_if"
    assert v.evidence["holds_for_m"] == {"1": True, "2": False, "3": True}
    assert v.evidence["abs_error_negatives"] < 1e-12
    assert v.evidence["abs_error_positive"] == pytest.approx(10.0)  # 1/tau at tau = 0.1
    assert v.formulas["negative"] == "p_m/tau"
    assert v.formulas["positive"] == "(p_+ - 1)/tau"
    assert v.evidence["full_loss_symmetric_form_confirmed"]


def test_b_vicreg_hinge_gradient(verdicts):
    v = verdicts["b"]
    # the seed's biased Var gives exactly the claim; the official unbiased Var gives N-1
    assert v.verdict == "true_if"
    assert v.evidence["seed_estimator_ratio"] == {"N=3,d=2": "1", "N=4,d=3": "1"}
    assert v.evidence["official_estimator_ratio"] == {"N=3,d=2": "3/2", "N=4,d=3": "4/3"}
    assert "d (N - 1) sigma_j" in v.corrected_statement
    assert "2 d (N-1) sigma_j" in v.corrected_statement  # the official halving


def test_c_batchnorm_leakage(verdicts):
    v = verdicts["c"]
    assert v.verdict == "true_if"
    assert v.evidence["claim_exact_with_constant_sigma"]
    assert not v.evidence["claim_exact_for_batchnorm_layer"]
    assert v.evidence["corrected_jacobian_exact"] and v.evidence["features_independent"]
    assert v.formulas["offdiagonal"] == "(-zhat_i*zhat_j - 1)/(N*s)"
    assert v.evidence["seed_identity_exact"]


def test_d_ema_gap(verdicts):
    v = verdicts["d"]
    assert v.verdict == "true_if"
    assert v.evidence["continuous_matches"] and v.evidence["discrete_before_step_matches"]
    assert not v.evidence["discrete_after_step_matches"]
    # tau = 0.99, g = 0.01: -g/(1 - tau) = -1 and BYOL's order -tau g/(1 - tau) = -0.99
    assert v.evidence["iterated_gap_before"] == pytest.approx(-1.0, rel=1e-9)
    assert v.evidence["iterated_gap_after"] == pytest.approx(-0.99, rel=1e-9)
    assert v.formulas["discrete_after"] == "g*tau/(tau - 1)"


def test_e_liu_theorem(verdicts):
    v = verdicts["e"]
    assert v.verdict == "true_if"
    ev = v.evidence
    assert ev["free_features_scaled_exact"] and ev["free_features_unscaled_exact_alpha_1"]
    assert not ev["free_features_unscaled_exact_any_alpha"]
    assert not ev["linear_network_random_data_exact"]
    assert ev["linear_network_whitened_data_exact"]
    assert ev["integrated_relative_residual"] < 1e-8
    assert "W_p^T W_p/alpha_p - F1 F1^T" in v.corrected_statement


def test_f_optimal_predictor(verdicts):
    v = verdicts["f"]
    assert v.verdict == "true_if"
    assert v.evidence["mse_gradient_exactly_zero"]
    assert v.evidence["cosine_gradient_relative_norm"] > 1e-3
    assert v.evidence["identity_with_unequal_views"]
    assert "Sigma_21 = Sigma_11" in v.corrected_statement


def test_g_barlow_vicreg_ratio(verdicts):
    v = verdicts["g"]
    assert v.verdict == "true"
    # d ((N-1)/N)^2 worked out by hand for each size
    assert v.evidence["ratios"] == {
        "N=3,d=2": "8/9",
        "N=4,d=3": "27/16",
        "N=5,d=2": "32/25",
        "N=6,d=4": "25/9",
    }


def test_h_garrido(verdicts):
    v = verdicts["h"]
    assert v.verdict == "true"
    assert v.evidence["identity_exact"] and v.evidence["row_and_column_sums_of_squares_equal"]
    assert v.evidence["doubly_normalised_abs_error"] < 1e-9
    assert v.evidence["unit_columns_abs_error"] < 1e-12
    assert v.evidence["unit_rows_abs_error"] < 1e-12
    assert "M = N" in v.corrected_statement


def test_j_byol_collapse(verdicts):
    v = verdicts["j"]
    assert v.verdict == "true_if"
    assert v.evidence["pre_bn_gradient_exactly_zero"]
    assert v.evidence["generic_predictor_loss"] > 0.1
    assert v.evidence["generic_predictor_max_gradient"] > 0.1
    assert v.evidence["aligned_predictor_loss"] < 1e-20
    assert v.evidence["aligned_predictor_max_gradient"] < 1e-20
    assert v.evidence["zero_output_loss"] == pytest.approx(4.0)


def test_decide():
    assert claims.decide(True, True) == "true"
    assert claims.decide(False, True) == "true_if"
    assert claims.decide(False, False) == "false"


def test_registry_lists_the_claims_in_the_order_of_the_theory():
    """Registered ids in docs/theory.md's order (the families register b, g, c, j, ... out of
    order)."""
    assert list(claims.CLAIMS) == list(THEORY_CLAIMS)
    for claim_id, registered in claims.CLAIMS.items():
        assert registered.id == claim_id
        missing = words(THEORY_CLAIMS[claim_id]) - words(registered.title)
        assert not missing, f"({claim_id}) title {registered.title!r} lacks {missing}"
        assert registered.check.__doc__, f"({claim_id}) has no docstring"
        assert registered.check.__doc__.startswith(f"({claim_id}) ")


def test_claim_refuses_a_duplicate_id():
    before = dict(claims.CLAIMS)
    duplicate = r"claim id 'g' registered twice: by .*barlow_vicreg_ratio"
    with pytest.raises(ValueError, match=duplicate):

        @claims.claim("g", "another Barlow Twins claim")
        def another(rng):
            raise AssertionError("never run")

    assert claims.CLAIMS == before
    with pytest.raises(ValueError, match="single character"):
        claims.claim("k2", "an id audit() cannot seed")


def test_registered_claim_fills_id_title_and_checks_the_verdict():
    def check(rng, verdict="true"):
        return claims.Verdict(
            claim="x",
            source="s",
            verdict=verdict,
            condition=None,
            corrected_statement="x",
            method="m",
            evidence={"n": 1},
        )

    verdict = claims.Claim("z", "a test claim", check)(None)
    assert (verdict.id, verdict.title) == ("z", "a test claim")
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        claims.Claim("z", "a test claim", lambda rng: check(rng, "maybe"))(None)
