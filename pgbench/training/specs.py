"""The policy network a config asks for, read from its env's spaces.
"""

from __future__ import annotations

from pgbench.envs.registry import make_vector_env
from pgbench.rl.config import TrainConfig
from pgbench.rl.policies import PolicySpec


def policy_spec(cfg: TrainConfig) -> PolicySpec:
    venv = make_vector_env(cfg.env_id, 1)
    try:
        obs_space, act_space = venv.single_observation_space, venv.single_action_space
    finally:
        venv.close()
    discrete = hasattr(act_space, "n")
    return PolicySpec(
        obs_dim=int(obs_space.shape[0]),
        act_dim=int(act_space.n) if discrete else int(act_space.shape[0]),
        discrete=discrete, hidden=tuple(cfg.hidden), activation=cfg.activation,
        dropout=cfg.dropout, log_std_init=cfg.log_std_init,
    )
