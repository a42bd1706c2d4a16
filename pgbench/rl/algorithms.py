"""Standard deep-RL algorithms and their Stable-Baselines3 references, as pgbench variants.

Each entry of :data:`ALGORITHMS` is one variant (``pgbench variants`` lists it): a one-line
description, the dataclass of its own hyperparameters (defaults: Stable-Baselines3 2.9's; how
they are set and hashed: :mod:`pgbench.rl.hyper`), the TrainConfig fields it sets by default,
and its trainer, named as ``module:function`` and imported only when a run needs it
(:func:`pgbench.training.algorithms.trainer_of`), so that listing variants never imports
torch-heavy code or Stable-Baselines3. A trainer is a function ``train(cfg, progress=None) ->
SeedLog`` that trains one seed and returns the log :func:`pgbench.runs.store.write_run` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pgbench.core.errors import UserError

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "algorithm_variants",
    "is_algorithm",
]

@dataclass(frozen=True)
class PPOHyper:
    """PPO's own settings (SB3 ``PPO`` defaults)."""

    n_steps: int = 2048
    """Env steps per sub-env per rollout; the batch is ``n_steps * num_envs`` transitions."""
    batch_size: int = 64
    """Minibatch size; the batch is shuffled and split into minibatches each epoch."""
    vf_coef: float = 0.5
    """Weight of the critic's squared error in the joint loss."""
    max_grad_norm: float = 0.5
    """Clip the joint gradient to this L2 norm (0: no clipping)."""
    clip_range_vf: float = 0.0
    """Clip the new value to old value +- this (0: SB3's None, no value clipping)."""
    target_kl: float = 0.0
    """Stop the epochs early once the approximate KL exceeds 1.5 x this (0: never)."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over the budget (the zoo's ``lin_`` prefix)."""
    anneal_clip: bool = False
    """Anneal the clipping range linearly to 0 over the budget (``clip_range: lin_...``)."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt 2 hidden, 0.01 policy head, 1 value head)."""
    normalize_obs: bool = False
    """Running mean/std normalisation of observations (the zoo's ``normalize: true``)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return (``normalize: true``)."""


@dataclass(frozen=True)
class A2CHyper:
    """A2C's own settings (SB3 ``A2C`` defaults)."""

    n_steps: int = 5
    """Env steps per sub-env per update."""
    vf_coef: float = 0.5
    """Weight of the critic's squared error in the joint loss."""
    max_grad_norm: float = 0.5
    """Clip the joint gradient to this L2 norm (0: no clipping)."""
    rms_prop: bool = True
    """RMSprop (alpha 0.99, eps ``rms_prop_eps``) as SB3's A2C; else Adam."""
    rms_prop_eps: float = 1e-5
    """RMSprop's epsilon."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over the budget."""
    ortho_init: bool = True
    """Orthogonal initialisation, as :class:`PPOHyper`."""
    normalize_obs: bool = False
    """Running observation normalisation."""
    normalize_reward: bool = False
    """Running return-scale reward normalisation."""


@dataclass(frozen=True)
class TRPOHyper:
    """TRPO's own settings (sb3-contrib ``TRPO`` defaults); ``lr`` is the critic's."""

    n_steps: int = 2048
    """Env steps per sub-env per rollout."""
    batch_size: int = 128
    """Minibatch size of the critic's updates."""
    target_kl: float = 0.01
    """The trust region: the step is accepted only if the mean KL stays below it."""
    cg_max_steps: int = 15
    """Conjugate-gradient iterations for the natural gradient."""
    cg_damping: float = 0.1
    """Added to the Fisher-vector product's diagonal (damping)."""
    line_search_shrink: float = 0.8
    """Backtracking factor of the line search."""
    line_search_max_iter: int = 10
    """Backtracking steps before the update is rejected."""
    n_critic_updates: int = 10
    """Epochs of critic minibatch updates per rollout."""
    ortho_init: bool = True
    """Orthogonal initialisation, as :class:`PPOHyper`."""
    normalize_obs: bool = False
    """Running observation normalisation."""
    normalize_reward: bool = False
    """Running return-scale reward normalisation."""


@dataclass(frozen=True)
class DQNHyper:
    """DQN's own settings (SB3 ``DQN`` defaults); shared with the dqn19 branch's trainer."""

    buffer_size: int = 1_000_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 100
    """Env steps before learning starts."""
    batch_size: int = 32
    """Minibatch size per gradient step."""
    tau: float = 1.0
    """Soft target update coefficient (1: hard copy)."""
    train_freq: int = 4
    """Env steps (per sub-env) between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    target_update_interval: int = 10_000
    """Env steps between target-network updates."""
    exploration_fraction: float = 0.1
    """Share of the budget over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    max_grad_norm: float = 10.0
    """Clip the gradient to this L2 norm."""


# Stable-Baselines3 2.9's defaults for the TrainConfig fields every method shares
_SB3_ONPOLICY = {"hidden": (64, 64), "activation": "tanh", "log_std_init": 0.0, "num_envs": 1,
                 "entropy_coef": 0.0, "gamma": 0.99}


def _check_minibatch(hyper, values: dict[str, Any]) -> None:
    """``n_steps`` >= 1 and ``batch_size`` >= 2. A batch larger than the rollout
    (``n_steps * num_envs``) is one minibatch of the whole rollout, as in SB3 (the zoo's
    InvertedPendulum-v2 PPO runs n_steps 32, n_envs 1, batch_size 64)."""
    if hyper.n_steps < 1:
        raise UserError(f"bad value n_steps={hyper.n_steps}; accepted: an integer >= 1")
    if hyper.batch_size < 2:
        raise UserError(f"bad value batch_size={hyper.batch_size}; accepted: an integer >= 2")


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
        PPOHyper, "pgbench.training.algorithms.ppo:train",
        {**_SB3_ONPOLICY, "lr": 3e-4, "gae_lambda": 0.95, "update_epochs": 10, "ppo_clip": 0.2,
         "normalize_advantages": True}, _check_minibatch),
    "a2c": Algorithm(
        "A2C: synchronous n-step advantage actor-critic, one RMSprop step per rollout",
        A2CHyper, "pgbench.training.algorithms.a2c:train",
        {**_SB3_ONPOLICY, "lr": 7e-4, "gae_lambda": 1.0, "update_epochs": 1,
         "normalize_advantages": False}, _check_n_steps),
    "trpo": Algorithm(
        "TRPO: natural gradient by conjugate gradient, KL-constrained backtracking line "
        "search, critic fitted separately",
        TRPOHyper, "pgbench.training.algorithms.trpo:train",
        {**_SB3_ONPOLICY, "lr": 1e-3, "gae_lambda": 0.95, "normalize_advantages": True},
        _check_minibatch),
    "dqn": Algorithm(
        "DQN: replay buffer, target network, linear epsilon-greedy, Huber TD loss bootstrapping "
        "on truncation only",
        DQNHyper, "pgbench.training.algorithms.dqn:train",
        {"hidden": (64, 64), "activation": "relu", "num_envs": 1, "lr": 1e-4, "gamma": 0.99}),
}


#: The reference implementations, one per algorithm above: the same hyperparameters, defaults
#: and checks, trained by Stable-Baselines3 / sb3-contrib (the `reference` extra).
_REFERENCES = {"ppo": "Stable-Baselines3's PPO", "a2c": "Stable-Baselines3's A2C",
               "trpo": "sb3-contrib's TRPO", "dqn": "Stable-Baselines3's DQN"}
ALGORITHMS.update({
    f"sb3_{name}": Algorithm(
        f"reference: {who} at the same settings (needs the `reference` extra)",
        ALGORITHMS[name].hyper, "pgbench.training.algorithms.sb3_reference:train",
        dict(ALGORITHMS[name].options), ALGORITHMS[name].check)
    for name, who in _REFERENCES.items()})


def is_algorithm(variant: str) -> bool:
    return variant in ALGORITHMS


def algorithm_variants() -> dict[str, tuple[str, dict]]:
    """The entries :data:`pgbench.variants.VARIANTS` adds: name -> (description, options)."""
    return {name: (a.description, dict(a.options)) for name, a in ALGORITHMS.items()}

