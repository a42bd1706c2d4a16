"""Standard deep-RL algorithms and their Stable-Baselines3 references, as pgbench variants.

Each entry of :data:`ALGORITHMS` is one variant (``pgbench variants`` lists it): a one-line
description, the class of its own hyperparameters (:mod:`pgbench.algorithms.hyper`), the
TrainConfig fields it sets by default, and its trainer, imported only when a run needs it (so
listing variants never imports torch-heavy code or Stable-Baselines3). A trainer is a function
``train(cfg, progress=None) -> SeedLog`` that trains one seed and returns the log that
:func:`pgbench.train.write_run` writes (the run-directory contract of docs/contracts.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from pgbench.algorithms.hyper import A2CHyper, DQNHyper, PPOHyper, TRPOHyper
from pgbench.errors import UserError

__all__ = ["ALGORITHMS", "Algorithm", "algorithm_variants", "is_algorithm", "trainer_of",
           "register"]

# Stable-Baselines3 2.9's defaults for the TrainConfig fields every method shares
_SB3_ONPOLICY = {"hidden": (64, 64), "activation": "tanh", "log_std_init": 0.0, "num_envs": 1,
                 "entropy_coef": 0.0, "gamma": 0.99}


def _check_minibatch(hyper, values: dict[str, Any]) -> None:
    """``batch_size`` must be at least 2 and at most the rollout (``n_steps * num_envs``)."""
    rollout = hyper.n_steps * max(1, int(values.get("num_envs", 1)))
    if hyper.n_steps < 1:
        raise UserError(f"bad value n_steps={hyper.n_steps}; accepted: an integer >= 1")
    if not 2 <= hyper.batch_size <= rollout:
        raise UserError(f"bad value batch_size={hyper.batch_size}; accepted: an integer in "
                        f"[2, n_steps * num_envs = {rollout}]")


def _check_n_steps(hyper, values: dict[str, Any]) -> None:
    if hyper.n_steps < 1:
        raise UserError(f"bad value n_steps={hyper.n_steps}; accepted: an integer >= 1")


def _no_check(hyper, values: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm variant."""

    description: str
    hyper: type
    trainer: str
    """``module:function`` of the trainer, imported on first use."""
    options: dict = field(default_factory=dict)
    """TrainConfig field values of the variant (before a suite's or ``--set``'s)."""
    check: Callable = _no_check
    """``check(hyper, values)`` raises a UserError on a combination out of range."""


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(
        "PPO as the literature runs it: n-step rollouts from parallel envs, GAE, minibatch "
        "epochs of the clipped surrogate with the critic on the same minibatches",
        PPOHyper, "pgbench.algorithms.ppo:train",
        {**_SB3_ONPOLICY, "lr": 3e-4, "gae_lambda": 0.95, "update_epochs": 10, "ppo_clip": 0.2,
         "normalize_advantages": True}, _check_minibatch),
    "a2c": Algorithm(
        "A2C: synchronous n-step advantage actor-critic, one RMSprop step per rollout",
        A2CHyper, "pgbench.algorithms.a2c:train",
        {**_SB3_ONPOLICY, "lr": 7e-4, "gae_lambda": 1.0, "update_epochs": 1,
         "normalize_advantages": False}, _check_n_steps),
    "trpo": Algorithm(
        "TRPO: natural gradient by conjugate gradient, KL-constrained backtracking line "
        "search, critic fitted separately",
        TRPOHyper, "pgbench.algorithms.trpo:train",
        {**_SB3_ONPOLICY, "lr": 1e-3, "gae_lambda": 0.95, "normalize_advantages": True},
        _check_minibatch),
    "sb3_ppo": Algorithm(
        "reference: Stable-Baselines3's PPO at the same settings (needs the `reference` extra)",
        PPOHyper, "pgbench.algorithms.sb3_reference:train",
        {**_SB3_ONPOLICY, "lr": 3e-4, "gae_lambda": 0.95, "update_epochs": 10, "ppo_clip": 0.2,
         "normalize_advantages": True}, _check_minibatch),
    "sb3_a2c": Algorithm(
        "reference: Stable-Baselines3's A2C at the same settings (needs the `reference` extra)",
        A2CHyper, "pgbench.algorithms.sb3_reference:train",
        {**_SB3_ONPOLICY, "lr": 7e-4, "gae_lambda": 1.0, "normalize_advantages": False},
        _check_n_steps),
    "sb3_trpo": Algorithm(
        "reference: sb3-contrib's TRPO at the same settings (needs the `reference` extra)",
        TRPOHyper, "pgbench.algorithms.sb3_reference:train",
        {**_SB3_ONPOLICY, "lr": 1e-3, "gae_lambda": 0.95, "normalize_advantages": True},
        _check_minibatch),
    "sb3_dqn": Algorithm(
        "reference: Stable-Baselines3's DQN at the same settings (needs the `reference` extra)",
        DQNHyper, "pgbench.algorithms.sb3_reference:train",
        {"hidden": (64, 64), "activation": "relu", "num_envs": 1, "lr": 1e-4, "gamma": 0.99}),
}


def register(name: str, algorithm: Algorithm) -> None:
    """Add an algorithm variant (e.g. the dqn19 branch's ``dqn``); names are unique."""
    if name in ALGORITHMS:
        raise ValueError(f"algorithm {name!r} is registered twice")
    ALGORITHMS[name] = algorithm


def is_algorithm(variant: str) -> bool:
    return variant in ALGORITHMS


def algorithm_variants() -> dict[str, tuple[str, dict]]:
    """The entries :data:`pgbench.variants.VARIANTS` adds: name -> (description, options)."""
    return {name: (a.description, dict(a.options)) for name, a in ALGORITHMS.items()}


def trainer_of(variant: str):
    """The trainer function of an algorithm variant (imported now)."""
    module, _, func = ALGORITHMS[variant].trainer.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except ImportError as err:
        if "stable_baselines3" in str(err) or "sb3_contrib" in str(err):
            raise UserError(f"variant {variant!r} needs Stable-Baselines3: "
                            "pip install -c constraints.txt -e '.[reference]'") from None
        raise
