"""The ``dqn`` variant's registry entry (kept apart from :mod:`pgbench.algorithms`'s own table
until the branches are merged; importing this module registers it).

Its TrainConfig defaults are those of ``sb3_dqn`` (SB3's DQN: ReLU MLP [64, 64], one env, Adam
1e-4, gamma 0.99), so a suite that sets the zoo's values runs both at the same settings.
"""

from __future__ import annotations

from pgbench.algorithms import ALGORITHMS, Algorithm, register
from pgbench.algorithms.hyper import DQNHyper

if "dqn" not in ALGORITHMS:
    register("dqn", Algorithm(
        "DQN: replay buffer, target network, linear epsilon-greedy, Huber TD loss bootstrapping "
        "on truncation only (pgbench.algorithms.dqn)",
        DQNHyper, "pgbench.algorithms.dqn:train",
        {"hidden": (64, 64), "activation": "relu", "num_envs": 1, "lr": 1e-4, "gamma": 0.99}))
