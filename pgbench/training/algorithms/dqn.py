"""DQN (Mnih et al. 2015) as Stable-Baselines3 runs it: replay, target network, linear epsilon.

The ``dqn`` variant's trainer (``pgbench train --variant dqn --set train_freq=256 ...``): one
seed, one env, read top to bottom in :func:`train`: act (epsilon-greedy), store the transition,
every ``train_freq`` env steps take ``gradient_steps`` gradient steps on uniformly sampled
minibatches, update the target network every ``target_update_interval`` env steps, record. Its
settings are the TrainConfig fields ``lr``, ``gamma``, ``hidden``, ``total_steps``, ``seed`` and
the :class:`pgbench.rl.hyper.DQNHyper` fields, the very ones ``sb3_dqn`` maps onto SB3.

The maths are pure functions: :func:`td_target`, :func:`epsilon_at`, :func:`td_loss`,
:func:`gradient_steps_done`.

**Truncation is not termination.** The TD target bootstraps unless the transition reached a
terminal state: ``y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')``. A transition cut
by the time limit bootstraps from its real last observation: :class:`AutoResetEnvs` returns it
as ``final_obs`` beside the reset one (Gymnasium's vector envs, in their default ``NEXT_STEP``
autoreset mode, return the last observation on the ending step and the reset one on the step
after, which is no transition at all; pgbench's sub-envs do not auto-reset on their own).

Matching SB3 (``stable_baselines3/dqn/dqn.py`` and ``common/off_policy_algorithm.py``, 2.x):

- ``target_update_interval`` counts env steps (SB3's ``_n_calls``), not gradient steps; the
  update is Polyak averaging with ``tau``, a hard copy at SB3's default ``tau = 1``.
- Gradient steps happen after the env step that completes each ``train_freq`` block, once more
  than ``learning_starts`` env steps were taken; ``gradient_steps = -1`` means as many gradient
  steps as env steps in the block. Before ``learning_starts`` actions are uniformly random.
- Epsilon falls linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over the
  first ``exploration_fraction * total_steps`` env steps, then stays. SB3's very first action uses
  epsilon 0 (its rate is set after the first step); pgbench's uses ``exploration_initial_eps``.
- Loss: SB3's ``smooth_l1_loss`` (Huber, delta 1, mean over the batch); gradients clipped to a
  global L2 norm of ``max_grad_norm`` (10); Adam with torch's defaults; ReLU MLP.

``tests/test_algorithms_dqn_sb3.py`` runs both on the same random draws in lock-step (short
runs): every action, stored transition, epsilon, target sync and recorded episode is the same,
the weights agree to float32 rounding. Longer runs part only through that rounding (issue 19).

Randomness: ``SeedSequence(seed).spawn(4)`` gives the network init (a torch generator), the env
reset seeds, the acting draws (epsilon coin and random action) and the replay draws, each its own
stream; float32, one thread (pgbench's pinned dispatch), so a seed gives the same bytes.
Seeds are not batched: each run trains alone (its cost is the gradient steps' matmuls, not the
Python overhead that batching shares, at the zoo's 256x256 networks).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pgbench.core.errors import UserError
from pgbench.core.seeding import torch_generator
from pgbench.envs.autoreset import AutoResetEnvs
from pgbench.rl.algorithms import DQNHyper
from pgbench.rl.config import TrainConfig
from pgbench.rl.hyper import hyper_of
from pgbench.rl.policies import init_mlp, mlp_forward
from pgbench.runs.log import SeedLog
from pgbench.training.algorithms.episodes import EpisodeRecorder
from pgbench.training.algorithms.replay import ReplayBuffer

__all__ = ["epsilon_at", "gradient_steps_done", "td_loss", "td_target", "train"]


# -- the maths: pure functions -----------------------------------------------------------------
def td_target(rewards: torch.Tensor, next_q_max: torch.Tensor, terminated: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """``y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')``, all ``(B,)``.

    ``terminated`` is 1.0 only where ``s'`` is a terminal state; a time-limit cut is 0.0 and
    bootstraps, from the real last observation.
    """
    return rewards + gamma * (1.0 - terminated) * next_q_max


def epsilon_at(env_steps: int, total_steps: int, initial: float, final: float,
               fraction: float) -> float:
    """Epsilon after ``env_steps`` steps: linear from ``initial`` (0 steps) to ``final``
    (``fraction * total_steps`` steps), then ``final`` (SB3's ``get_linear_fn``)."""
    progress = env_steps / total_steps
    if progress > fraction:
        return final
    return initial + progress * (final - initial) / fraction


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean Huber (delta 1) or squared error between ``Q(s, a) (B,)`` and the target ``(B,)``."""
    if loss == "huber":
        return F.smooth_l1_loss(q_taken, target)
    return F.mse_loss(q_taken, target)


def q_values(params: dict, obs: torch.Tensor) -> torch.Tensor:
    """``Q(obs, .)``: ``(B, obs_dim) -> (B, n_actions)`` through the one-seed stacked MLP."""
    return mlp_forward(params, obs.unsqueeze(0), "relu")[0]


def phase_gradient_steps(h: DQNHyper) -> int:
    """Gradient steps per training phase (``gradient_steps``; ``train_freq`` when -1)."""
    return h.train_freq if h.gradient_steps == -1 else h.gradient_steps


def trains_after(h: DQNHyper, env_steps: int) -> bool:
    """Whether the phase that ends at ``env_steps`` takes gradient steps (SB3: only once more
    than ``learning_starts`` env steps were taken)."""
    return env_steps > h.learning_starts


def gradient_steps_done(h: DQNHyper, updates: int) -> int:
    """Gradient steps taken in the first ``updates`` phases (an episode's ``update`` column, or a
    solve point's ``update``): the phases that end past ``learning_starts`` take
    ``phase_gradient_steps`` each."""
    trained = sum(1 for k in range(1, updates + 1) if trains_after(h, k * h.train_freq))
    return trained * phase_gradient_steps(h)


class DQNLearner:
    """The online and target Q-networks, their optimiser, and one gradient step."""

    def __init__(self, sizes: list[int], lr: float, gamma: float, h: DQNHyper,
                 init_ss: np.random.SeedSequence):
        self.gamma, self.h = gamma, h
        self.online = {k: v.requires_grad_(True)
                       for k, v in init_mlp(sizes, [torch_generator(init_ss)]).items()}
        self.target = {k: v.detach().clone() for k, v in self.online.items()}
        # Adam with torch's defaults, as SB3's DQN policy builds it
        self.opt = torch.optim.Adam(list(self.online.values()), lr=lr)

    def act_greedy(self, obs: np.ndarray) -> int:
        with torch.inference_mode():
            return int(torch.argmax(q_values(self.online, torch.from_numpy(obs[None]))[0]))

    def update_target(self) -> None:
        """``target <- tau * online + (1 - tau) * target`` (a hard copy at SB3's tau = 1)."""
        with torch.no_grad():
            for k, v in self.online.items():
                if self.h.tau == 1.0:
                    self.target[k].copy_(v)
                else:
                    self.target[k].mul_(1.0 - self.h.tau).add_(v, alpha=self.h.tau)

    def gradient_step(self, batch) -> tuple[float, float]:
        """One Adam step on the Huber TD loss of ``batch`` (a :class:`Transitions`): returns
        (loss, gradient norm before clipping)."""
        with torch.no_grad():
            next_max = q_values(self.target, batch.next_obs).max(dim=1).values
            y = td_target(batch.rewards, next_max, batch.terminated, self.gamma)
        q = q_values(self.online, batch.obs).gather(1, batch.actions[:, None])[:, 0]
        loss = td_loss(q, y, "huber")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(self.online.values()), self.h.max_grad_norm)
        self.opt.step()
        return loss.item(), norm.item()


def train(cfg: TrainConfig, progress=None) -> SeedLog:
    """Train one seed of the ``dqn`` variant; the log for :func:`pgbench.runs.store.write_run`.

    Runs ``ceil(total_steps / train_freq)`` phases of ``train_freq`` env steps, as SB3's ``learn``
    does. An *update* (a row of updates.parquet, the ``update`` column of episodes.parquet) is one
    phase, trained or not, as in the ``sb3_dqn`` runs; the log counts the gradient steps actually
    taken (:func:`gradient_steps_done` says how many that is after a number of phases).
    """
    h = hyper_of(cfg)
    if cfg.num_envs != 1:
        raise UserError(f"bad value num_envs={cfg.num_envs} for variant dqn; accepted: 1")
    init_ss, env_ss, act_ss, replay_ss = np.random.SeedSequence(cfg.seed).spawn(4)
    act_rng, replay_rng = np.random.default_rng(act_ss), np.random.default_rng(replay_ss)
    envs = AutoResetEnvs(cfg.env_id, 1, env_ss)
    try:
        if not envs.discrete:
            raise UserError(f"env {cfg.env_id!r} has action space {envs.envs.single_action_space}"
                            "; accepted for variant dqn: Discrete")
        n_actions = int(envs.envs.single_action_space.n)
        obs = envs.reset()
        learner = DQNLearner([obs.shape[1], *cfg.hidden, n_actions], cfg.lr, cfg.gamma, h, init_ss)
        phases = -(-cfg.total_steps // h.train_freq)
        # never more rows than the run writes: the ring wraps exactly when SB3's would
        buffer = ReplayBuffer(min(h.buffer_size, phases * h.train_freq), obs.shape[1])
        recorder = EpisodeRecorder(cfg, 1, progress)
        t = 0
        for _ in range(phases):
            for _ in range(h.train_freq):
                eps = epsilon_at(t, cfg.total_steps, h.exploration_initial_eps,
                                 h.exploration_final_eps, h.exploration_fraction)
                coin, random_action = act_rng.random(), int(act_rng.integers(n_actions))
                explore = t < h.learning_starts or coin < eps
                action = random_action if explore else learner.act_greedy(obs[0])
                next_obs, reward, terminated, truncated, final_obs = envs.step(np.array([action]))
                # final_obs: the real last observation where the episode ended (not the reset one)
                buffer.add(obs[0], action, float(reward[0]), final_obs[0], bool(terminated[0]))
                recorder.step(reward, terminated, truncated)
                obs = next_obs
                t += 1
                if t % h.target_update_interval == 0:  # counted in env steps, as SB3 does
                    learner.update_target()
            losses, norms = [], []
            if trains_after(h, t):
                for _ in range(phase_gradient_steps(h)):
                    loss, norm = learner.gradient_step(buffer.sample(h.batch_size, replay_rng))
                    losses.append(loss)
                    norms.append(norm)
            recorder.end_update(policy_loss=np.mean(losses) if losses else math.nan,
                                grad_norm=np.mean(norms) if norms else math.nan,
                                gradient_steps=len(losses))
    finally:
        envs.close()
    log = recorder.log
    log.stop_reason = "budget"
    return log
