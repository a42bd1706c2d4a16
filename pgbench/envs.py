"""Gymnasium vector environments with per-episode seeding.

Every episode starts from a reset seeded by its own seed's generator, so a seed's episodes are
the same whether it runs alone or in a group with other seeds, in one vector env.
"""

from __future__ import annotations

import difflib
import functools
import math

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

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
        if venv is env:  # what CartPoleVectorEnv.reset sets, but for its (unused) generator
            env.steps = np.zeros(env.num_envs, dtype=np.int32)
            env.prev_done = np.zeros(env.num_envs, dtype=np.bool_)
            env.steps_beyond_terminated = None
        else:  # wrappers see the reset
            venv.reset(seed=seeds[0])
        # np.random.Generator(PCG64(s)) is what gymnasium.utils.seeding.np_random(s) builds
        env.state = np.stack(
            [np.random.Generator(np.random.PCG64(s)).uniform(low=-0.05, high=0.05, size=(4,))
             for s in seeds], axis=1
        )
        return env.state.T.astype(np.float32)
    obs, _ = venv.reset(seed=seeds)
    return np.asarray(obs, dtype=np.float32)


def lockstep_step(venv: gym.vector.VectorEnv):
    """A function ``step(actions) -> (obs, reward, terminated, truncated)`` for collecting rounds.

    Rounds reset every sub-env themselves and mask the steps after an episode's end, so they need
    neither the vector env's auto-reset nor its per-step check that the actions lie in the action
    space (they come from the policy). For CartPole's native vector env, whose step costs less
    than those two, the step is :func:`_cartpole_step`: its equations alone, used only once they
    have been checked to give Gymnasium's numbers bit for bit. Other envs step as they are.
    """
    if isinstance(venv, CartPoleVectorEnv) and _cartpole_step_matches_gymnasium():
        # a seed alone: Python floats beat NumPy calls on 1-element arrays, where they agree
        if venv.num_envs == 1 and _cartpole_step_one_matches_gymnasium():
            return lambda actions: _cartpole_step_one(venv, actions)
        return lambda actions: _cartpole_step(venv, actions)

    def step(actions):
        obs, reward, terminated, truncated, _ = venv.step(actions)
        return obs, reward, terminated, truncated

    return step


def _cartpole_step(env: CartPoleVectorEnv, action: np.ndarray):
    """``CartPoleVectorEnv.step`` (Gymnasium 1.x) without the action check and the auto-reset.

    A sub-env whose episode has ended keeps moving under its equations instead of restarting;
    its steps are masked out of the round (and stay finite: a round lasts at most the step limit).
    """
    x, x_dot, theta, theta_dot = env.state
    force = np.where(action == 1, env.force_mag, -env.force_mag)  # = sign(action - 0.5) * force_mag
    costheta = np.cos(theta)
    sintheta = np.sin(theta)
    temp = (force + env.polemass_length * np.square(theta_dot) * sintheta) / env.total_mass
    thetaacc = (env.gravity * sintheta - costheta * temp) / (
        env.length * (4.0 / 3.0 - env.masspole * np.square(costheta) / env.total_mass)
    )
    xacc = temp - env.polemass_length * thetaacc * costheta / env.total_mass
    x, x_dot, theta, theta_dot = _integrate(env, x, x_dot, theta, theta_dot, xacc, thetaacc)
    state = np.empty((4, x.shape[0]))
    state[0], state[1], state[2], state[3] = x, x_dot, theta, theta_dot
    env.state = state
    # |x| > limit is (x < -limit) | (x > limit) for every float
    terminated = (np.abs(x) > env.x_threshold) | (np.abs(theta) > env.theta_threshold_radians)
    env.steps += 1
    truncated = env.steps >= env.max_episode_steps
    if env._sutton_barto_reward:
        reward = -np.array(terminated, dtype=np.float32)
    else:
        reward = np.ones_like(terminated, dtype=np.float32)
    return env.state.T.astype(np.float32), reward, terminated, truncated


def _integrate(env: CartPoleVectorEnv, x, x_dot, theta, theta_dot, xacc, thetaacc):
    """One step of CartPole's integrator, as Gymnasium writes it (arrays or floats alike)."""
    if env.kinematics_integrator == "euler":
        x = x + env.tau * x_dot
        x_dot = x_dot + env.tau * xacc
        theta = theta + env.tau * theta_dot
        theta_dot = theta_dot + env.tau * thetaacc
    else:  # semi-implicit Euler
        x_dot = x_dot + env.tau * xacc
        x = x + env.tau * x_dot
        theta_dot = theta_dot + env.tau * thetaacc
        theta = theta + env.tau * theta_dot
    return x, x_dot, theta, theta_dot


def _cartpole_step_one(env: CartPoleVectorEnv, action: np.ndarray):
    """:func:`_cartpole_step` for a vector env of one sub-env, in Python floats: the same
    operations in the same order (IEEE doubles either way; checked against Gymnasium too)."""
    x, x_dot, theta, theta_dot = env.state[:, 0].tolist()
    force = env.force_mag if action[0] == 1 else -env.force_mag
    costheta = math.cos(theta)
    sintheta = math.sin(theta)
    temp = (force + env.polemass_length * (theta_dot * theta_dot) * sintheta) / env.total_mass
    thetaacc = (env.gravity * sintheta - costheta * temp) / (
        env.length * (4.0 / 3.0 - env.masspole * (costheta * costheta) / env.total_mass)
    )
    xacc = temp - env.polemass_length * thetaacc * costheta / env.total_mass
    x, x_dot, theta, theta_dot = _integrate(env, x, x_dot, theta, theta_dot, xacc, thetaacc)
    env.state = np.array([[x], [x_dot], [theta], [theta_dot]])
    terminated = np.array([abs(x) > env.x_threshold or abs(theta) > env.theta_threshold_radians])
    env.steps += 1
    truncated = env.steps >= env.max_episode_steps
    reward = (-terminated.astype(np.float32) if env._sutton_barto_reward
              else np.ones(1, dtype=np.float32))
    return env.state.T.astype(np.float32), reward, terminated, truncated


@functools.cache
def _cartpole_step_matches_gymnasium() -> bool:
    """Whether :func:`_cartpole_step` reproduces the installed Gymnasium's CartPole exactly
    (32 sub-envs, through terminations and truncations). Checked once per process."""
    return _same_as_gymnasium(_cartpole_step, num_envs=32, episodes=1)


@functools.cache
def _cartpole_step_one_matches_gymnasium() -> bool:
    """The same for :func:`_cartpole_step_one` (one sub-env, 64 episodes): Python's ``math.cos``
    and NumPy's ``cos`` may differ in the last bit on some CPUs, and then it is not used."""
    return _same_as_gymnasium(_cartpole_step_one, num_envs=1, episodes=64)


def _same_as_gymnasium(step, num_envs: int, episodes: int, limit: int = 30) -> bool:
    """Step identical vector envs with Gymnasium and with ``step`` under the same random actions;
    every sub-env is compared until its episode ends. Both an end by termination and one by
    truncation must occur."""
    theirs = CartPoleVectorEnv(num_envs=num_envs, max_episode_steps=limit)
    mine = CartPoleVectorEnv(num_envs=num_envs, max_episode_steps=limit)
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    for episode in range(episodes):
        theirs.reset(seed=12345 + episode)
        mine.reset(seed=12345 + episode)
        live = np.ones(num_envs, dtype=bool)
        for a in rng.integers(0, 2, size=(limit, num_envs)):
            expected, got = theirs.step(a)[:4], step(mine, a)
            if not all(np.array_equal(e[live], g[live]) for e, g in zip(expected, got)):
                return False
            terminations += int(expected[2][live].sum())
            truncations += int(expected[3][live].sum())
            live &= ~(expected[2] | expected[3])
        if live.any():
            return False
    return terminations > 0 and truncations > 0
