"""Record the episodes that finish inside n-step rollouts, in pgbench's run-directory contract.

pgbench's own trainer collects whole episodes per update; the standard algorithms (and the SB3
references) collect a fixed number of steps from each of ``num_envs`` sub-envs, so episodes end
anywhere inside a rollout and run across updates. :class:`EpisodeRecorder` keeps each sub-env's
running return and length, and when an episode ends records it with
:func:`pgbench.runs.log.record_episode` (so "solved" is judged by the same two rules), where:

- ``update`` is the number of updates done before the episode ended (the update whose rollout
  held its last step);
- ``env_steps`` is the run's env-step counter when the episode ended: every step of every
  sub-env so far, including steps of episodes still running (what SB3 calls ``num_timesteps``).
  Episodes that end on the same vector step share it; within a step they are ordered by
  sub-env index.

The finished log goes to :func:`pgbench.runs.store.write_run` unchanged, so ``pgbench aggregate``,
``claims`` and ``report`` read these runs as any other.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np

from pgbench.envs.registry import check_env_id
from pgbench.rl.config import TrainConfig
from pgbench.runs.log import SeedLog, record_episode, stop_reason

__all__ = ["EpisodeRecorder"]


class EpisodeRecorder:
    """One seed's episodes and updates, fed one vector step and one update at a time."""

    def __init__(self, cfg: TrainConfig, num_envs: int, progress=None,
                 count_gradient_steps: bool = True):
        self.cfg = cfg
        self.log = SeedLog(cfg.seed, gradient_steps=0 if count_gradient_steps else None)
        self.threshold = check_env_id(cfg.env_id).reward_threshold
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.env_steps = 0
        self.episodes_at_update = 0
        self.progress = progress
        self.start = time.perf_counter()

    def step(self, rewards, terminated, truncated) -> None:
        """Add one step of every sub-env (raw env rewards, not normalised ones)."""
        self.env_steps += len(self.returns)
        self.returns += np.asarray(rewards, dtype=np.float64)
        self.lengths += 1
        ended = np.flatnonzero(np.logical_or(terminated, truncated))
        for i in ended.tolist():
            self.episode(float(self.returns[i]), int(self.lengths[i]), bool(terminated[i]),
                         bool(truncated[i]) and not bool(terminated[i]))
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        self.log.env_steps = self.env_steps

    def episode(self, ret: float, length: int, terminated: bool, truncated: bool,
                env_steps: int | None = None) -> None:
        """Record one finished episode that ended at ``env_steps`` (default: the counter now)."""
        at = self.env_steps if env_steps is None else env_steps
        self.log.env_steps = at - length  # record_episode adds the length back: it ends at `at`
        record_episode(self.log, ret, length, terminated, truncated, self.threshold)
        self.log.env_steps = max(at, self.env_steps)

    def end_update(self, policy_loss=math.nan, grad_norm=math.nan, entropy=math.nan,
                   value_loss=math.nan, env_steps: int | None = None,
                   gradient_steps: int | None = None) -> bool:
        """Close the current update with its statistics and the number of optimiser steps it
        took on the acting network (None: not counted); True when the run should stop."""
        if gradient_steps is not None and self.log.gradient_steps is not None:
            self.log.gradient_steps += gradient_steps
        if env_steps is not None:
            self.env_steps = self.log.env_steps = env_steps
        log = self.log
        log.update_rows.append((log.updates, self.env_steps, log.episodes - self.episodes_at_update,
                                float(policy_loss), float(grad_norm), float(entropy),
                                float(value_loss), time.perf_counter() - self.start))
        log.updates += 1
        self.episodes_at_update = log.episodes
        log.stop_reason = stop_reason(self.cfg, log)
        if self.progress is not None:
            self.progress(SimpleNamespace(cfgs=[self.cfg], logs=[log]))
        return log.stop_reason is not None
