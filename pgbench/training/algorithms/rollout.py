"""Collect n-step rollouts from ``num_envs`` self-resetting sub-envs (PPO, A2C, TRPO).

:class:`Runner` owns one seed's envs, normaliser and action generator. :meth:`Runner.collect`
acts for ``n_steps`` steps without autograd, feeds every raw step to the
:class:`~pgbench.training.algorithms.episodes.EpisodeRecorder`, and returns a :class:`Rollout` with the
critic's values, its bootstrap values (V of the next observation; of the episode's final
observation where it was truncated) and GAE advantages and returns
(:func:`pgbench.training.algorithms.advantages.gae`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgbench.envs.autoreset import AutoResetEnvs
from pgbench.training.algorithms.advantages import gae
from pgbench.training.algorithms.core import ActorCritic
from pgbench.training.algorithms.episodes import EpisodeRecorder
from pgbench.training.algorithms.normalize import Normalizer

__all__ = ["Rollout", "Runner"]


@dataclass
class Rollout:
    """A rollout flattened to B = n_steps * num_envs rows (time-major)."""

    obs: torch.Tensor  # (B, obs_dim) float32, as the policy saw them (normalised if on)
    actions: torch.Tensor  # (B,) int64 or (B, act_dim) float32, unclipped samples
    logp: torch.Tensor  # (B,) float32, log-probability under the acting policy
    values: torch.Tensor  # (B,) float32, V(s_t) when acting
    advantages: torch.Tensor  # (B,) float32
    returns: torch.Tensor  # (B,) float32, the critic's targets: advantages + values

    def __len__(self) -> int:
        return self.obs.shape[0]


class Runner:
    """One seed's acting side: envs, normaliser, action generator, current observation."""

    def __init__(self, env_id: str, num_envs: int, gamma: float, lam: float, net: ActorCritic,
                 recorder: EpisodeRecorder, env_ss: np.random.SeedSequence,
                 act_gen: torch.Generator, normalize_obs: bool, normalize_reward: bool):
        self.envs = AutoResetEnvs(env_id, num_envs, env_ss)
        self.net, self.recorder, self.gen = net, recorder, act_gen
        self.gamma, self.lam = gamma, lam
        first = self.envs.reset()
        self.norm = Normalizer(first.shape[1], num_envs, gamma, normalize_obs, normalize_reward)
        self.obs = self.norm.obs(first)

    def collect(self, n_steps: int) -> Rollout:
        N = self.envs.num_envs
        obs, acts, logps, vals = [], [], [], []
        rew = np.zeros((n_steps, N))
        term = np.zeros((n_steps, N), dtype=bool)
        trunc = np.zeros((n_steps, N), dtype=bool)
        finals: list[tuple[int, int, np.ndarray]] = []  # (t, env, normalised final obs)
        with torch.no_grad():  # not inference_mode: these tensors feed the update
            for t in range(n_steps):
                x = torch.from_numpy(self.obs)
                dist = self.net.dist(x)
                a = dist.sample(self.gen)
                obs.append(x)
                acts.append(a)
                logps.append(dist.log_prob(a))
                vals.append(self.net.value(x))
                nxt, r, term[t], tr, final = self.envs.step(a.numpy())
                trunc[t] = tr & ~term[t]
                self.recorder.step(r, term[t], trunc[t])
                ended = term[t] | trunc[t]
                rew[t] = self.norm.reward(r, ended)
                for i in np.flatnonzero(trunc[t]).tolist():
                    finals.append((t, i, self.norm.obs(final[i:i + 1], update=False)))
                self.obs = self.norm.obs(nxt)
            values = torch.stack(vals)  # (T, N)
            last = self.net.value(torch.from_numpy(self.obs))
            next_values = torch.cat([values[1:], last[None]]).numpy().copy()
            if finals:
                v = self.net.value(torch.from_numpy(np.concatenate([f[2] for f in finals])))
                for (t, i, _), vi in zip(finals, v.tolist()):
                    next_values[t, i] = vi
        adv, ret = gae(rew, values.numpy(), next_values, term, trunc, self.gamma, self.lam)
        return Rollout(torch.cat(obs), torch.cat(acts), torch.cat(logps), values.reshape(-1),
                       torch.from_numpy(adv.reshape(-1).astype(np.float32)),
                       torch.from_numpy(ret.reshape(-1).astype(np.float32)))

    def close(self) -> None:
        self.envs.close()
