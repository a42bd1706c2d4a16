"""The trainers of the standard algorithms (:mod:`pgbench.rl.algorithms` lists them): PPO,
A2C, TRPO, DQN and the Stable-Baselines3 references, each ``train(cfg, progress=None) ->
SeedLog`` for one seed, writing the run-directory contract through :mod:`pgbench.runs.store`.
"""

from __future__ import annotations

import importlib

from pgbench.core.errors import UserError
from pgbench.rl.algorithms import ALGORITHMS, is_algorithm

__all__ = ["is_algorithm", "trainer_of"]


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
