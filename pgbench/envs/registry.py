"""Gymnasium env ids: check one (naming the accepted ones) and make a vector env of it.
"""

from __future__ import annotations

import difflib

import gymnasium as gym

from pgbench.core.errors import UserError


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The spec of ``env_id``, or a UserError naming it and the ids that are accepted."""
    try:
        spec = gym.spec(env_id)
    except Exception:
        ids = sorted(k for k in gym.registry if "/" not in k)
        close = difflib.get_close_matches(env_id, ids, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown env {env_id!r}{hint}; accepted: {', '.join(ids)}") from None
    if spec.max_episode_steps is None:
        raise UserError(f"env {env_id!r} has no time limit (max_episode_steps); pgbench needs one")
    return spec


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies: the native vector entry point where Gymnasium has one
    (CartPole), a SyncVectorEnv otherwise."""
    spec = check_env_id(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    try:
        venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    except gym.error.DependencyNotInstalled as err:
        raise UserError(f"env {env_id!r} needs a package that is not installed: {err}") from None
    space = venv.single_action_space
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.Box)) or (
        isinstance(space, gym.spaces.Box) and len(space.shape) != 1
    ):
        venv.close()
        raise UserError(
            f"env {env_id!r} has action space {space}; accepted: Discrete, or a 1-D Box"
        )
    if len(venv.single_observation_space.shape) != 1:
        venv.close()
        raise UserError(
            f"env {env_id!r} has observation space {venv.single_observation_space}; accepted: 1-D Box"
        )
    return venv
