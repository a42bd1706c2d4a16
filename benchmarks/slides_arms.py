"""The default slides suite's 8 arms (CartPole-v1, one episode per update, 4-128-2 policy, with
and without dropout), as configs for the benchmark scripts of this folder."""

from __future__ import annotations

from dataclasses import replace

from pgbench.rl.config import TrainConfig, make_config

ARMS = [("vanilla", {"dropout": 0.0}), ("vanilla", {"dropout": 0.6}), ("rtg", {"dropout": 0.6}),
        ("baseline", {"dropout": 0.6}),
        ("rtg_baseline", {"baseline": "ema", "dropout": 0.0}),
        ("rtg_baseline", {"baseline": "ema", "dropout": 0.6}),
        ("rtg_baseline", {"baseline": "whiten", "dropout": 0.0}),
        ("rtg_baseline", {"baseline": "whiten", "dropout": 0.6})]


def slides_configs(seeds: int, steps: int, **settings) -> list[TrainConfig]:
    """Every arm for seeds ``0 .. seeds-1``, ``steps`` env steps each, plus ``settings``."""
    base = {"env_id": "CartPole-v1", "episodes_per_update": 1, "lr": 0.01, "hidden": (128,),
            "gamma": 0.99, "total_steps": steps, **settings}
    return [replace(make_config(v, {**base, **o}), seed=s) for v, o in ARMS for s in range(seeds)]
