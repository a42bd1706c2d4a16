"""The registry of named variants: each is a composition of estimator options.

Adding a variant is adding one entry to ``VARIANTS``; the trainer has no per-variant code path.
"""

from __future__ import annotations

from typing import Any

from pgbench.algorithms import algorithm_variants
from pgbench.errors import choice_error

#: name -> (one-line description, TrainConfig field overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "vanilla": (
        "REINFORCE: every log-prob weighted by the whole episode's return, no baseline",
        {"returns": "total", "baseline": "none"},
    ),
    "rtg": (
        "reward-to-go ('causality'): each log-prob weighted by the rewards that follow it",
        {"returns": "rtg", "baseline": "none"},
    ),
    "baseline": (
        "whole-episode return minus a constant baseline (running mean of past returns)",
        {"returns": "total", "baseline": "ema"},
    ),
    "rtg_baseline": (
        "reward-to-go minus a constant baseline (running mean); the slides' two modifications",
        {"returns": "rtg", "baseline": "ema"},
    ),
    "rtg_value": (
        "reward-to-go minus a learned state value V(s) (the CS234 baseline), normalised",
        {"returns": "rtg", "baseline": "value", "normalize_advantages": True},
    ),
    "gae": (
        "actor-critic with generalised advantage estimation (lambda 0.95), normalised",
        {"returns": "gae", "baseline": "value", "normalize_advantages": True},
    ),
    "ppo_fullbatch": (
        "full-batch PPO-style loss (10 Adam steps per batch, no minibatches, lightly trained "
        "critic); was `ppo` before the standard `ppo` of pgbench.algorithms",
        {"returns": "gae", "baseline": "value", "normalize_advantages": True, "loss": "ppo",
         "update_epochs": 10, "lr": 3e-4, "value_lr": 1e-3, "hidden": (64, 64), "activation": "tanh"},
    ),
}
import pgbench.algorithms.dqn_entry  # noqa: E402,F401  registers `dqn` (branch dqn19)
VARIANTS.update(algorithm_variants())  # standard algorithms with their own trainers


def variant_options(name: str) -> dict[str, Any]:
    """The TrainConfig overrides of variant ``name``."""
    if name not in VARIANTS:
        raise choice_error("variant", name, VARIANTS)
    return dict(VARIANTS[name][1])


def configure_parser(parser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="also print each variant's options")


def run(args) -> int:
    width = max(len(n) for n in VARIANTS)
    for name, (description, options) in VARIANTS.items():
        print(f"{name:<{width}}  {description}")
        if args.verbose:
            print(" " * (width + 2) + ", ".join(f"{k}={v}" for k, v in options.items()))
    return 0
