"""pgbench.stats against hand computations and known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pgbench.stats import bootstrap, metrics, survival


def test_iqm_of_hand_made_matrix():
    # 8 scores sorted: 1 2 | 3 4 5 7 | 10 100 -> trim two from each end -> (3+4+5+7)/4
    scores = np.array([[10.0, 1.0], [3.0, 7.0], [2.0, 100.0], [4.0, 5.0]])
    assert metrics.iqm(scores) == pytest.approx(4.75)
    assert metrics.iqm(scores.ravel()) == pytest.approx(4.75)  # shape does not matter
    assert metrics.mean(scores) == pytest.approx(132.0 / 8)
    assert metrics.median(scores) == pytest.approx(4.5)


def test_probability_of_improvement_by_hand():
    # pairs (3,2) > ; (3,1) > ; (1,2) < ; (1,1) = -> (1 + 1 + 0 + 0.5) / 4
    assert metrics.probability_of_improvement([3.0, 1.0], [2.0, 1.0]) == pytest.approx(0.625)
    assert metrics.probability_of_improvement([5.0], [1.0, 2.0]) == 1.0
    assert metrics.probability_of_improvement([1.0, 2.0], [1.0, 2.0]) == pytest.approx(0.5)


def test_bootstrap_ci_covers_the_true_mean_close_to_nominal():
    """200 seeded draws of normal data: the 95% percentile interval covers the mean ~95% of the time."""
    rng = np.random.default_rng(12345)
    true_mean, covered, draws = 1.0, 0, 200
    for _ in range(draws):
        sample = rng.normal(true_mean, 2.0, size=30)
        ci = bootstrap.bootstrap_ci(metrics.mean, sample, rng=rng, confidence=0.95, n_resamples=1000)
        covered += ci.contains(true_mean)
    assert 0.90 <= covered / draws <= 0.99


def test_bootstrap_ci_is_wrong_without_enough_confidence():
    """The same check at 50% confidence must fail the 95% band: the test can tell levels apart."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(100):
        sample = rng.normal(0.0, 1.0, size=30)
        covered += bootstrap.bootstrap_ci(metrics.mean, sample, rng=rng, confidence=0.5,
                                      n_resamples=500).contains(0.0)
    assert covered / 100 < 0.7


def test_bootstrap_is_reproducible_and_uses_only_the_given_generator():
    x = np.arange(20.0)
    np.random.seed(3)
    before = np.random.get_state()[1].copy()
    a = bootstrap.bootstrap_ci(metrics.iqm, x, rng=np.random.default_rng(0))
    b = bootstrap.bootstrap_ci(metrics.iqm, x, rng=np.random.default_rng(0))
    c = bootstrap.bootstrap_ci(metrics.iqm, x, rng=np.random.default_rng(1))
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert np.array_equal(np.random.get_state()[1], before)  # global state untouched


def test_stratified_bootstrap_keeps_each_task_in_every_resample():
    scores = np.array([[1.0, 10.0], [3.0, 12.0]])  # 2 seeds x 2 tasks
    tasks = np.array([0, 1, 0, 1])
    values = bootstrap.bootstrap_distribution(metrics.mean, scores.ravel(), rng=np.random.default_rng(0),
                                          n_resamples=500, strata=[tasks])
    # within tasks: task 0 gives 1 or 3, task 1 gives 10 or 12, so means lie in [5.5, 7.5];
    # an unstratified resample could pick four 1s (mean 1).
    assert values.min() >= 5.5 and values.max() <= 7.5
    plain = bootstrap.bootstrap_distribution(metrics.mean, scores.ravel(), rng=np.random.default_rng(0),
                                         n_resamples=500)
    assert plain.min() < 5.5 or plain.max() > 7.5
    ci = bootstrap.bootstrap_ci(metrics.mean, scores.ravel(), rng=np.random.default_rng(0), strata=[tasks])
    assert ci.estimate == pytest.approx(6.5)


def test_two_sample_bootstrap_resamples_each_sample_independently():
    rng = np.random.default_rng(0)
    ci = bootstrap.difference_of_means_ci([10.0, 10.0, 10.0], [1.0, 2.0, 3.0], rng=rng)
    assert ci.estimate == pytest.approx(8.0)
    assert 7.0 <= ci.low <= ci.high <= 9.0
    poi = bootstrap.probability_of_improvement_ci([5.0, 6.0], [1.0, 2.0], rng=rng)
    assert (poi.estimate, poi.low, poi.high) == (1.0, 1.0, 1.0)


def test_percentile_interval_by_order_statistics():
    assert bootstrap.percentile_interval(np.arange(101.0), 0.9) == (5.0, 95.0)
    low, high = bootstrap.percentile_interval(np.array([1.0, 2.0, np.inf, np.inf]), 0.5)
    assert low == 1.0 and high == np.inf


def test_kaplan_meier_median_matches_hand_computation():
    # times 100..500; 200 and 500 censored.
    # t=100: 5 at risk, 1 solves -> S = 4/5
    # t=300: 3 at risk (200 censored), 1 solves -> S = 4/5 * 2/3 = 8/15 (> 1/2)
    # t=400: 2 at risk, 1 solves -> S = 8/15 * 1/2 = 4/15 -> median 400
    times, censored = [100, 200, 300, 400, 500], [False, True, False, False, True]
    curve = survival.kaplan_meier(times, censored)
    assert curve.survival_at([50, 100, 250, 300, 400, 600]) == pytest.approx(
        [1.0, 0.8, 0.8, 8 / 15, 4 / 15, 4 / 15])
    m = survival.km_median(times, censored)
    assert m.median == 400.0 and m.defined
    assert m.n == 5 and m.n_censored == 2
    assert m.low <= 400.0 <= m.high


def test_kaplan_meier_median_with_ties_and_an_exact_half():
    # 4 runs solve at 1, 1, 2, 3; one censored at 1, one at 4.
    # t=1: 6 at risk (the censored-at-1 run still counts), 2 solve -> S = 4/6
    # t=2: 3 at risk, 1 solves -> S = 4/6 * 2/3 = 4/9 -> median 2
    m = survival.km_median([1, 1, 1, 2, 3, 4], [False, False, True, False, False, True])
    assert m.median == 2.0
    # exactly one half: 2 of 4 solved at 10 and 20 -> S(20) = 1/2 -> median 20
    assert survival.km_median([10, 20, 30, 40], [False, False, True, True]).median == 20.0


def test_undefined_median_is_infinite_with_a_lower_bound():
    m = survival.km_median([100, 200, 300], [False, True, True])  # S stays at 2/3
    assert m.median == math.inf and not m.defined
    assert m.lower_bound == 300.0
    assert m.high == math.inf
    assert m.low <= 300.0  # the CI does not claim the median is infinite


def test_vectorised_km_median_agrees_with_scipy_on_random_censored_samples():
    rng = np.random.default_rng(1)
    times = rng.integers(1, 12, size=(300, 9)).astype(float)  # many ties
    censored = rng.random((300, 9)) < 0.35
    fast = survival.km_median_rows(times, censored)
    slow = [survival.km_median(t, c).median for t, c in zip(times, censored)]
    assert np.array_equal(fast, np.array(slow))
    assert np.isinf(fast).any() and np.isfinite(fast).any()


def test_median_ratio_by_hand_and_with_enough_seeds_contains_the_truth():
    r = survival.median_ratio_ci([800, 900, 1000], [False] * 3, [150, 160, 200], [False] * 3,
                              rng=np.random.default_rng(0), n_resamples=500)
    assert r.estimate == pytest.approx(900 / 160)
    rng = np.random.default_rng(2)
    a = 5.0 * 1e5 * rng.lognormal(0, 0.3, size=40)
    b = 1e5 * rng.lognormal(0, 0.3, size=40)
    r = survival.median_ratio_ci(a, np.zeros(40, bool), b, np.zeros(40, bool), rng=rng)
    assert r.low < 5.0 < r.high
    assert 3.0 < r.low and r.high < 8.0


def test_median_ratio_with_a_mostly_censored_arm_gives_a_lower_bound():
    # a: 4 of 6 runs censored at the 1M budget -> a's median is undefined (> 1M)
    a_times = [300e3, 400e3, 1e6, 1e6, 1e6, 1e6]
    a_cens = [False, False, True, True, True, True]
    b_times = [90e3, 100e3, 110e3, 120e3, 95e3, 105e3]
    r = survival.median_ratio_ci(a_times, a_cens, b_times, [False] * 6,
                              rng=np.random.default_rng(0), n_resamples=1000)
    assert r.estimate == math.inf
    assert r.high == math.inf
    assert 0.0 < r.low < 10.0  # finite: only what the data bound
    assert r.undefined_a > 0.5


def test_seeds_needed_scales_with_the_square_of_the_width():
    # half-width 1.5 facing the threshold, distance 1.0: 3 * 1.5**2 = 6.75 -> 7
    assert survival.seeds_needed(2.0, 0.5, 3.5, 1.0, 3) == 7.0
    # the upper half faces a threshold above the estimate
    assert survival.seeds_needed(2.0, 1.5, 4.0, 3.0, 10) == 40.0
    assert survival.seeds_needed(2.0, 1.0, 3.0, 2.0, 5) == math.inf  # estimate on the threshold
    assert survival.seeds_needed(2.0, 1.5, 2.5, 5.0, 5) == 5.0  # already settled
    assert math.isnan(survival.seeds_needed(math.inf, 2.0, math.inf, 3.0, 5))  # seeds cannot tell


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        survival.km_median([1.0, 2.0], [False])
    with pytest.raises(ValueError):
        bootstrap.bootstrap_ci(metrics.mean, [1.0, 2.0], rng=np.random.default_rng(0), confidence=1.5)
    with pytest.raises(ValueError):
        bootstrap.bootstrap_ci(metrics.mean, [], rng=np.random.default_rng(0))


def test_kaplan_meier_band_agrees_with_scipy_where_defined():
    times = [5, 6, 6, 2, 9, 12, 3, 7]
    censored = [False, True, False, False, False, True, False, False]
    curve = survival.kaplan_meier(times, censored)
    ref = sps.ecdf(sps.CensoredData(uncensored=[t for t, c in zip(times, censored) if not c],
                                    right=[t for t, c in zip(times, censored) if c])).sf
    assert curve.survival == pytest.approx(ref.probabilities)
    assert np.all(curve.band_low <= curve.survival + 1e-12)
    assert np.all(curve.survival <= curve.band_high + 1e-12)
