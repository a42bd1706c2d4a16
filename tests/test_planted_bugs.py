"""Tests written for the bugs an independent check planted and the other tests missed (issue 22).

Each test checks values worked out by hand (in the comments) or a plain per-step loop, so that
the planted bug named in its docstring makes it fail; docs/testing.md says how each was checked.
"""

import math

import numpy as np
import pytest
import torch

from pgbench.config import make_config
from pgbench.rollout import Batch
from pgbench.train import GroupTrainer, SeedLog, advantages, policy_loss, record_episode


# -- PPO's clipped surrogate ------------------------------------------------------------------
def test_ppo_loss_and_gradient_outside_the_clip_range_for_both_signs():
    """Planted bug: the clip without the ``min`` (``clipped * adv`` alone).

    eps = 0.2, so the ratio is clipped to [0.8, 1.2]. Five valid steps and one padding step:

    ====  =====  ===  =============  ==============  ==============  ===========================
    step  ratio  A    ratio * A      clipped * A     min             d min / d logp = ratio*A or 0
    ====  =====  ===  =============  ==============  ==============  ===========================
    a     1.5    +2   3.0            1.2*2 = 2.4     2.4  (clipped)  0
    b     1.5    -2   -3.0           -2.4            -3.0            -3.0
    c     0.5    +2   1.0            0.8*2 = 1.6     1.0             1.0
    d     0.5    -2   -1.0           -1.6            -1.6 (clipped)  0
    e     1.1    +1   1.1            1.1             1.1             1.1
    pad   3.0    +5   (not counted)
    ====  =====  ===  =============  ==============  ==============  ===========================

    loss = -(2.4 - 3.0 + 1.0 - 1.6 + 1.1) / 5 = 0.02, and d loss / d logp = -(1/5) * (last column):
    (0, 0.6, -0.2, 0, -0.22, 0). Without the min, the loss would be -(2.4-2.4+1.6-1.6+1.1)/5 = -0.22.
    """
    cfg = make_config("ppo_fullbatch", {})
    assert cfg.ppo_clip == 0.2
    ratio = torch.tensor([[1.5, 1.5, 0.5, 0.5, 1.1, 3.0]], dtype=torch.float64)
    adv = torch.tensor([[2.0, -2.0, 2.0, -2.0, 1.0, 5.0]], dtype=torch.float64)
    valid = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    logp_old = torch.tensor([[-0.3, -1.2, -0.7, -2.0, -0.1, -0.5]], dtype=torch.float64)
    logp = (logp_old + ratio.log()).requires_grad_(True)

    loss = policy_loss(cfg, logp, adv, valid, torch.tensor([2.0]), logp_old)
    torch.testing.assert_close(loss, torch.tensor([0.02], dtype=torch.float64), rtol=0, atol=1e-12)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    torch.testing.assert_close(
        grad, torch.tensor([[0.0, 0.6, -0.2, 0.0, -0.22, 0.0]], dtype=torch.float64),
        rtol=0, atol=1e-12)

    # One block of a larger batch: the divisor is the batch's count of valid steps (10).
    block = policy_loss(cfg, logp, adv, valid, torch.tensor([2.0]), logp_old, torch.tensor([10.0]))
    torch.testing.assert_close(block, torch.tensor([0.01], dtype=torch.float64), rtol=0, atol=1e-12)


# -- the running reward -----------------------------------------------------------------------
def test_record_episode_running_reward_on_a_hand_made_sequence():
    """Planted bug: the running-reward weight 0.05 changed to 0.5 (both engines share the rule).

    The running reward starts at 10 and mixes in each return with weight 0.05:
    returns 30, 10, 50 -> 0.05*30 + 0.95*10 = 11.0, 0.05*10 + 0.95*11 = 10.95,
    0.05*50 + 0.95*10.95 = 12.9025. With threshold 12 the sources' rule first fires at the
    third episode (index 2, after 4+3+5 = 12 steps), never earlier. (With 0.5: 20.0 at once.)
    """
    log = SeedLog(seed=0)
    assert log.running_reward == 10.0
    expected = [11.0, 10.95, 12.9025]
    for k, (ret, length) in enumerate([(30.0, 4), (10.0, 3), (50.0, 5)]):
        record_episode(log, ret, length, terminated=True, truncated=False, threshold=12.0)
        assert log.running_reward == pytest.approx(expected[k], rel=1e-12, abs=0)
        assert log.solved is None if k < 2 else log.solved == {"update": 0, "episode": 2,
                                                               "env_steps": 12}
    assert [row[-1] for row in log.episode_rows] == pytest.approx(expected, rel=1e-12, abs=0)
    assert [row[1] for row in log.episode_rows] == [0, 1, 2]
    assert log.episodes == 3 and log.env_steps == 12
    assert log.solved_last100 is None  # the plainer rule needs 100 episodes


# -- reward-to-go with a critic ---------------------------------------------------------------
def _two_episode_batch():
    """One seed, two episodes: [1, 1, 1] terminated, [1, 2] truncated (then padding)."""
    mask = np.array([[[True, True, True], [True, True, False]]])
    return Batch(obs=torch.zeros(1, 2, 3, 4), actions=torch.zeros(1, 2, 3, dtype=torch.int64),
                 rewards=np.array([[[1.0, 1.0, 1.0], [1.0, 2.0, 0.0]]]), mask=mask,
                 terminated=np.array([[True, False]]), truncated=np.array([[False, True]]),
                 lengths=mask.sum(-1), final_obs=torch.zeros(1, 2, 4), dropout_masks=None)


@pytest.mark.parametrize("variant, overrides", [
    ("rtg_value", {}),
    ("gae", {"gae_lambda": 1.0}),  # GAE with lambda = 1 is reward-to-go minus V: same numbers
])
def test_reward_to_go_with_a_critic_bootstraps_truncated_episodes_only(variant, overrides):
    """Planted bug: the reward-to-go bootstrap applied on termination too (``bootstrap =
    final_values``).

    gamma = 0.5. Episode 0 terminated: its final value (100) must not enter.
    G = (1 + 0.5*1.5, 1 + 0.5*1, 1) = (1.75, 1.5, 1); V = (0.5, 0.25, 1) -> A = (1.25, 1.25, 0).
    Episode 1 truncated, V(s_T) = 8: G_1 = 2 + 0.5*8 = 6, G_0 = 1 + 0.5*6 = 4;
    V = (2, 4) -> A = (2, 2). The critic's targets are G.
    """
    cfg = make_config(variant, {"gamma": 0.5, "normalize_advantages": False, **overrides})
    values = np.array([[[0.5, 0.25, 1.0], [2.0, 4.0, 0.0]]])
    final_values = np.array([[100.0, 8.0]])
    adv, target, _ = advantages(cfg, _two_episode_batch(), values, final_values,
                                np.array([np.nan]))
    np.testing.assert_allclose(adv, [[[1.25, 1.25, 0.0], [2.0, 2.0, 0.0]]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(target, [[[1.75, 1.5, 1.0], [4.0, 6.0, 0.0]]], rtol=0, atol=1e-12)


# -- the torch engine's update with dropout ---------------------------------------------------
def _plain_log_prob(params, obs, action, drop):
    """log pi(action | obs) of seed 0's one-hidden-layer policy, one step, with its mask."""
    h = torch.relu(obs @ params["W0"] + params["b0"]) * drop
    return torch.log_softmax(h @ params["W1"] + params["b1"], -1)[action]


def test_torch_update_with_dropout_equals_a_plain_per_step_loop():
    """Planted bug: the update recomputes the log-probabilities without the stored dropout masks.

    One REINFORCE update of a dropout-0.5 policy on two collected CartPole episodes, against a
    plain loop over the steps: each step's log-probability with the mask its action was sampled
    under, weighted by its episode's discounted return (computed step by step), summed, divided
    by the 2 episodes, then one step of torch.optim.Adam. The logged loss and gradient norm and
    the new weights must agree.
    """
    cfg = make_config("vanilla", {"env_id": "CartPole-v1", "dropout": 0.5, "hidden": [8],
                                  "episodes_per_update": 2, "lr": 0.01, "gamma": 0.9})
    trainer = GroupTrainer(cfg, [3])
    # seed 0's weights: W0 (4, 8), b0 (8,), W1 (8, 2), b1 (2,)
    before = {k.removeprefix("pi."): (v[0, 0] if k.startswith("pi.b") else v[0]).clone()
              for k, v in trainer.params.items()}
    batch = trainer.collector.collect_round(trainer.params)
    assert batch.dropout_masks is not None and len(batch.dropout_masks) == 1
    drop = batch.dropout_masks[0][0]  # (E, T, 8), entries 0 or 1 / (1 - 0.5) = 2
    assert set(drop[torch.from_numpy(batch.mask[0])].unique().tolist()) == {0.0, 2.0}

    mine = {k: v.clone().requires_grad_(True) for k, v in before.items()}
    total = 0.0
    for e in range(2):
        length = int(batch.lengths[0, e])
        ret = 0.0
        for t in reversed(range(length)):  # the whole episode's discounted return R(tau)
            ret = float(batch.rewards[0, e, t]) + 0.9 * ret
        for t in range(length):
            total = total + ret * _plain_log_prob(mine, batch.obs[0, e, t],
                                                  int(batch.actions[0, e, t]), drop[e, t])
    loss = -total / 2
    loss.backward()
    grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in mine.values()))
    adam = torch.optim.Adam(list(mine.values()), lr=0.01)
    adam.step()

    trainer.update(batch, np.array([0]))
    _, _, _, logged_loss, logged_norm, *_ = trainer.logs[0].update_rows[-1]
    assert logged_loss == pytest.approx(float(loss.detach()), rel=1e-5)
    assert logged_norm == pytest.approx(grad_norm, rel=1e-4)
    after = trainer.params
    for k in ("W0", "W1"):
        torch.testing.assert_close(after[f"pi.{k}"][0], mine[k].detach(), rtol=0, atol=1e-6)
    for k in ("b0", "b1"):
        torch.testing.assert_close(after[f"pi.{k}"][0, 0], mine[k].detach(), rtol=0, atol=1e-6)
