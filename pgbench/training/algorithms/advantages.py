"""Generalised advantage estimation over an n-step rollout, terminated and truncated apart.

Pure functions on (T, N) arrays: T steps of N sub-envs. Episodes end anywhere inside the rollout;
the sub-envs reset themselves on the step an episode ends (:mod:`pgbench.envs.autoreset`).

For step t of one sub-env, with V the critic:

- ``next_value[t]`` is V of the observation that followed the action: V(s_{t+1}) inside an
  episode, V(final observation) where the episode was cut by the time limit (truncated), and
  anything (it is masked) where it terminated;
- delta_t = r_t + gamma * (1 - terminated_t) * next_value[t] - V(s_t): a truncated episode
  bootstraps, a terminated one does not;
- A_t = delta_t + gamma * lambda * (1 - ended_t) * A_{t+1}, ended = terminated or truncated: the
  sum never crosses into the next episode; the rollout's last step has A_{T} = 0, so its
  next_value (the critic at the observation after the rollout) closes the sum.

With lambda = 1 this is A2C's n-step return minus V; with lambda = 0 the one-step TD error.
Returns (the critic's targets) are A + V.

Worked example (gamma 0.5, lambda 1, one sub-env, T = 3): rewards (1, 1, 1), values (0, 0, 0),
next_values (0, 4, 8), the episode truncated at t = 1 (terminated all False): A_2 = 1 + 0.5 * 8 = 5;
A_1 = 1 + 0.5 * 4 = 3 (ended: no A_2); A_0 = 1 + 0.5 * 0 + 0.5 * A_1 = 2.5. Had the episode
terminated at t = 1 instead, A_1 = 1 and A_0 = 1.5.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gae"]


def gae(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    """``(advantages, returns)``, each (T, N) float64, of a rollout (see the module docstring)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.asarray(next_values, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    ended = terminated | np.asarray(truncated, dtype=bool)
    delta = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    adv = np.zeros_like(rewards)
    carry = np.zeros(rewards.shape[1:])
    for t in range(rewards.shape[0] - 1, -1, -1):
        carry = delta[t] + gamma * lam * np.where(ended[t], 0.0, carry)
        adv[t] = carry
    return adv, adv + values
