"""Algorithm hyperparameters: how they are set, checked and hashed.

A standard algorithm (PPO, A2C, TRPO, DQN, and their Stable-Baselines3 references) is a variant
(see ``pgbench variants``) whose run is trained by its own trainer in :mod:`pgbench.training.algorithms`.
It reads two kinds of settings, both given the usual way (``pgbench train --set key=value``, or a
suite's ``settings`` in the workflow config):

- the :class:`~pgbench.rl.config.TrainConfig` fields that mean the same thing for every method:
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
from dataclasses import fields
from typing import Any

from pgbench.core.errors import UserError
from pgbench.rl.algorithms import ALGORITHMS


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def all_hyper_keys() -> set[str]:
    """Every algorithm hyperparameter name any registered algorithm accepts."""
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
    return parse_hyper(ALGORITHMS[cfg.variant].hyper, cfg.hyper)
