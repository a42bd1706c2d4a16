"""What one run records while it trains, and the two rules of "solved": the sources' running
reward (the PyTorch example's, from 10 with weight 0.05), and the mean of the last 100 episodes
(the last-100 rule).

The PyTorch example starts its running reward at 10, a start made for CartPole. On an env whose
threshold is at most 10 (Acrobot-v1's is -100) that start alone would "solve" the env at the
first episode, so there the running reward starts from the first episode's return instead. No
env with a threshold above 10 (CartPole, InvertedPendulum) is affected.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pgbench.rl.config import TrainConfig

RUNNING_REWARD_START = 10.0  # the PyTorch examples' reinforce.py starts its running reward here
RUNNING_REWARD_WEIGHT = 0.05  # ... and mixes in each episode's return with this weight
LAST100_WINDOW = 100  # the last-100 rule: mean return of the last 100 episodes >= threshold
LAST100_GRACE_EPISODES = 200  # with stop_when_solved, episodes a run may go on after the sources'
# rule fired, waiting for the last-100 rule to fire too (so both can be reported)


@dataclass
class SeedLog:
    """What one seed of a group has recorded so far."""

    seed: int
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    # optimiser steps on the acting network so far (the policy's, or DQN's Q-network's; critic-only
    # steps do not count); None for a trainer that does not count them (the SB3 references)
    gradient_steps: int | None = None
    running_reward: float = RUNNING_REWARD_START
    solved: dict | None = None
    solved_last100: dict | None = None
    stop_reason: str | None = None
    ema_state: float = float("nan")
    episode_rows: list = field(default_factory=list)
    update_rows: list = field(default_factory=list)
    last_returns: deque = field(default_factory=lambda: deque(maxlen=LAST100_WINDOW))


def record_episode(log: SeedLog, ret: float, length: int, terminated: bool, truncated: bool,
                   threshold: float | None) -> None:
    """Add one finished episode to ``log``: its row, the running reward, and whether either rule
    of "solved" fired at it (the sources' running reward, or the mean of the last 100)."""
    log.last_returns.append(ret)
    log.env_steps += length
    if log.episodes == 0 and threshold is not None and threshold <= RUNNING_REWARD_START:
        log.running_reward = ret  # a start of 10 would already be past this threshold
    log.running_reward = (RUNNING_REWARD_WEIGHT * ret
                          + (1 - RUNNING_REWARD_WEIGHT) * log.running_reward)
    log.episode_rows.append((log.updates, log.episodes, log.env_steps, ret, length, terminated,
                             truncated, log.running_reward))
    if threshold is not None:
        here = {"update": log.updates, "episode": log.episodes, "env_steps": log.env_steps}
        if log.gradient_steps is not None:  # taken before this episode ended
            here["gradient_steps"] = log.gradient_steps
        if log.solved is None and log.running_reward >= threshold:
            log.solved = here
        if (log.solved_last100 is None and log.episodes + 1 >= LAST100_WINDOW
                and sum(log.last_returns) >= LAST100_WINDOW * threshold):
            log.solved_last100 = here
    log.episodes += 1


def stop_reason(cfg: TrainConfig, log: SeedLog) -> str | None:
    """Why the run stops after its last update ("solved", "budget"), or None to go on."""
    if cfg.stop_when_solved and log.solved is not None and (
            log.solved_last100 is not None
            or log.episodes - log.solved["episode"] > LAST100_GRACE_EPISODES):
        return "solved"
    if log.env_steps >= cfg.total_steps:
        return "budget"
    return None
