"""Estimators against values computed by hand."""

import numpy as np
import pytest

from pgbench.rl import estimators as est

# Two episodes in one batch: A has 3 steps and terminated; B has 2 steps and was truncated.
REWARDS = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 0.0]])
MASK = np.array([[True, True, True], [True, True, False]])


def test_discounted_cumsum_by_hand():
    # y2 = 3; y1 = 2 + .5*3 = 3.5; y0 = 1 + .5*3.5 = 2.75
    np.testing.assert_allclose(est.discounted_cumsum(np.array([1.0, 2.0, 3.0]), 0.5), [2.75, 3.5, 3.0])


def test_reward_to_go_by_hand_with_truncation_bootstrap():
    gamma = 0.5
    # B was truncated: V(s_2) = 4 is added as a reward gamma*4 = 2 after its last step.
    got = est.reward_to_go(REWARDS, MASK, gamma, bootstrap=np.array([0.0, 4.0]))
    # A: [1 + .5*2 + .25*3, 2 + .5*3, 3] = [2.75, 3.5, 3]
    # B: G1 = 1 + .5*4 = 3; G0 = 1 + .5*3 = 2.5; padding stays 0
    np.testing.assert_allclose(got, [[2.75, 3.5, 3.0], [2.5, 3.0, 0.0]])


def test_reward_to_go_undiscounted_is_suffix_sum():
    got = est.reward_to_go(REWARDS, MASK, 1.0)
    np.testing.assert_allclose(got, [[6.0, 5.0, 3.0], [2.0, 1.0, 0.0]])


def test_total_return_repeats_episode_return():
    np.testing.assert_allclose(est.total_return(REWARDS, MASK, 1.0), [[6, 6, 6], [2, 2, 0]])


def test_gae_by_hand_terminated_and_truncated():
    gamma, lam = 0.5, 0.5
    values = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]])
    terminated = np.array([True, False])
    final_values = np.array([9.0, 4.0])  # A's is ignored: it terminated
    got = est.gae(REWARDS, values, MASK, terminated, gamma, lam, final_values)
    # A: deltas = [1 + .5*1 - 1, 2 + .5*1 - 1, 3 + 0 - 1] = [.5, 1.5, 2]
    #    A2 = 2; A1 = 1.5 + .25*2 = 2; A0 = .5 + .25*2 = 1
    # B: deltas = [1 + .5*2 - 2, 1 + .5*4 - 2] = [0, 1]; A1 = 1; A0 = 0 + .25*1 = .25
    np.testing.assert_allclose(got, [[1.0, 2.0, 2.0], [0.25, 1.0, 0.0]])


def test_gae_lambda_one_is_bootstrapped_reward_to_go_minus_value():
    values = np.array([[1.0, 0.5, 0.25], [2.0, 2.0, 0.0]])
    terminated = np.array([True, False])
    final_values = np.array([0.0, 4.0])
    got = est.gae(REWARDS, values, MASK, terminated, 0.9, 1.0, final_values)
    rtg = est.reward_to_go(REWARDS, MASK, 0.9, bootstrap=np.where(terminated, 0.0, final_values))
    np.testing.assert_allclose(got, np.where(MASK, rtg - values, 0.0))


def test_batch_mean_baseline_is_mean_episode_return():
    psi = est.total_return(REWARDS, MASK, 1.0)
    assert est.batch_mean_baseline(psi, MASK) == pytest.approx((6 + 2) / 2)


def test_batch_mean_ignores_empty_slots():
    rewards = np.vstack([REWARDS, np.zeros((1, 3))])
    mask = np.vstack([MASK, np.zeros((1, 3), dtype=bool)])
    psi = est.total_return(rewards, mask, 1.0)
    assert est.batch_mean_baseline(psi, mask) == pytest.approx(4.0)


def test_ema_baseline_uses_only_past_batches():
    psi = est.total_return(REWARDS, MASK, 1.0)  # batch mean 4
    b, state = est.ema_baseline(np.nan, psi, MASK, weight=0.5)
    assert b == 0.0 and state == pytest.approx(4.0)  # first batch: no past, baseline 0
    b, state = est.ema_baseline(state, psi * 2, MASK, weight=0.5)  # batch mean 8
    assert b == pytest.approx(4.0) and state == pytest.approx(0.5 * 4 + 0.5 * 8)


def test_time_baseline_averages_running_episodes():
    psi = est.reward_to_go(REWARDS, MASK, 1.0)  # [[6,5,3],[2,1,0]]
    np.testing.assert_allclose(est.time_baseline(psi, MASK), [4.0, 3.0, 3.0])


def test_optimal_constant_baseline_by_hand():
    # b = sum g2 R / sum g2 = (1*6 + 3*2) / 4 = 3
    assert est.optimal_constant_baseline(np.array([6.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(3.0)
    # an empty slot (NaN weight) does not count
    assert est.optimal_constant_baseline(np.array([6.0, 2.0, np.nan]),
                                         np.array([1.0, 3.0, 100.0])) == pytest.approx(3.0)


def test_whiten_per_episode_matches_torch_style_std():
    psi = est.reward_to_go(REWARDS, MASK, 1.0)
    got = est.whiten_per_episode(psi, MASK, eps=0.0)
    # A: [6,5,3], mean 14/3, sample std sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2)/2) = sqrt(7/3)
    a = (np.array([6, 5, 3]) - 14 / 3) / np.sqrt(7 / 3)
    # B: [2,1], mean 1.5, sample std sqrt(0.5)
    b = (np.array([2, 1]) - 1.5) / np.sqrt(0.5)
    np.testing.assert_allclose(got[0], a)
    np.testing.assert_allclose(got[1, :2], b)
    assert got[1, 2] == 0.0


def test_normalize_advantages_per_leading_index():
    adv = np.array([[[1.0, 2.0, 3.0]], [[10.0, 20.0, 0.0]]])
    mask = np.array([[[True, True, True]], [[True, True, False]]])
    got = est.normalize_advantages(adv, mask, eps=0.0)
    np.testing.assert_allclose(got[0, 0], (np.array([1, 2, 3]) - 2) / np.sqrt(2 / 3))
    np.testing.assert_allclose(got[1, 0], [-1.0, 1.0, 0.0])


def test_long_discounted_sum_does_not_underflow():
    # 10000 steps at gamma 0.9: forming gamma**t would underflow; the filter must not care.
    r = np.ones((1, 10_000))
    got = est.reward_to_go(r, np.ones_like(r, dtype=bool), 0.9)
    assert np.isfinite(got).all()
    assert got[0, 0] == pytest.approx((1 - 0.9**10_000) / 0.1)
    assert got[0, -1] == 1.0
