"""Running normalisation of observations and rewards (pgbench/training/algorithms/normalize.py)."""

import numpy as np
import pytest

from pgbench.training.algorithms.normalize import Normalizer, RunningMeanStd


def test_merging_batches_equals_one_batch():
    """Chan et al.'s merge is exact: two updates equal one update with both batches."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, (7, 3)), rng.normal(-1.0, 0.5, (5, 3))
    two, one = RunningMeanStd((3,)), RunningMeanStd((3,))
    two.update(a)
    two.update(b)
    one.update(np.concatenate([a, b]))
    np.testing.assert_allclose(two.mean, one.mean, rtol=1e-12)
    np.testing.assert_allclose(two.var, one.var, rtol=1e-12)
    assert two.count == pytest.approx(12 + 1e-4)


def test_first_batch_by_hand():
    """Prior: count 1e-4, mean 0, var 1. Batch (1, 3): mean 2, population var 1, n 2.
    mean = 2 * 2 / 2.0001; var = (1e-4 + 2 + 4 * 1e-4 * 2 / 2.0001) / 2.0001."""
    rms = RunningMeanStd(())
    rms.update(np.array([1.0, 3.0]))
    assert rms.mean == pytest.approx(4 / 2.0001, rel=1e-12)
    assert rms.var == pytest.approx((1e-4 + 2 + 8e-4 / 2.0001) / 2.0001, rel=1e-12)


def test_off_is_the_identity_and_rewards_restart_at_episode_ends():
    off = Normalizer(2, 2, 0.9, obs=False, reward=False)
    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    assert off.obs(x) is x
    r = np.array([1.0, -1.0])
    assert off.reward(r, np.array([False, True])) is r
    on = Normalizer(2, 2, 0.5, obs=True, reward=True)
    on.reward(np.array([1.0, 1.0]), np.array([False, True]))
    assert on.ret.tolist() == [1.0, 0.0]  # the ended sub-env's discounted return restarts
    on.reward(np.array([1.0, 1.0]), np.array([False, False]))
    assert on.ret.tolist() == [1.5, 1.0]
    z = on.obs(np.array([[100.0, 0.0], [-100.0, 0.0]]))
    assert z.dtype == np.float32 and np.all(np.abs(z) <= 10.0)
