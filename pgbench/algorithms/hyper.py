"""Algorithm hyperparameters: how they are set, checked and hashed.

A standard algorithm (PPO, A2C, TRPO, DQN, and their Stable-Baselines3 references) is a variant
(see ``pgbench variants``) whose run is trained by its own trainer in :mod:`pgbench.algorithms`.
It reads two kinds of settings, both given the usual way (``pgbench train --set key=value``, or a
suite's ``settings`` in the workflow config):

- the :class:`~pgbench.config.TrainConfig` fields that mean the same thing for every method:
  ``lr``, ``gamma``, ``gae_lambda``, ``hidden``, ``activation``, ``entropy_coef``,
  ``log_std_init``, ``num_envs`` (SB3's ``n_envs``), ``update_epochs`` (``n_epochs``),
  ``ppo_clip`` (``clip_range``), ``normalize_advantages``, ``total_steps``, ``seed``;
- the algorithm's own hyperparameters, the fields of its dataclass below (``n_steps``,
  ``batch_size``, ``vf_coef``, ...). They are folded into one config field, ``hyper``: the
  canonical text ``key=value,key=value`` of *every* field of the dataclass, sorted by key, so
  that run.json shows the whole setting and the config hash covers it. ``hyper`` is empty for
  every other variant and is hashed only when set, so no existing variant's hash changes.

Defaults are Stable-Baselines3 2.9's constructor defaults, so that a suite which sets only the
values rl-baselines3-zoo lists gets what the zoo runs. ``0`` stands for SB3's ``None`` where
noted (no value clipping, no target KL).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from pgbench.errors import UserError


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


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def all_hyper_keys() -> set[str]:
    """Every algorithm hyperparameter name any registered algorithm accepts."""
    from pgbench.algorithms import ALGORITHMS

    return {name for algo in ALGORITHMS.values() for name in field_names(algo.hyper)}


def _coerce(cls, name: str, value: Any) -> Any:
    """``value`` (YAML value or command-line text) as field ``name`` of ``cls``."""
    kind = {f.name: f.type for f in fields(cls)}[name]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"bad value {name}={value!r}; expected {kind}") from None


def hyper_text(values) -> str:
    """Canonical text of a hyperparameter dataclass: ``key=value`` sorted by key, comma-joined."""
    return ",".join(f"{k}={v!r}" for k, v in sorted(dataclasses.asdict(values).items()))


def parse_hyper(cls, text: str):
    """The dataclass ``cls`` from its canonical text (or any subset of ``key=value`` items)."""
    items = {}
    for item in filter(None, text.split(",")):
        key, _, raw = item.partition("=")
        items[key] = raw
    return build(cls, items)


def build(cls, items: dict[str, Any]):
    """``cls(**items)`` with each value coerced; unknown keys raise a UserError listing the
    accepted ones."""
    names = field_names(cls)
    for key in items:
        if key not in names:
            raise UserError(f"unknown setting {key!r} for {cls.__name__}; accepted: {', '.join(names)}")
    return cls(**{k: _coerce(cls, k, v) for k, v in items.items()})


def fold_hyper(variant: str, values: dict[str, Any]) -> dict[str, Any]:
    """Move the algorithm hyperparameters of ``values`` into its ``hyper`` field.

    ``values`` are TrainConfig field values plus, possibly, hyperparameter keys (from the
    variant's options, ``--set`` or a suite's settings). For an algorithm variant the result's
    ``hyper`` is the canonical text of every hyperparameter (defaults filled in, an existing
    ``hyper`` text applied first); for any other variant a hyperparameter key is an error.
    """
    from pgbench.algorithms import ALGORITHMS

    keys = all_hyper_keys()
    given = {k: v for k, v in values.items() if k in keys}
    out = {k: v for k, v in values.items() if k not in keys}
    algo = ALGORITHMS.get(variant)
    if algo is None:
        if given or out.get("hyper"):
            name = next(iter(given), "hyper")
            raise UserError(f"setting {name!r} applies only to the variants "
                            f"{', '.join(ALGORITHMS)}; variant {variant!r} has no such setting")
        return out
    base = dataclasses.asdict(parse_hyper(algo.hyper, out.get("hyper", "")))
    hyper = build(algo.hyper, {**base, **given})
    algo.check(hyper, out)
    out["hyper"] = hyper_text(hyper)
    return out


def hyper_of(cfg):
    """The hyperparameter dataclass of an algorithm run's config."""
    from pgbench.algorithms import ALGORITHMS

    return parse_hyper(ALGORITHMS[cfg.variant].hyper, cfg.hyper)
