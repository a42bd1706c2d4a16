"""What PPO, A2C and TRPO share: seeding a run, minibatches, schedules.

A run's randomness comes from :func:`pgbench.core.seeding.seed_sequences` (the streams every pgbench
trainer uses): ``init`` seeds the network, ``env`` the sub-envs' resets, ``noise`` splits into
the actions' generator and the minibatch shuffles' generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch

from pgbench.core.seeding import seed_sequences, torch_generator
from pgbench.envs.registry import make_vector_env
from pgbench.rl.config import TrainConfig
from pgbench.training.algorithms.core import ActorCritic
from pgbench.training.algorithms.episodes import EpisodeRecorder
from pgbench.training.algorithms.rollout import Runner

__all__ = [
    "Run",
    "make_net",
    "minibatches",
    "progress_remaining",
    "set_lr",
    "standardize",
    "start_run",
]


@dataclass
class Run:
    """One seed's parts: network, acting side, recorder, shuffle generator."""

    net: ActorCritic
    runner: Runner
    recorder: EpisodeRecorder
    shuffle_gen: torch.Generator


def make_net(cfg: TrainConfig, ortho_init: bool, generator: torch.Generator) -> ActorCritic:
    """The actor-critic for ``cfg.env_id``'s spaces."""
    venv = make_vector_env(cfg.env_id, 1)
    obs_space, act_space = venv.single_observation_space, venv.single_action_space
    venv.close()
    discrete = isinstance(act_space, gym.spaces.Discrete)
    n_out = int(act_space.n) if discrete else int(act_space.shape[0])
    return ActorCritic(int(obs_space.shape[0]), n_out, discrete, tuple(cfg.hidden),
                       cfg.activation, cfg.log_std_init, ortho_init, generator)


def start_run(cfg: TrainConfig, hyper, progress=None) -> Run:
    """Seeded network, sub-envs, recorder and generators of one run of ``cfg``."""
    ss = seed_sequences(cfg.seed)
    act_ss, shuffle_ss = ss["noise"].spawn(2)
    net = make_net(cfg, hyper.ortho_init, torch_generator(ss["init"]))
    num_envs = max(1, cfg.num_envs)
    recorder = EpisodeRecorder(cfg, num_envs, progress)
    runner = Runner(cfg.env_id, num_envs, cfg.gamma, cfg.gae_lambda, net, recorder, ss["env"],
                    torch_generator(act_ss), hyper.normalize_obs, hyper.normalize_reward)
    return Run(net, runner, recorder, torch_generator(shuffle_ss))


def minibatches(n: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled split of ``range(n)`` into index tensors of ``size`` (the last may be shorter,
    as SB3's rollout buffer does when ``size`` does not divide ``n``)."""
    perm = torch.randperm(n, generator=generator)
    return [perm[i:i + size] for i in range(0, n, size)]


def progress_remaining(env_steps: int, total_steps: int) -> float:
    """SB3's ``progress_remaining``: 1 at the start, 0 at the budget (never below 0)."""
    return max(0.0, 1.0 - env_steps / total_steps)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def standardize(x: torch.Tensor) -> torch.Tensor:
    """(x - mean) / (std + 1e-8), std with Bessel's correction (as SB3)."""
    return (x - x.mean()) / (x.std() + 1e-8)
