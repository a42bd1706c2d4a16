"""CartPole's equations of motion, written once.

Gymnasium's CartPole (``CartPoleEnv`` and ``CartPoleVectorEnv``) is stepped here without its
per-call overhead, in three forms that share :func:`accelerations`, :func:`integrate` and
:func:`out_of_bounds`: on NumPy arrays of sub-envs (:func:`dynamics`), on Python floats for one
sub-env (:func:`dynamics_one`), and compiled by Numba inside the numba engine's loop
(:func:`pgbench.training.numba.kernels.cartpole_step`). The three functions are plain arithmetic
in Gymnasium's order, so they give the same IEEE doubles on floats, arrays and in compiled code.
Each form is used only once checked to reproduce Gymnasium bit for bit
(:func:`matches_gymnasium`, :func:`one_matches_gymnasium`,
:func:`pgbench.training.numba.engine.check_cartpole`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv


def accelerations(theta_dot, costheta, sintheta, force, gravity, masspole, total_mass, length,
                  polemass_length):
    """``(xacc, thetaacc)``: Gymnasium's CartPole equations, operation for operation (floats or
    arrays alike)."""
    temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * (costheta * costheta) / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    return xacc, thetaacc


def integrate(euler, tau, x, x_dot, theta, theta_dot, xacc, thetaacc):
    """One step of CartPole's integrator, as Gymnasium writes it (floats or arrays alike):
    Euler, or semi-implicit Euler."""
    if euler:
        x = x + tau * x_dot
        x_dot = x_dot + tau * xacc
        theta = theta + tau * theta_dot
        theta_dot = theta_dot + tau * thetaacc
    else:
        x_dot = x_dot + tau * xacc
        x = x + tau * x_dot
        theta_dot = theta_dot + tau * thetaacc
        theta = theta + tau * theta_dot
    return x, x_dot, theta, theta_dot


def out_of_bounds(x, theta, x_threshold, theta_threshold):
    """Whether the episode terminates: ``|x| > x_threshold`` or ``|theta| > theta_threshold``
    (bools or boolean arrays; ``abs(v) > t`` is ``v < -t or v > t`` for every float)."""
    return (abs(x) > x_threshold) | (abs(theta) > theta_threshold)


def _step(env: CartPoleVectorEnv, x, x_dot, theta, theta_dot, force, costheta, sintheta):
    xacc, thetaacc = accelerations(theta_dot, costheta, sintheta, force, env.gravity,
                                   env.masspole, env.total_mass, env.length, env.polemass_length)
    new = integrate(env.kinematics_integrator == "euler", env.tau, x, x_dot, theta, theta_dot,
                    xacc, thetaacc)
    return new, out_of_bounds(new[0], new[2], env.x_threshold, env.theta_threshold_radians)


def dynamics(env: CartPoleVectorEnv, state: np.ndarray, action: np.ndarray):
    """One step of CartPole (Gymnasium 1.x) for ``state (4, k)`` under ``action (k,)``: the new
    state and whether each episode terminated."""
    x, x_dot, theta, theta_dot = state
    force = np.where(action == 1, env.force_mag, -env.force_mag)  # = sign(action - 0.5) * force_mag
    (x, x_dot, theta, theta_dot), terminated = _step(env, x, x_dot, theta, theta_dot, force,
                                                     np.cos(theta), np.sin(theta))
    new = np.empty((4, x.shape[0]))
    new[0], new[1], new[2], new[3] = x, x_dot, theta, theta_dot
    return new, terminated


def dynamics_one(env: CartPoleVectorEnv, state: list[float], action) -> tuple:
    """:func:`dynamics` for one sub-env, in Python floats (``math.cos``, which may differ from
    NumPy's ``cos`` in the last bit on some CPUs: :func:`one_matches_gymnasium` decides)."""
    x, x_dot, theta, theta_dot = state
    force = env.force_mag if action == 1 else -env.force_mag
    new, terminated = _step(env, x, x_dot, theta, theta_dot, force, math.cos(theta),
                            math.sin(theta))
    return new, bool(terminated)


def _vector_step(env: CartPoleVectorEnv, action: np.ndarray):
    """A CartPoleVectorEnv step by :func:`dynamics` (for the exactness checks)."""
    env.state, terminated = dynamics(env, env.state, action)
    env.steps += 1
    return (env.state.T.astype(np.float32), np.ones(env.num_envs, dtype=np.float32), terminated,
            env.steps >= env.max_episode_steps)


def _one_step(env: CartPoleVectorEnv, action: np.ndarray):
    """The same by :func:`dynamics_one` (one sub-env)."""
    state, terminated = dynamics_one(env, env.state[:, 0].tolist(), action[0])
    env.state = np.array(state)[:, None]
    env.steps += 1
    return (env.state.T.astype(np.float32), np.ones(1, dtype=np.float32), np.array([terminated]),
            env.steps >= env.max_episode_steps)


@functools.cache
def matches_gymnasium() -> bool:
    """Whether :func:`dynamics` reproduces the installed Gymnasium's CartPole exactly (32
    sub-envs, through terminations and truncations). Checked once per process."""
    return _same_as_gymnasium(_vector_step, num_envs=32, episodes=1)


@functools.cache
def one_matches_gymnasium() -> bool:
    """The same for :func:`dynamics_one` (one sub-env, 64 episodes)."""
    return _same_as_gymnasium(_one_step, num_envs=1, episodes=64)


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
