"""A ring-buffer experience replay with uniform sampling, for DQN.

Each row is one transition ``(obs, action, reward, next_obs, terminated)``. ``next_obs`` is the
observation the step really returned, also when the step ended the episode: pgbench's
:class:`pgbench.envs.subenvs.SubEnvs` never auto-resets, so the state a truncated transition bootstraps
from is the real last state, not the next episode's first. Only ``terminated`` is stored: a
truncated transition is an ordinary one for the TD target (it bootstraps).

Sampling draws ``batch_size`` row indices uniformly, with replacement, from the rows written so
far (``[0, size)``), as SB3's ``ReplayBuffer.sample`` does; once ``capacity`` rows are written
the oldest is overwritten first (the ring wraps), and every index is a live row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Transitions:
    """A sampled batch: ``obs, next_obs (B, obs_dim)`` float32, ``actions (B,)`` int64,
    ``rewards (B,)`` float32, ``terminated (B,)`` float32 (1.0 where the episode ended in a
    terminal state)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """``capacity`` transitions of ``obs_dim``-dimensional observations and discrete actions."""

    def __init__(self, capacity: int, obs_dim: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.pos = 0  # the row the next transition goes to
        self.size = 0  # rows written so far, at most capacity

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition in row ``pos`` (overwriting the oldest once full)."""
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``batch_size`` rows drawn uniformly with replacement from ``[0, size)``."""
        if self.size == 0:
            raise ValueError("sampling from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        idx = self.sample_indices(batch_size, rng)
        return Transitions(
            obs=torch.from_numpy(self.obs[idx]), actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]), next_obs=torch.from_numpy(self.next_obs[idx]),
            terminated=torch.from_numpy(self.terminated[idx]))
