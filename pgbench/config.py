"""One frozen dataclass describes a training run; its hash is its identity.

Every field can be set from the command line with ``--set key=value``; a variant (see
:mod:`pgbench.variants`) is a named set of defaults for the estimator fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from pgbench.errors import UserError

RETURNS = ("total", "rtg", "gae")
BASELINES = ("none", "mean", "ema", "whiten", "time", "optimal", "value")
LOSSES = ("pg", "ppo")
ACTIVATIONS = ("relu", "tanh")
ENGINES = ("torch", "numba")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run's numbers (and nothing else).

    Budgets are per seed. Exactly one of ``episodes_per_update`` and ``steps_per_update`` is
    positive.
    """

    env_id: str = "CartPole-v1"
    """Gymnasium environment id."""
    variant: str = "rtg_baseline"
    """Name of the estimator variant whose defaults were applied (see `pgbench variants`)."""
    seed: int = 0
    """Seed of every random draw of the run: network init, actions, dropout, env resets."""
    total_steps: int = 500_000
    """Env-step budget; the run stops after the update whose batch crosses it."""
    episodes_per_update: int = 1
    """Complete episodes per policy update (0 to use ``steps_per_update``)."""
    steps_per_update: int = 0
    """Env steps per update, in whole episodes: episodes are collected until at least this many
    steps (0 to use ``episodes_per_update``)."""
    num_envs: int = 0
    """Parallel envs per seed; 0 = ``episodes_per_update``, or 8 with ``steps_per_update``."""
    stop_when_solved: bool = False
    """Stop once the running reward (EMA weight 0.05 from 10) reaches the env's threshold and
    the mean return of the last 100 episodes does too (or 200 episodes later, whichever first),
    so that both definitions of "solved" can be reported."""
    returns: str = "rtg"
    """Weight of each log-probability: ``total`` (R(tau)), ``rtg`` (reward-to-go), ``gae``."""
    baseline: str = "none"
    """Subtracted from the returns: none, mean (batch mean), ema (running mean of past batches),
    whiten (per-episode standardisation), time (mean at each time index), optimal (Levine's
    variance-minimising constant), value (learned V(s))."""
    ema_weight: float = 0.05
    """Weight of the newest batch in the ``ema`` baseline."""
    normalize_advantages: bool = False
    """Standardise advantages over the batch before the loss."""
    gamma: float = 0.99
    """Discount factor."""
    bootstrap_truncated: bool = True
    """Add the critic's V(s_T) to the returns of an episode cut by the time limit (with a
    critic). Off, a critic's arm weighs returns as an arm without a critic does: with gamma = 1
    and a critic that cannot see time, the bootstrapped target has no fixed point."""
    gae_lambda: float = 0.95
    """GAE's lambda (``returns=gae``)."""
    loss: str = "pg"
    """``pg`` (REINFORCE surrogate) or ``ppo`` (clipped surrogate, several epochs)."""
    ppo_clip: float = 0.2
    """PPO's clipping range."""
    update_epochs: int = 1
    """Passes over each batch (PPO); REINFORCE uses 1."""
    lr: float = 1e-2
    """Adam learning rate of the policy."""
    hidden: tuple[int, ...] = (128,)
    """Hidden layer sizes of the policy (and critic)."""
    activation: str = "relu"
    """Hidden activation: relu or tanh."""
    dropout: float = 0.0
    """Dropout probability after each hidden layer while acting and learning (masks reused)."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (Box actions)."""
    value_lr: float = 1e-2
    """Adam learning rate of the critic."""
    value_iters: int = 5
    """Full-batch critic steps per update."""
    entropy_coef: float = 0.0
    """Entropy bonus weight."""
    engine: str = "torch"
    """What computes the run: ``torch`` (every config; the seeds of a group share each forward
    pass and update), or ``numba`` (compiled loops, one run at a time, many times faster on
    one-episode updates; covers REINFORCE without a critic on CartPole with one hidden layer,
    see :mod:`pgbench.compiled`). The same seed draws the same random numbers under both; the
    network's rounding differs, so the runs part ways once a rounding difference first flips an
    action (after tens to thousands of episodes)."""
    hyper: str = ""
    """The own hyperparameters of a standard algorithm variant (ppo, a2c, trpo, sb3_*), as
    canonical ``key=value,...`` text of every one; set them one by one with ``--set n_steps=32``
    (:mod:`pgbench.algorithms.hyper`). Empty for every other variant."""

    # -- derived values: properties, never patched fields -------------------------------------
    @property
    def envs_per_seed(self) -> int:
        if self.num_envs > 0:
            return self.num_envs
        return self.episodes_per_update if self.episodes_per_update > 0 else 8

    @property
    def has_critic(self) -> bool:
        return self.baseline == "value" or self.returns == "gae"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    def hash(self, with_seed: bool = True) -> str:
        d = self.to_dict()
        # fields added after the committed references: at their default they leave the hash of
        # every older config unchanged
        for name, default in _HASHED_ONLY_IF_SET.items():
            if d.get(name) == default:
                d.pop(name)
        if not with_seed:
            d.pop("seed")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> "TrainConfig":
        """Raise UserError on a value out of range; return self."""

        def bad(name, accepted):
            raise UserError(f"bad value {name}={getattr(self, name)!r}; accepted: {accepted}")

        if self.returns not in RETURNS:
            bad("returns", ", ".join(RETURNS))
        if self.baseline not in BASELINES:
            bad("baseline", ", ".join(BASELINES))
        if self.loss not in LOSSES:
            bad("loss", ", ".join(LOSSES))
        if self.activation not in ACTIVATIONS:
            bad("activation", ", ".join(ACTIVATIONS))
        if self.engine not in ENGINES:
            bad("engine", ", ".join(ENGINES))
        if not 0.0 <= self.gamma <= 1.0:
            bad("gamma", "a number in [0, 1]")
        if not 0.0 <= self.gae_lambda <= 1.0:
            bad("gae_lambda", "a number in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            bad("dropout", "a number in [0, 1)")
        if not 0.0 < self.ema_weight <= 1.0:
            bad("ema_weight", "a number in (0, 1]")
        for name in ("lr", "value_lr"):
            if not getattr(self, name) > 0:
                bad(name, "a positive number")
        if self.total_steps <= 0:
            bad("total_steps", "a positive integer")
        for name in ("episodes_per_update", "steps_per_update", "num_envs", "seed"):
            if getattr(self, name) < 0:
                bad(name, "an integer >= 0")
        if (self.episodes_per_update > 0) == (self.steps_per_update > 0):
            raise UserError(
                f"set exactly one of episodes_per_update ({self.episodes_per_update}) and "
                f"steps_per_update ({self.steps_per_update}) to a positive integer"
            )
        for name in ("update_epochs", "value_iters"):
            if getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            bad("hidden", "one or more positive layer sizes, e.g. 64,64")
        if self.baseline == "whiten" and self.returns == "total":
            raise UserError(
                "baseline=whiten needs returns=rtg: whitening a total return that is the same on "
                "every step of an episode leaves nothing"
            )
        if (self.returns == "total" and self.episodes_per_update == 1
                and (self.normalize_advantages or self.baseline in ("mean", "time", "optimal"))):
            why = ("normalize_advantages" if self.normalize_advantages
                   else f"baseline={self.baseline}")
            raise UserError(
                f"returns=total with {why} and episodes_per_update=1 makes every advantage 0 "
                "(the episode's return minus its own mean), so nothing is learnt but rounding "
                "noise; accepted: returns=rtg, baseline none or ema, or episodes_per_update >= 2")
        if self.returns == "gae" and self.baseline not in ("none", "value"):
            bad("baseline", "none or value with returns=gae (GAE brings its own critic)")
        if self.engine == "numba":
            from pgbench.compiled import check_supported

            check_supported(self)
        return self


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))
_HASHED_ONLY_IF_SET = {"bootstrap_truncated": True, "hyper": ""}


def _parse_value(name: str, raw: str, current: Any) -> Any:
    """Parse ``raw`` to the type of the field's default ``current``."""
    try:
        if isinstance(current, bool):
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if isinstance(current, int):
            return int(float(raw)) if float(raw).is_integer() else int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            return tuple(int(x) for x in raw.replace(" ", "").split(",") if x)
        return str(raw)
    except ValueError:
        kind = type(current).__name__ if not isinstance(current, tuple) else "comma-separated ints"
        raise UserError(f"bad value {name}={raw!r}; expected {kind}") from None


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (from YAML or the command line) to field ``name``'s type."""
    if name not in FIELD_NAMES:
        from pgbench.algorithms.hyper import all_hyper_keys

        if name in all_hyper_keys():  # an algorithm's own setting: checked in make_config
            return value
        raise UserError(f"unknown setting {name!r}; accepted: {', '.join(FIELD_NAMES)}")
    current = getattr(TrainConfig(), name)
    if isinstance(value, str):
        return _parse_value(name, value, current)
    if isinstance(current, tuple):
        if isinstance(value, int):
            return (value,)
        return tuple(int(v) for v in value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise UserError(f"bad value {name}={value!r}; expected true or false")
        return value
    if isinstance(current, int) and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
    if isinstance(current, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise UserError(f"bad value {name}={value!r}; expected {type(current).__name__}")


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """``["lr=0.01", "hidden=64,64"]`` -> ``{"lr": 0.01, "hidden": (64, 64)}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"bad --set {item!r}; expected key=value, e.g. --set lr=0.01")
        key, raw = item.split("=", 1)
        out[key.strip()] = coerce(key.strip(), raw)
    return out


def make_config(variant: str, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults, then the variant's options, then ``overrides``; validated."""
    from pgbench.variants import variant_options

    values = dict(variant_options(variant))
    values["variant"] = variant
    for key, value in overrides.items():
        values[key] = coerce(key, value)
    from pgbench.algorithms.hyper import fold_hyper

    return TrainConfig(**fold_hyper(variant, values)).validate()
