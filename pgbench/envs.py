"""Gymnasium vector environments with per-episode seeding.

Every episode starts from a reset seeded by its own seed's generator, so a seed's episodes are
the same whether it runs alone or in a group with other seeds, in one vector env.
"""

from __future__ import annotations

import difflib

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.utils import seeding

from pgbench.errors import UserError


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


def reset_with_seeds(venv: gym.vector.VectorEnv, seeds) -> np.ndarray:
    """Reset sub-env ``i`` as a single env would be by ``reset(seed=seeds[i])``; observations
    ``(num_envs, obs_dim)`` float32.

    CartPole's native vector env draws all sub-envs' starts from one generator, so for it the
    start state of each sub-env is drawn here exactly as ``CartPoleEnv.reset(seed=s)`` draws it
    (uniform in [-0.05, 0.05]^4 from Gymnasium's seeded generator); a test checks the equality.
    """
    seeds = [int(s) for s in seeds]
    env = venv.unwrapped
    if isinstance(env, CartPoleVectorEnv):
        venv.reset(seed=seeds[0])
        env.state = np.stack(
            [seeding.np_random(s)[0].uniform(low=-0.05, high=0.05, size=(4,)) for s in seeds], axis=1
        )
        return env.state.T.astype(np.float32)
    obs, _ = venv.reset(seed=seeds)
    return np.asarray(obs, dtype=np.float32)
