"""Running observation and reward normalisation (rl-baselines3-zoo's ``normalize: true``).

The statistics Stable-Baselines3's ``VecNormalize`` keeps, in float64: observations are
standardised by a running mean and variance over every observation seen (clipped to +-10); rewards
are divided by the running standard deviation of the discounted return (not re-centred, clipped
to +-10), whose accumulator restarts when an episode ends. Off, both are the identity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Normalizer", "RunningMeanStd"]

CLIP = 10.0  # VecNormalize's clip_obs and clip_reward
EPS = 1e-8  # added to the variance before the square root


class RunningMeanStd:
    """Mean and (population) variance of every row seen, merged batch by batch (Chan et al.)."""

    def __init__(self, shape=()):
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4  # as SB3: the first batch then dominates the unit prior

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        b_mean, b_var, b_count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta, total = b_mean - self.mean, self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean, self.var, self.count = self.mean + delta * b_count / total, m2 / total, total


class Normalizer:
    """Observation and reward normalisation of one run's sub-envs (each part optional)."""

    def __init__(self, obs_dim: int, num_envs: int, gamma: float, obs: bool, reward: bool):
        self.obs_rms = RunningMeanStd((obs_dim,)) if obs else None
        self.ret_rms = RunningMeanStd(()) if reward else None
        self.ret = np.zeros(num_envs)
        self.gamma = gamma

    def obs(self, x: np.ndarray, update: bool = True) -> np.ndarray:
        """Normalised float32 observations; ``update`` first adds ``x`` to the statistics."""
        if self.obs_rms is None:
            return x
        if update:
            self.obs_rms.update(x)
        z = (x - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + EPS)
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def reward(self, r: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """Scaled rewards of one step of every sub-env (float64)."""
        if self.ret_rms is None:
            return r
        self.ret = self.ret * self.gamma + r
        self.ret_rms.update(self.ret)
        out = np.clip(r / np.sqrt(self.ret_rms.var + EPS), -CLIP, CLIP)
        self.ret[ended] = 0.0
        return out
