"""``num_envs`` sub-envs that reset themselves on the step an episode ends (SB3's convention).

Gymnasium's vector envs reset on the *next* step by default (and CartPole's native vector env
knows no other mode); an n-step rollout is simpler when each step's transition is real. Built on
:class:`pgbench.envs.SubEnvs` (CartPole stepped by its vectorised equations, other envs one by
one), :meth:`AutoResetEnvs.step` returns the next observation (the reset one where an episode
ended) and, separately, the final observation of each ended episode, which a critic needs to
bootstrap a truncated episode. Every reset is seeded from one generator of the run's seed.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from pgbench.envs import SubEnvs

__all__ = ["AutoResetEnvs"]


class AutoResetEnvs:
    """Same-step auto-resetting sub-envs; resets seeded from ``seed_sequence``."""

    def __init__(self, env_id: str, num_envs: int, seed_sequence: np.random.SeedSequence):
        self.envs = SubEnvs(env_id, num_envs)
        self.num_envs = num_envs
        self.rng = np.random.Generator(np.random.PCG64(seed_sequence))
        self.all = np.arange(num_envs)
        space = self.envs.single_action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.low = None if self.discrete else np.asarray(space.low, dtype=np.float64)
        self.high = None if self.discrete else np.asarray(space.high, dtype=np.float64)

    def _seeds(self, n: int) -> list[int]:
        return self.rng.integers(0, 2**31 - 1, size=n).tolist()

    def reset(self) -> np.ndarray:
        """Observations of every sub-env after a seeded reset, float32 (num_envs, obs_dim)."""
        return self.envs.reset(self.all, self._seeds(self.num_envs))

    def step(self, actions: np.ndarray):
        """Step every sub-env: ``(next_obs, reward, terminated, truncated, final_obs)``.

        Box actions are clipped to the action space (the policy's unclipped sample is what the
        learner keeps, as in SB3). ``final_obs`` equals ``next_obs`` except where an episode
        ended, where it holds the episode's last observation and ``next_obs`` the reset one.
        """
        if not self.discrete:
            actions = np.clip(actions, self.low, self.high)
        obs, reward, terminated, truncated = self.envs.step(self.all, actions)
        final_obs = obs
        ended = np.flatnonzero(np.logical_or(terminated, truncated))
        if len(ended):
            obs = obs.copy()
            obs[ended] = self.envs.reset(ended, self._seeds(len(ended)))
        return obs, reward, np.asarray(terminated, bool), np.asarray(truncated, bool), final_obs

    def close(self) -> None:
        self.envs.close()
