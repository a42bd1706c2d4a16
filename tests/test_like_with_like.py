"""The settings the claims compare arms under: bootstrapping at the time limit, and the slides'
undiscounted return on both engines. Values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pgbench.rl import engines
from pgbench.rl.config import TrainConfig, make_config
from pgbench.training.numba import update
from pgbench.training.rollout import Batch
from pgbench.training.update import advantages


def _batch(lengths, truncated):
    lengths = np.asarray(lengths)
    mask = np.arange(int(lengths.max())) < lengths[:, None]
    truncated = np.asarray(truncated, bool)
    return Batch(obs=None, actions=None, rewards=mask.astype(float)[None], mask=mask[None],
                 terminated=~truncated[None], truncated=truncated[None], lengths=lengths[None],
                 final_obs=None, dropout_masks=None)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_a_critic_bootstraps_a_cut_episode_only_when_asked(bootstrap):
    # two episodes of 3 rewards of 1, the first cut by the time limit; gamma 1, V = 0 inside,
    # V(s_T) = 10: reward-to-go [3, 2, 1] (+ 10 on every step of the cut one when bootstrapping)
    cfg = make_config("rtg_value", {"gamma": 1.0, "normalize_advantages": False,
                                    "episodes_per_update": 2, "bootstrap_truncated": bootstrap})
    batch = _batch([3, 3], [True, False])
    values = np.zeros((1, 2, 3))
    adv, target, _ = advantages(cfg, batch, values, np.array([[10.0, 10.0]]), np.array([np.nan]))
    cut = [13.0, 12.0, 11.0] if bootstrap else [3.0, 2.0, 1.0]
    np.testing.assert_array_equal(adv[0], [cut, [3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(target[0], [cut, [3.0, 2.0, 1.0]])


def test_the_default_leaves_older_config_hashes_unchanged():
    on = make_config("rtg_value", {})
    off = make_config("rtg_value", {"bootstrap_truncated": False})
    assert on.hash() != off.hash()
    d = on.to_dict()
    d.pop("bootstrap_truncated")
    d.pop("hyper")  # added later still (the standard algorithms' hyperparameters), same rule
    import hashlib
    import json
    assert on.hash() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert TrainConfig().bootstrap_truncated is True


def test_the_undiscounted_total_return_on_both_engines():
    # episode of 4 rewards of 1 at gamma 1: every step weighs the whole return, 4
    batch = _batch([4], [False])
    cfg = make_config("vanilla", {"gamma": 1.0, "episodes_per_update": 1})
    want, _, _ = advantages(cfg, batch, None, None, np.array([np.nan]))
    np.testing.assert_array_equal(want[0, 0], [4.0, 4.0, 4.0, 4.0])
    got, _ = update.advantages(np.array([4]), engines.NUMBA_RETURNS.index("total"),
                                 engines.NUMBA_BASELINES.index("none"), 1.0, float("nan"), 0.05, False)
    np.testing.assert_array_equal(got[0, :4], [4.0, 4.0, 4.0, 4.0])
