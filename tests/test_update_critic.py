"""The torch engine's update with a critic, against a plain per-step loop (issue 22).

``tests/test_planted_bugs.py`` checks ``GroupTrainer.update`` for REINFORCE without a critic.
Mutation testing found that nothing fast checked its critic's half (the values V(s) it reads,
the value loss and the critic's Adam steps) or its PPO half (the old log-probabilities): a
mutant there survived every fast test. This test recomputes one update of seed 0 step by step,
with plain tensors and ``torch.optim.Adam``, and compares the logged losses, the gradient norm
and the new weights of both networks.
"""

import math

import numpy as np
import pytest
import torch

from pgbench.rl.config import make_config
from pgbench.training.group import GroupTrainer

GAMMA, LR, VALUE_LR, VALUE_ITERS = 0.9, 0.01, 0.02, 2


def _seed0(params: dict, prefix: str) -> dict:
    """Seed 0's weights of one network: W (in, out), b (out,)."""
    return {k.removeprefix(prefix): (v[0, 0] if ".b" in k else v[0]).clone()
            for k, v in params.items() if k.startswith(prefix)}


def _mlp(p: dict, x: torch.Tensor) -> torch.Tensor:
    """One hidden ReLU layer, the networks' shape with ``hidden = [8]``."""
    return torch.relu(x @ p["W0"] + p["b0"]) @ p["W1"] + p["b1"]


@pytest.mark.parametrize("loss", ["pg", "ppo"])
def test_torch_update_with_a_critic_equals_a_plain_per_step_loop(loss):
    """One update of ``rtg_value`` (reward-to-go minus the critic's V(s), advantages normalised
    over the batch's valid steps, population std + 1e-8) on two collected CartPole episodes.

    Policy: REINFORCE divides -sum_t A_t log pi(a_t|s_t) by the 2 episodes. PPO's first epoch
    has ratio exp(logp - logp_old) = 1, so its clipped surrogate is -sum_t A_t ratio_t / n_valid,
    whose value is -sum A / n and whose gradient is that of -sum A log pi / n. Then one Adam step.
    Critic: VALUE_ITERS Adam steps on sum_t (V(s_t) - G_t)^2 / n_valid; the logged value loss is
    the last one's.
    """
    cfg = make_config("rtg_value", {"env_id": "CartPole-v1", "hidden": [8], "episodes_per_update": 2,
                                    "lr": LR, "value_lr": VALUE_LR, "value_iters": VALUE_ITERS,
                                    "gamma": GAMMA, "loss": loss, "update_epochs": 1})
    trainer = GroupTrainer(cfg, [5])
    pi = {k: v.requires_grad_(True) for k, v in _seed0(trainer.opt.params, "pi.").items()}
    vf = {k: v.requires_grad_(True) for k, v in _seed0(trainer.vopt.params, "v.").items()}
    batch = trainer.collector.collect_round(trainer.params)
    assert not batch.truncated[0].any()  # CartPole-v1's limit is 500 steps: no bootstrap here

    steps = [(e, t) for e in range(2) for t in range(int(batch.lengths[0, e]))]
    obs = torch.stack([batch.obs[0, e, t] for e, t in steps])
    act = torch.tensor([int(batch.actions[0, e, t]) for e, t in steps])
    ret = []  # reward-to-go G_t, step by step from each episode's end
    for e in range(2):
        g, back = 0.0, []
        for t in reversed(range(int(batch.lengths[0, e]))):
            g = float(batch.rewards[0, e, t]) + GAMMA * g
            back.append(g)
        ret += back[::-1]
    ret = torch.tensor(ret)
    n = len(steps)
    with torch.no_grad():
        adv = ret - _mlp(vf, obs)[:, 0]
        adv = (adv - adv.mean()) / (adv.var(unbiased=False).sqrt() + 1e-8)

    logp = torch.log_softmax(_mlp(pi, obs), -1)[torch.arange(n), act]
    if loss == "ppo":
        surrogate = -(adv * torch.exp(logp - logp.detach())).sum() / n
    else:
        surrogate = -(adv * logp).sum() / 2
    surrogate.backward()
    grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in pi.values()))
    torch.optim.Adam(list(pi.values()), lr=LR).step()
    value_adam = torch.optim.Adam(list(vf.values()), lr=VALUE_LR)
    for _ in range(VALUE_ITERS):
        value_adam.zero_grad()
        value_loss = (_mlp(vf, obs)[:, 0] - ret).pow(2).sum() / n
        value_loss.backward()
        value_adam.step()

    trainer.update(batch, np.array([0]))
    _, _, n_episodes, logged_loss, logged_norm, _, logged_value_loss, _ = trainer.logs[0].update_rows[-1]
    assert n_episodes == 2
    assert logged_loss == pytest.approx(float(surrogate.detach()), rel=1e-4, abs=1e-6)
    assert logged_norm == pytest.approx(grad_norm, rel=1e-4)
    assert logged_value_loss == pytest.approx(float(value_loss.detach()), rel=1e-5)
    for prefix, mine in (("pi.", pi), ("v.", vf)):
        theirs = _seed0(trainer.opt.params if prefix == "pi." else trainer.vopt.params, prefix)
        for k, v in mine.items():
            torch.testing.assert_close(theirs[k], v.detach(), rtol=0, atol=1e-5, msg=prefix + k)


def test_torch_update_with_the_optimal_baseline_equals_a_plain_per_step_loop():
    """One REINFORCE update with Levine's optimal constant baseline on two collected episodes:
    each episode's score g_i = grad sum_t log pi(a_t|s_t) (before the update), b = sum_i |g_i|^2
    R_i / sum_i |g_i|^2 with R_i the episode's mean reward-to-go, A = G - b, then the REINFORCE
    loss -(1/2) sum A log pi and one Adam step."""
    cfg = make_config("rtg_baseline", {"env_id": "CartPole-v1", "hidden": [8], "episodes_per_update": 2,
                                       "lr": LR, "gamma": GAMMA, "baseline": "optimal",
                                       "normalize_advantages": False})
    trainer = GroupTrainer(cfg, [5])
    pi = {k: v.requires_grad_(True) for k, v in _seed0(trainer.opt.params, "pi.").items()}
    batch = trainer.collector.collect_round(trainer.params)

    logps, rets, sq, means = [], [], [], []
    for e in range(2):
        length = int(batch.lengths[0, e])
        obs, act = batch.obs[0, e, :length], batch.actions[0, e, :length].long()
        logp = torch.log_softmax(_mlp(pi, obs), -1)[torch.arange(length), act]
        g, back = 0.0, []
        for t in reversed(range(length)):
            g = float(batch.rewards[0, e, t]) + GAMMA * g
            back.append(g)
        ret = torch.tensor(back[::-1])
        score = torch.autograd.grad(logp.sum(), list(pi.values()), retain_graph=True)
        sq.append(sum(float(s.pow(2).sum()) for s in score))
        means.append(float(ret.mean()))
        logps.append(logp)
        rets.append(ret)
    b = (sq[0] * means[0] + sq[1] * means[1]) / (sq[0] + sq[1])
    loss = -sum(((ret - b) * logp).sum() for ret, logp in zip(rets, logps)) / 2
    loss.backward()
    grad_norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in pi.values()))
    torch.optim.Adam(list(pi.values()), lr=LR).step()

    trainer.update(batch, np.array([0]))
    _, _, _, logged_loss, logged_norm, *_ = trainer.logs[0].update_rows[-1]
    assert logged_loss == pytest.approx(float(loss.detach()), rel=1e-4)
    assert logged_norm == pytest.approx(grad_norm, rel=1e-4)
    theirs = _seed0(trainer.opt.params, "pi.")
    for k, v in pi.items():
        torch.testing.assert_close(theirs[k], v.detach(), rtol=0, atol=1e-5, msg="pi." + k)
