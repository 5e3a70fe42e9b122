"""The observables of docs/theory.md section 3 against closed forms and numpy's own routines."""

import numpy as np
import pytest

from dynamics import observables as obs

rng = np.random.default_rng(0)


def test_asymmetry_of_symmetric_skew_and_mixed_matrices():
    a = rng.standard_normal((4, 4))
    sym, skew = a + a.T, a - a.T
    assert obs.asymmetry(sym) == pytest.approx(0.0, abs=1e-15)
    assert np.isinf(obs.asymmetry(skew))
    assert obs.asymmetry(np.zeros((4, 4))) == 0.0  # the value stated for W_p = 0
    # ||(S + K) - (S + K)^T|| / ||(S + K) + (S + K)^T|| = ||K|| / ||S|| for symmetric S, skew K
    assert obs.asymmetry(sym + 0.3 * skew) == pytest.approx(
        0.3 * np.linalg.norm(skew) / np.linalg.norm(sym)
    )


def test_alignment_is_the_sign_of_the_eigenvalue_for_commuting_matrices():
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    corr = q @ np.diag([5.0, 4, 3, 2, 1]) @ q.T
    wp = q @ np.diag([0.5, -0.2, 0.7, 1.0, -0.1]) @ q.T
    np.testing.assert_allclose(obs.alignment_cos(wp, corr), [1, -1, 1, 1, -1], atol=1e-12)
    assert obs.commutator_norm(corr, wp) == pytest.approx(0.0, abs=1e-14)


def test_alignment_of_a_rotation_is_its_cosine():
    theta = 0.4
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(obs.alignment_cos(rot, np.diag([2.0, 1.0])), np.cos(theta))


def test_eigenvalues_sorted_by_real_part_and_batched():
    """The schema's order: decreasing real part, ties by decreasing imaginary part."""
    wp = np.stack([np.diag([0.1, -3.0, 2.0]), np.array([[0, -2.0, 0], [2.0, 0, 0], [0, 0, 1.0]])])
    eig = obs.predictor_eigenvalues(wp)
    np.testing.assert_allclose(eig[0], [2.0, 0.1, -3.0])
    np.testing.assert_allclose(eig[1], [1.0, 2.0j, -2.0j], atol=1e-12)


def test_collapsed_modes_use_the_largest_magnitude_so_far():
    """A spectrum decaying as a whole is collapsed once below 2% of its earlier largest value."""
    t = np.arange(6.0)
    eig = np.column_stack([np.exp(-t), 0.5 * np.exp(-t)])
    mask = obs.collapsed_modes(eig)
    np.testing.assert_array_equal(mask[:, 0], np.exp(-t) < 0.02)
    np.testing.assert_array_equal(mask[:, 1], 0.5 * np.exp(-t) < 0.02)


def test_pearson_and_moment_against_numpy():
    z = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 4)) + 1.0
    np.testing.assert_allclose(obs.pearson_correlation(z), np.corrcoef(z, rowvar=False))
    m = z.T @ z / 200
    np.testing.assert_allclose(obs.normalised_second_moment(z), m * 4 / np.trace(m))


def test_sigma_distances_closed_form():
    sigma = np.array([[1.0, 0.5], [0.5, 2.0]])
    d = obs.sigma_distances(sigma)
    assert d["dist"] == pytest.approx(0.25 + 0.25 + 1.0)
    assert d["dist_per_dim"] == pytest.approx(1.5 / 2)
    assert d["offdiag"] == pytest.approx(0.5)


def test_collapsed_dimension_counts_as_unwhitened():
    z = np.column_stack([rng.standard_normal(50), np.full(50, 3.0)])
    sigma = obs.pearson_correlation(z)
    np.testing.assert_allclose(sigma, [[1, 0], [0, 0]])


def test_effective_rank_closed_forms():
    # equal singular values: entropy log d (up to RankMe's 1e-7)
    q, _ = np.linalg.qr(rng.standard_normal((30, 6)))
    assert obs.effective_rank(q) == pytest.approx(6.0, rel=1e-5)
    # rank one: 1
    assert obs.effective_rank(np.outer(np.ones(10), np.arange(1.0, 5))) == pytest.approx(
        1.0, rel=1e-5
    )


def test_z_std_isotropic_and_collapsed():
    z = rng.standard_normal((20000, 16))
    assert obs.z_std(z) == pytest.approx(1.0, rel=0.02)
    assert obs.z_std(np.tile(rng.standard_normal(16), (100, 1))) == pytest.approx(0.0, abs=1e-12)


def test_conservation_residual_is_zero_on_the_law():
    f = rng.standard_normal((3, 10)) / np.sqrt(10)
    corr = f @ f.T
    vals, vecs = np.linalg.eigh(corr)
    wp = vecs @ np.diag(np.sqrt(vals)) @ vecs.T  # W_p^T W_p = F F^T
    assert obs.conservation_residual(wp, corr) == pytest.approx(0.0, abs=1e-12)
    # F1 = [f_1 ... f_n]/sqrt(n): rows-as-samples embeddings z = sqrt(n) F1^T
    assert obs.feature_correlation(np.sqrt(10) * f.T) == pytest.approx(corr)


def test_a_common_offset_kills_no_dimension_and_is_not_collapse():
    """iid N(0, I_64) with an offset of 60 on one coordinate: every dimension alive (centred
    std), not collapsed, mean squared correlation at its floor 1/(N - 1) (the uncentred rule
    marked all 64 dead)."""
    z = np.random.default_rng(4).standard_normal((2000, 64))
    z[:, 0] += 60.0
    assert obs.alive_dimensions(z).all()
    assert not obs.representation_collapsed(z)
    assert obs.mean_squared_correlation(z) == pytest.approx(1 / 1999, rel=0.1)


def test_rank_one_collapse_with_both_signs_is_collapse():
    """z = s 1^T + 1e-3 noise, s = +-1: z_std stays near 1 (it misses it), the centred
    effective rank is about 1, and the one criterion says collapsed."""
    gen = np.random.default_rng(5)
    s = gen.choice([-1.0, 1.0], 500)
    z = np.outer(s, np.ones(16)) + 1e-3 * gen.standard_normal((500, 16))
    assert obs.z_std(z) > 0.9
    assert obs.centred_effective_rank(z) < 1.1
    assert obs.representation_collapsed(z)
    assert not obs.representation_collapsed(gen.standard_normal((500, 16)))


def test_the_centred_rank_does_not_count_an_offset():
    z = np.random.default_rng(6).standard_normal((2000, 64))
    shifted = z + 5.0
    assert obs.centred_effective_rank(shifted) == pytest.approx(obs.centred_effective_rank(z))
    assert obs.effective_rank(z) - obs.effective_rank(shifted) > 10  # RankMe counts it
