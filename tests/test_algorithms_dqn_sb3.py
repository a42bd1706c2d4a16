"""pgbench's DQN gradient step against Stable-Baselines3's ``DQN.train``, step for step.

Both start from the same weights (SB3's initialisation copied into pgbench's layout) and take
the same gradient steps on the same minibatches (SB3's replay sampling replaced by the fixed
batches), with a target-network copy in between; every weight must agree to float32 rounding
(pgbench multiplies with ``baddbmm``, SB3 with ``nn.Linear``: the same sums, rounded apart by
~1e-7). This checks the TD target (terminal rows masked, truncated rows bootstrapping), the
Huber loss, the gradient clipping and Adam's settings against the reference itself.
"""

import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.logger import configure  # noqa: E402
from stable_baselines3.common.type_aliases import ReplayBufferSamples  # noqa: E402

from pgbench.rl.algorithms import DQNHyper  # noqa: E402
from pgbench.training.algorithms.dqn import DQNLearner  # noqa: E402
from pgbench.training.algorithms.replay import Transitions  # noqa: E402

HIDDEN = [16, 16]
BATCH = 8
GAMMA = 0.9
LR = 0.05  # large, so that a wrong clip or a wrong Adam epsilon shows in a few steps
MAX_GRAD_NORM = 0.1  # small, so that the clipping is active


def _batches(n, rng):
    for _ in range(n):
        yield dict(obs=rng.normal(size=(BATCH, 4)).astype(np.float32),
                   next_obs=rng.normal(size=(BATCH, 4)).astype(np.float32),
                   actions=rng.integers(0, 2, size=BATCH),
                   rewards=rng.normal(size=BATCH).astype(np.float32) * 3,
                   # terminal rows; a truncated row is stored as not terminal
                   terminated=(rng.random(BATCH) < 0.3).astype(np.float32))


def _copy_sb3_weights(net: torch.nn.Sequential, params: dict) -> None:
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            params[f"W{i}"].copy_(lin.weight.T[None])
            params[f"b{i}"].copy_(lin.bias[None, None])


def test_gradient_steps_match_sb3_dqn_train():
    import gymnasium as gym

    torch.manual_seed(0)
    model = sb3.DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=LR, gamma=GAMMA,
                    batch_size=BATCH, max_grad_norm=MAX_GRAD_NORM, learning_starts=0,
                    buffer_size=100,
                    policy_kwargs=dict(net_arch=HIDDEN), device="cpu", seed=0)
    model.set_logger(configure(None, []))  # train() logs; learn() would have set one
    h = DQNHyper(batch_size=BATCH, max_grad_norm=MAX_GRAD_NORM)
    mine = DQNLearner([4, *HIDDEN, 2], LR, GAMMA, h, np.random.SeedSequence(0))
    _copy_sb3_weights(model.q_net.q_net, mine.online)
    _copy_sb3_weights(model.q_net_target.q_net, mine.target)

    batches = list(_batches(6, np.random.default_rng(7)))
    queue, norms = [], []
    model.replay_buffer.sample = lambda batch_size, env=None: queue.pop(0)
    for step, b in enumerate(batches):
        queue.append(ReplayBufferSamples(
            observations=torch.from_numpy(b["obs"]), actions=torch.from_numpy(b["actions"])[:, None],
            next_observations=torch.from_numpy(b["next_obs"]),
            dones=torch.from_numpy(b["terminated"])[:, None],
            rewards=torch.from_numpy(b["rewards"])[:, None]))
        model.train(gradient_steps=1, batch_size=BATCH)
        loss, norm = mine.gradient_step(Transitions(
            obs=torch.from_numpy(b["obs"]), actions=torch.from_numpy(b["actions"]),
            rewards=torch.from_numpy(b["rewards"]), next_obs=torch.from_numpy(b["next_obs"]),
            terminated=torch.from_numpy(b["terminated"])))
        norms.append(norm)
        if step == 2:  # a hard target copy on both sides
            model.q_net_target.load_state_dict(model.q_net.state_dict())
            mine.update_target()
    assert sum(n > MAX_GRAD_NORM for n in norms) >= 3, norms  # the clipping acted
    expected = {k: v.clone() for k, v in mine.online.items()}
    _copy_sb3_weights(model.q_net.q_net, expected)
    for name in mine.online:
        torch.testing.assert_close(mine.online[name].detach(), expected[name], rtol=1e-4, atol=1e-5)
    # and the weights did move: the comparison is not of two untouched copies
    start = DQNLearner([4, *HIDDEN, 2], LR, GAMMA, h, np.random.SeedSequence(0)).online
    assert not torch.allclose(start["W0"], mine.online["W0"])
