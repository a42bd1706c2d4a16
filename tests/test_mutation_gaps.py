"""Tests added for mutants that survived the first mutation run (docs/testing.md lists them).

Each checks values computed by hand on inputs the older tests did not exercise: several seeds
at once (leading axes), empty episode slots, zero denominators.
"""

import numpy as np
import pytest

from pgbench.rl import estimators as est


def test_optimal_constant_baseline_per_seed_with_empty_slots_and_a_zero_score():
    """Seed 0: weights (6, 2, empty), squared score norms (1, 3, 5): the empty slot's 5 must not
    count, b = (6*1 + 2*3) / (1 + 3) = 3. Seed 1: every score 0, so no episode informs b: 0.
    Seed 2: a denominator below 1, (2*0.25 + 4*0.25 + 0) / 0.5 = 3."""
    w = np.array([[6.0, 2.0, np.nan], [1.0, 4.0, 7.0], [2.0, 4.0, 9.0]])
    g2 = np.array([[1.0, 3.0, 5.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.0]])
    b = est.optimal_constant_baseline(w, g2)
    assert b.dtype == np.float64 and b.shape == (3,)
    np.testing.assert_array_equal(b, [3.0, 0.0, 3.0])


def test_whiten_per_episode_per_seed_with_one_step_and_empty_episodes():
    """Shape (seeds, episodes, T) = (2, 2, 3). Seed 0: [1, 3] (mean 2, Bessel variance
    ((1-2)^2 + (3-2)^2) / 1 = 2, so +-1/sqrt(2)) and a one-step episode [5] (becomes 0).
    Seed 1: [2, 4, 6] (mean 4, variance (4 + 0 + 4) / 2 = 4: -1, 0, 1) and an empty slot.
    With eps = 0.5 the std 2 becomes 2.5: -0.8, 0, 0.8."""
    psi = np.array([[[1.0, 3.0, 0.0], [5.0, 0.0, 0.0]], [[2.0, 4.0, 6.0], [0.0, 0.0, 0.0]]])
    mask = np.array([[[1, 1, 0], [1, 0, 0]], [[1, 1, 1], [0, 0, 0]]], dtype=bool)
    r = 1 / np.sqrt(2)
    expected = np.array([[[-r, r, 0.0], [0.0, 0.0, 0.0]], [[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(est.whiten_per_episode(psi, mask), expected, rtol=1e-7, atol=0)
    np.testing.assert_allclose(est.whiten_per_episode(psi, mask, eps=0.5)[1, 0], [-0.8, 0.0, 0.8],
                               rtol=1e-12, atol=0)


def test_time_baseline_is_zero_where_no_episode_runs():
    """Episodes psi = [1, 5] and [3] padded to T = 4: b_0 = (1 + 3) / 2 = 2, b_1 = 5 (one episode
    runs), b_2 = b_3 = 0 (none runs)."""
    psi = np.array([[1.0, 5.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(est.time_baseline(psi, mask), [2.0, 5.0, 0.0, 0.0])


def test_normalize_advantages_by_hand_with_the_default_eps():
    """Valid advantages 1, 3, 5 (one padding step): mean 3, population variance 8/3, so
    (-2, 0, 2) / sqrt(8/3) = (-sqrt(1.5), 0, sqrt(1.5)); eps = 1e-8 moves them by < 1e-8."""
    adv = np.array([[1.0, 3.0], [5.0, 7.0]])
    mask = np.array([[1, 1], [1, 0]], dtype=bool)
    s = np.sqrt(1.5)
    np.testing.assert_allclose(est.normalize_advantages(adv, mask), [[-s, 0.0], [s, 0.0]],
                               rtol=1e-7, atol=1e-12)


def test_seeds_needed_by_hand_on_an_asymmetric_interval():
    """Estimate 2 with interval [1, 3.5] and threshold 1.5: the half facing the threshold is the
    lower one, h = 2 - 1 = 1 (not 1.5, the upper half), d = 0.5, so n' = n (h/d)^2 = 4n."""
    from pgbench.stats.survival import seeds_needed

    assert seeds_needed(2.0, 1.0, 3.5, 1.5, 3) == 12.0
    assert seeds_needed(2.0, 1.0, 3.5, 1.5, 1) == 4.0  # one seed is a valid count
    assert np.isnan(seeds_needed(2.0, 1.0, 3.5, 1.5, 0))  # no seeds: nothing to scale
    assert seeds_needed(2.0, 0.5, 3.5, 1.5, 3) == 27.0  # h = 1.5, d = 0.5: 3 * 9


def test_total_return_default_is_the_plain_sum_of_rewards():
    """Without a gamma, R(tau) is the undiscounted sum (the slides' REINFORCE): rewards 1, 2, 4
    give 7 on every valid step, 0 on the padding step."""
    r = est.total_return(np.array([[1.0, 2.0, 4.0, 0.0]]), np.array([[1, 1, 1, 0]], dtype=bool))
    np.testing.assert_array_equal(r, [[7.0, 7.0, 7.0, 0.0]])


def test_reward_to_go_takes_a_float32_critic_value_in_float64():
    """A critic's V(s_T) often arrives as float32. The bootstrap term gamma * V is formed in
    float64: with gamma = 0.9 and V = float32(0.1) (= 0.100000001490116...), G_0 of a one-step
    episode with reward 0 is 0.9 * float(V) exactly (0.09000000134110452). Forming gamma * V in
    float32 (a float32 array times a Python float stays float32) gives 0.08999999612569809."""
    v = np.array([0.1], dtype=np.float32)
    g = est.reward_to_go(np.array([[0.0]]), np.array([[True]]), 0.9, bootstrap=v)
    assert g.dtype == np.float64
    assert g[0, 0] == 0.9 * float(v[0])
    assert float((0.9 * v)[0]) != 0.9 * float(v[0])  # the two routes differ, so this can fail


# -- training/update.py's advantages: every baseline on one hand-made batch ------------------
def _gamma_one_batch():
    """One seed, gamma = 1: episode 0 rewards [1, 1, 1] (G = 3, 2, 1), episode 1 rewards [2, 2]
    then padding (G = 4, 2)."""
    import torch

    from pgbench.training.rollout import Batch

    mask = np.array([[[True, True, True], [True, True, False]]])
    return Batch(obs=torch.zeros(1, 2, 3, 4), actions=torch.zeros(1, 2, 3, dtype=torch.int64),
                 rewards=np.array([[[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]]]), mask=mask,
                 terminated=np.array([[True, True]]), truncated=np.array([[False, False]]),
                 lengths=mask.sum(-1), final_obs=torch.zeros(1, 2, 4), dropout_masks=None)


_R = 1 / np.sqrt(2)


@pytest.mark.parametrize("baseline, expected", [
    # batch mean of the episodes' mean G: (2 + 3) / 2 = 2.5
    ("mean", [[[0.5, -0.5, -1.5], [1.5, -0.5, 0.0]]]),
    # each episode: minus its mean G (2; 3), over its Bessel std (1; sqrt(2))
    ("whiten", [[[1.0, 0.0, -1.0], [_R, -_R, 0.0]]]),
    # b_t over the episodes running at t: (3 + 4) / 2, (2 + 2) / 2, 1
    ("time", [[[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0]]]),
    # Levine's b with |g|^2 = (1, 3) and episode means (2, 3): (1*2 + 3*3) / 4 = 2.75
    ("optimal", [[[0.25, -0.75, -1.75], [1.25, -0.75, 0.0]]]),
    # the running baseline's previous state, 1
    ("ema", [[[2.0, 1.0, 0.0], [3.0, 1.0, 0.0]]]),
])
def test_update_advantages_with_each_baseline_by_hand(baseline, expected):
    """``update.advantages`` (reward-to-go, no critic) for each baseline, the values worked out
    in the comments above; the critic's target is G itself, and only ``ema`` moves its state:
    0.95 * 1 + 0.05 * 2.5 = 1.075."""
    from pgbench.rl.config import make_config
    from pgbench.training.update import advantages

    cfg = make_config("rtg_baseline", {"returns": "rtg", "baseline": baseline, "gamma": 1.0,
                                       "ema_weight": 0.05, "normalize_advantages": False})
    adv, target, ema = advantages(cfg, _gamma_one_batch(), None, None, np.array([1.0]),
                                  score_sqnorm=np.array([[1.0, 3.0]]))
    np.testing.assert_allclose(adv, expected, rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(target, [[[3.0, 2.0, 1.0], [4.0, 2.0, 0.0]]])
    np.testing.assert_allclose(ema, [1.075] if baseline == "ema" else [1.0], rtol=1e-15)


def test_standard_gae_reads_end_flags_given_as_numbers():
    """``training/algorithms/advantages.gae`` converts its end flags to bool, so 0/1 floats (how
    a float buffer stores them) mean what bools do: the worked example of
    ``test_gae_worked_example_truncated_bootstraps`` (gamma 0.5, lambda 1, rewards 1, values 0,
    next values 0, 4, 8, truncated at t = 1) gives A = (2.5, 3, 5) either way."""
    from pgbench.training.algorithms.advantages import gae

    def col(x):
        return np.asarray(x, dtype=np.float64)[:, None]

    adv, ret = gae(col([1, 1, 1]), col([0, 0, 0]), col([0, 4, 8]), col([0, 0, 0]), col([0, 1, 0]),
                   0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [2.5, 3.0, 5.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ret[:, 0], [2.5, 3.0, 5.0], rtol=0, atol=1e-12)


# -- stats/survival.py ------------------------------------------------------------------------
def test_kaplan_meier_band_is_exactly_one_before_the_first_success():
    """Times 1 (censored), 2, 3: at t = 1 no run has succeeded, so S = 1 is known exactly and
    the band is [1, 1] there (scipy's log-log band is undefined at S = 1); at t = 3, S = 0."""
    from pgbench.stats.survival import kaplan_meier

    km = kaplan_meier([1, 2, 3], [True, False, False])
    np.testing.assert_array_equal(km.times, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(km.survival, [1.0, 0.5, 0.0])
    assert km.band_low[0] == 1.0 and km.band_high[0] == 1.0
    assert km.band_low[2] == 0.0 and km.band_high[2] == 1.0


def test_km_median_keeps_its_confidence_and_refuses_no_runs():
    """The median's record says which confidence its interval has; no runs is an error that
    says so."""
    from pgbench.stats.survival import km_median

    assert km_median([1, 2, 3], [False, False, False], confidence=0.9).confidence == 0.9
    with pytest.raises(ValueError, match="at least one observation"):
        km_median([], [])


def test_median_ratio_ci_ends_are_attainable_ratios_and_a_zero_median_gives_inf():
    """``median_ratio_ci`` takes its ends with ``method="lower"`` / ``"higher"``, so each end is
    one resample's ratio a_i / b_j of two of the observed times, never an interpolation between
    two resamples. Checked with 3 resamples (where interpolating would land between two
    ratios) on 10 seeds. An arm whose times are all 0 has median 0: the ratio's upper end is
    inf, as is the estimate."""
    from pgbench.stats.survival import median_ratio_ci

    a, b = [3.0, 5.0, 7.0, 11.0, 13.0], [2.0, 3.0, 7.0, 17.0, 19.0]
    attainable = {x / y for x in a for y in b}
    for seed in range(10):
        r = median_ratio_ci(a, [False] * 5, b, [False] * 5, rng=np.random.default_rng(seed),
                            n_resamples=3)
        assert r.low in attainable and r.high in attainable
    r = median_ratio_ci([1.0, 2.0, 3.0], [False] * 3, [0.0, 0.0, 0.0], [False] * 3,
                        rng=np.random.default_rng(0), n_resamples=20)
    assert r.high == np.inf and r.estimate == np.inf


# -- stats/smallsample.py ---------------------------------------------------------------------
def test_permutation_shift_ci_p_value_exact_and_with_random_arrangements():
    """Exact: a = (3, 4, 5), b = (0, 1, 2) has C(6, 3) = 20 arrangements and the observed one
    alone has the largest statistic, so p = 2 * 1/20 = 0.1. Random: 11 runs a side has
    C(22, 11) = 705,432 > MAX_EXACT arrangements, so N_RANDOM are drawn (plus the observed one).
    a = b + 100 with b = 0..10: again only the observed arrangement reaches the largest
    statistic, so p = 2/20001 unless a draw repeats it (a 2.8% chance per seed; twice: 0.04%),
    hence the bound 4/20001; the estimate 100 lies inside the interval."""
    from pgbench.stats.smallsample import N_RANDOM, permutation_shift_ci

    r = permutation_shift_ci([3.0, 4.0, 5.0], [0.0, 1.0, 2.0], rng=np.random.default_rng(0))
    assert r.exact and r.n_arrangements == 20 and r.p_two_sided == pytest.approx(0.1, rel=1e-12)
    b = np.arange(11.0)
    r = permutation_shift_ci(b + 100.0, b, rng=np.random.default_rng(0))
    assert not r.exact and r.n_arrangements == N_RANDOM + 1
    assert r.estimate == 100.0 and r.low < 100.0 < r.high
    assert 2 / (N_RANDOM + 1) <= r.p_two_sided <= 4 / (N_RANDOM + 1)


def test_fraction_by_ci_records_and_both_branches():
    """Exact branch: 2 of 4 runs solved by t = 4, none censored before it: Clopper-Pearson
    [Beta(0.025; 2, 3), Beta(0.975; 3, 2)] = [0.0675860, 0.9324140] (symmetric: k = n/2); 0/1
    float flags mean what bools do. Kaplan-Meier branch: times 1 (censored), 5, 6, at t = 3:
    nothing solved yet and 2 runs followed to t, so high = 1 - 0.025^(1/2) = 0.8418861."""
    from pgbench.stats.smallsample import fraction_by_ci

    f = fraction_by_ci([1.0, 2.0, 5.0, 9.0], [0.0, 0.0, 0.0, 1.0], 4.0)
    assert (f.fraction, f.n, f.solved_by, f.censored_before) == (0.5, 4, 2, 0)
    assert f.method == "Clopper-Pearson (exact)"
    assert f.low == pytest.approx(0.0675860, abs=1e-7) and f.low == pytest.approx(1 - f.high, abs=1e-12)
    f = fraction_by_ci([1.0, 5.0, 6.0], [True, False, False], 3.0)
    assert (f.fraction, f.n, f.solved_by, f.censored_before) == (0.0, 3, 0, 1)
    assert (f.low, f.high) == (0.0, pytest.approx(1 - 0.025 ** 0.5, rel=1e-12))
    assert f.method == "no run solved by then: exact bound from the 2 runs followed to it"


# -- gradstudy/terms.py -----------------------------------------------------------------------
def test_leave_one_out_mean_on_one_and_three_axes():
    """The docstring's example, (1, 2, 6) -> (8/2, 7/2, 3/2), and the same row inside a
    (2, 1, 3) array (the mean runs over the last axis, whatever the leading ones)."""
    from pgbench.gradstudy.terms import leave_one_out_mean

    np.testing.assert_array_equal(leave_one_out_mean(np.array([1.0, 2.0, 6.0])), [4.0, 3.5, 1.5])
    x = np.array([[[1.0, 2.0, 6.0]], [[3.0, 3.0, 0.0]]])
    np.testing.assert_array_equal(leave_one_out_mean(x), [[[4.0, 3.5, 1.5]], [[1.5, 1.5, 3.0]]])


def test_collect_pool_gathers_rounds_until_it_has_enough_and_terms_use_the_dropout_masks():
    """A collector of 3 episodes a round asked for 7: three rounds, trimmed to the first 7 in
    order. ``episode_terms``' score of a dropout policy equals ``per_episode_grads`` with the
    episodes' own masks."""
    import torch

    from pgbench.core.seeding import seed_sequences
    from pgbench.gradstudy.terms import collect_pool, episode_terms
    from pgbench.rl.gradients import per_episode_grads
    from pgbench.rl.policies import PolicySpec, init_policy
    from pgbench.training.rollout import Collector

    spec = PolicySpec(obs_dim=4, act_dim=2, discrete=True, hidden=(8,), dropout=0.5)
    params = init_policy(spec, [torch.Generator().manual_seed(0)])

    def collector():
        streams = seed_sequences(0)
        return Collector("CartPole-v1", spec, 3, {"env": [streams["env"]], "noise": [streams["noise"]]})

    c = collector()
    try:
        pool = collect_pool(c, params, 7)
    finally:
        c.close()
    c = collector()
    try:
        rounds = [c.collect_round(params) for _ in range(3)]
    finally:
        c.close()
    lengths = np.concatenate([r.lengths[0] for r in rounds])[:7]
    assert pool.lengths.shape == (1, 7)
    np.testing.assert_array_equal(pool.lengths[0], lengths)
    terms = episode_terms(params, spec, pool, (1,), with_time_baseline=False)
    score = per_episode_grads(params, spec, pool, torch.from_numpy(pool.mask).float())[0]
    np.testing.assert_allclose(terms.score, score.double().numpy(), rtol=1e-5, atol=1e-5)


# -- gradstudy/batches.py ---------------------------------------------------------------------
def test_mean_difference_test_by_hand_with_fewer_batches_than_coordinates_differ():
    """d = rows (1, 0), (2, 0), (3, 0): n = 3 batches of P = 2 coordinates. mean (2, 0), T = 4,
    tr S = 1 (column 0's variance, ddof 1), so |E d|^2 ~ 4 - 1/3. Resamples: counts (1, 1, 1)
    (mean unchanged: T* = 0) and (3, 0, 0) (mean (1, 0): T* = 1 * 3/2). Neither reaches 4:
    p = 1/3; the 95% null quantile ("higher") is 1.5."""
    from pgbench.gradstudy.batches import mean_difference_test

    d = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    r = mean_difference_test(d, np.array([[1, 1, 1], [3, 0, 0]]), 0.95)
    assert r.norm == 2.0 and r.pvalue == pytest.approx(1 / 3, rel=1e-15)
    assert r.sq_unbiased == pytest.approx(4 - 1 / 3, rel=1e-14)
    assert r.null_high == pytest.approx(np.sqrt(1.5), rel=1e-14)


def test_reference_warms_the_running_mean_with_the_trainers_default_weight():
    """Returns 1, 2, 3, 4 in batches of 2 (means 1.5, 3.5): the running mean starts at 1.5 and
    becomes 0.95 * 1.5 + 0.05 * 3.5 = 1.6 with the trainer's weight 0.05."""
    from pgbench.gradstudy.batches import Reference
    from pgbench.gradstudy.terms import EpisodeTerms

    ret = np.array([1.0, 2.0, 3.0, 4.0])
    terms = EpisodeTerms(score=np.ones((4, 1)), rtg_grad=np.ones((4, 1)), ret=ret, rtg_mean=ret)
    ref = Reference.from_terms(terms, 2, "vanilla", ks=(2,))
    assert ref.constants["ema_weight"] == 0.05
    assert ref.constants["ema_start"][2]["ema_baseline"] == pytest.approx(1.6, rel=1e-14)


# -- gradstudy/exactstudy.py ------------------------------------------------------------------
def test_exact_values_use_the_given_fixed_baselines():
    """A constant baseline of 0 is no baseline: with ``constants`` setting both fixed baselines
    to 0, their exact laws equal vanilla REINFORCE's (mean and covariance), at K = 1 and 2, on
    the first tiny MDP; with the exact constants they differ."""
    from pgbench.gradstudy import exactstudy as xs
    from pgbench.gradstudy import tinymdp

    mdp = tinymdp.get_mdp(next(iter(tinymdp.TINY_MDPS)))
    params = mdp.policy_params(0)
    names = ["vanilla", "fixed_baseline", "fixed_optimal_baseline"]
    _, zero = xs.exact_values(mdp, params, (1, 2), names,
                              constants={"fixed_baseline": 0.0, "fixed_optimal_baseline": 0.0})
    _, exact = xs.exact_values(mdp, params, (1, 2), names)
    for k in (1, 2):
        for name in names[1:]:
            np.testing.assert_allclose(zero[name, k][0], zero["vanilla", k][0], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(zero[name, k][1], zero["vanilla", k][1], rtol=1e-12, atol=1e-12)
        assert not np.allclose(exact["fixed_baseline", k][1], exact["vanilla", k][1])


# -- claims/gradient_statistics.py ------------------------------------------------------------
def test_gradient_statistics_helpers_by_hand():
    """Per-batch-size text inverts only when asked (0 stays 0); a row without ``n_batches``
    counts 0 batches; no row at the claim's batch size is 'not run' naming that size; the exact
    and sampled rows of a claim are told apart by the ``env`` column when there is one."""
    import pandas as pd

    from pgbench.claims import gradient_statistics as gs
    from pgbench.claims.registry import NotRun, fmt

    rows = pd.DataFrame({"episodes_per_batch": [4, 2, 8], "ratio": [2.0, 4.0, 0.0]})
    assert gs._by_batch_size(rows, "ratio", False) == f"K=2: {fmt(4.0)}, K=4: {fmt(2.0)}, K=8: {fmt(0.0)}"
    assert gs._by_batch_size(rows, "ratio", True) == f"K=2: {fmt(0.25)}, K=4: {fmt(0.5)}, K=8: {fmt(0.0)}"
    assert gs._n_batches(pd.Series({"x": 1.0})) == 0
    assert gs._n_batches(pd.Series({"n_batches": 7.0})) == 7
    from types import SimpleNamespace

    with pytest.raises(NotRun, match="no rows with episodes_per_batch=16"):
        gs._found(SimpleNamespace(params={"episodes_per_batch": 16}), [])
    table = pd.DataFrame({"claim_id": ["c", "c"], "env": ["TwoStateChain", "CartPole-v1"],
                          "setting": ["default", "default"], "verdict": ["reproduced"] * 2})
    assert gs.agreement(table, ["TwoStateChain"]) == [
        {"claim_id": "c", "exact": {"reproduced": 1}, "sampled": {"reproduced": 1}, "agree": True}]


def test_percentile_interval_along_an_axis_ignores_nan_per_column():
    """Columns 0..10 and 10..0 with a NaN (an empty resample) in the second: at confidence 0.8
    the tails hold 0.1 each. Column 0, eleven values: the ``lower`` 0.1 quantile is the value
    at position 0.1 * 10 = 1, i.e. 1, the ``higher`` 0.9 quantile the one at 9, i.e. 9.
    Column 1 keeps ten values (0..9 after sorting, its 10 replaced by NaN): positions 0.9 and
    8.1 give ``lower`` 0 and ``higher`` 9."""
    from pgbench.stats.bootstrap import percentile_interval

    values = np.stack([np.arange(11.0), np.arange(10.0, -1.0, -1.0)], axis=1)
    values[0, 1] = np.nan
    low, high = percentile_interval(values, 0.8, axis=0)
    np.testing.assert_array_equal(low, [1.0, 0.0])
    np.testing.assert_array_equal(high, [9.0, 9.0])


def test_bootstrap_refuses_an_empty_sample_by_name():
    from pgbench.stats.bootstrap import bootstrap_ci

    with pytest.raises(ValueError, match="every sample needs at least one observation"):
        bootstrap_ci(np.mean, np.array([]), rng=np.random.default_rng(0))


def test_difference_of_means_ci_defaults_to_2000_resamples():
    """The default the report's intervals rely on: the same draws as an explicit 2000."""
    from pgbench.stats.bootstrap import difference_of_means_ci

    x, y = [3.0, 5.0, 8.0, 1.0], [2.0, 2.5, 4.0]
    default = difference_of_means_ci(x, y, rng=np.random.default_rng(7))
    explicit = difference_of_means_ci(x, y, rng=np.random.default_rng(7), n_resamples=2000)
    assert default == explicit
    assert default.estimate == pytest.approx(4.25 - 8.5 / 3)


# -- check-gate (issue 22's untried sample) -------------------------------------------------------
def test_compare_group_reports_the_difference_and_reads_a_drop_at_the_margin_as_not_beyond_it():
    """ref 8, 12 (x3): mean 10, margin 0.1 x 10 = 1; cur 7, 11 (x3): mean 9, so the difference is
    exactly -1 = -margin. With sd 2 on each side the interval straddles -1: inconclusive, and a
    drop exactly at the margin is not "beyond the margin"."""
    from pgbench.check import gate

    result = gate.compare_group([8.0, 12.0] * 3, [7.0, 11.0] * 3, np.random.default_rng(0))
    assert (result.ref_stat, result.cur_stat, result.diff, result.margin) == (10.0, 9.0, -1.0, 1.0)
    assert result.verdict == "inconclusive"
    assert result.ci_low < -1.0 < result.ci_high
    assert result.note == "interval contains the margin; add seeds"


def test_compare_group_note_when_neither_the_margin_nor_the_designed_drop_is_established():
    """ref 0, 20 (x3): mean 10, margin 1, and a designed drop of 30% = 3; cur 0, 18 (x3): mean 9,
    a difference of exactly -1. Resamples of 0s and 20s spread the interval far past -3 below
    and past -1 above, so neither drop is established; the note names both sizes."""
    from pgbench.check import gate

    result = gate.compare_group([0.0, 20.0] * 3, [0.0, 18.0] * 3, np.random.default_rng(0),
                                detect=0.3)
    assert result.verdict == "inconclusive" and result.diff == -1.0
    assert result.ci_low < -3.0 and result.ci_high > -1.0
    assert result.note == "neither a drop beyond 10% nor one of 30% is established; add seeds"


def test_compare_group_refuses_an_empty_side_by_name():
    from pgbench.check import gate

    with pytest.raises(ValueError, match="^compare_group needs at least one seed on each side$"):
        gate.compare_group([], [1.0], np.random.default_rng(0))


def test_batch_gradients_refuses_an_unknown_estimator_by_its_name():
    from pgbench.gradstudy.batches import batch_gradients
    from pgbench.gradstudy.terms import EpisodeTerms

    terms = EpisodeTerms(score=np.ones((4, 2)), rtg_grad=np.ones((4, 2)), ret=np.arange(4.0),
                         rtg_mean=np.arange(4.0))
    with pytest.raises(KeyError) as err:
        batch_gradients(terms, 2, ["vanilla", "no_such_estimator"])
    assert err.value.args == ("no_such_estimator",)


@pytest.mark.parametrize("ema_weight", [0.0, 0.3])
def test_exact_moments_with_a_baseline_independent_of_the_batch_by_enumeration(ema_weight):
    """X = mean_i f(x_i) - b mean_i u(x_i) over K = 3 iid draws from 3 outcomes, b independent of
    the draws with mean 2.5 and variance psi_var / K * w / (2 - w) (0 for a constant baseline).
    E X and Cov X by enumerating all 27 triples, using only E b and E b^2 (X is linear in b):
    Cov X = E[X X^T] - E X E X^T with E[X X^T] summing E over b of the outer product."""
    from pgbench.gradstudy.exactgrad import Form, moments

    rng = np.random.default_rng(22)
    p = np.array([0.2, 0.5, 0.3])
    f, u = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    form = Form(f, u=u, b_mean=2.5, psi_var=4.0, ema_weight=ema_weight)
    k = 3
    eb, eb2 = 2.5, 2.5 ** 2 + form.b_var(k)
    assert form.b_var(k) == pytest.approx(4.0 / 3 * ema_weight / (2 - ema_weight))
    first, second = np.zeros(2), np.zeros((2, 2))
    for triple in np.ndindex(3, 3, 3):
        w = np.prod(p[list(triple)])
        mf, mu = f[list(triple)].mean(0), u[list(triple)].mean(0)
        first += w * (mf - eb * mu)
        second += w * (np.outer(mf, mf) - eb * (np.outer(mf, mu) + np.outer(mu, mf))
                       + eb2 * np.outer(mu, mu))
    mean, cov = moments(form, p, k)
    np.testing.assert_allclose(mean, first, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov, second - np.outer(first, first), rtol=1e-10, atol=1e-12)
