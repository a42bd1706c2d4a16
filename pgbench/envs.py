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


class SubEnvs:
    """``num_envs`` copies of an env, each reset and stepped on its own, by index.

    ``reset(idx, seeds)`` resets sub-env ``idx[i]`` as a single env is reset by
    ``reset(seed=seeds[i])``; ``step(idx, actions)`` steps those sub-envs only and returns
    ``(obs float32, reward float64, terminated, truncated)`` for them. There is no auto-reset:
    the collector resets a sub-env when its seed starts a new round, so each seed of a group runs
    on its own clock.

    CartPole is stepped by :func:`_cartpole_dynamics`, its equations as Gymnasium writes them, used
    only once checked to give Gymnasium's numbers bit for bit (else through Gymnasium itself);
    every other env is a list of single Gymnasium envs.
    """

    def __init__(self, env_id: str, num_envs: int):
        self.venv = make_vector_env(env_id, num_envs)  # validates the spaces
        self.num_envs = num_envs
        self.single_action_space = self.venv.single_action_space
        cartpole = self.venv.unwrapped
        self.cartpole = (cartpole if isinstance(cartpole, CartPoleVectorEnv)
                         and _cartpole_step_matches_gymnasium() else None)
        if self.cartpole is not None:
            self.state = np.zeros((4, num_envs))
            self.steps = np.zeros(num_envs, dtype=np.int64)
            self.one = _cartpole_step_one_matches_gymnasium()
        else:
            self.envs = (self.venv.envs if isinstance(self.venv, gym.vector.SyncVectorEnv)
                         else [gym.make(env_id) for _ in range(num_envs)])

    def reset(self, idx: np.ndarray, seeds) -> np.ndarray:
        if self.cartpole is not None:
            # np.random.Generator(PCG64(s)) is what gymnasium.utils.seeding.np_random(s) builds,
            # and CartPoleEnv.reset(seed=s) draws its start uniformly in [-0.05, 0.05]^4 from it
            start = np.stack([np.random.Generator(np.random.PCG64(int(s))).uniform(
                low=-0.05, high=0.05, size=(4,)) for s in seeds], axis=1)
            self.state[:, idx] = start
            self.steps[idx] = 0
            return start.T.astype(np.float32)
        return np.stack([np.asarray(self.envs[i].reset(seed=int(s))[0], dtype=np.float32)
                         for i, s in zip(idx.tolist(), seeds)])

    def step(self, idx: np.ndarray, actions: np.ndarray):
        if self.cartpole is not None:
            env = self.cartpole
            if len(idx) == 1 and self.one:  # Python floats beat NumPy calls on 1-element arrays
                state, terminated = _cartpole_dynamics_one(env, self.state[:, idx[0]].tolist(),
                                                           actions[0])
                state = np.array(state)[:, None]
                terminated = np.array([terminated])
            else:
                state, terminated = _cartpole_dynamics(env, self.state[:, idx], actions)
            self.state[:, idx] = state
            steps = self.steps[idx] + 1
            self.steps[idx] = steps
            truncated = steps >= env.max_episode_steps
            reward = (-terminated.astype(np.float64) if env._sutton_barto_reward
                      else np.ones(len(idx)))
            return state.T.astype(np.float32), reward, terminated, truncated
        obs, reward = [], np.zeros(len(idx))
        terminated = np.zeros(len(idx), dtype=bool)
        truncated = np.zeros(len(idx), dtype=bool)
        for k, i in enumerate(idx.tolist()):
            o, reward[k], terminated[k], truncated[k], _ = self.envs[i].step(actions[k])
            obs.append(np.asarray(o, dtype=np.float32))
        return np.stack(obs), reward, terminated, truncated

    def close(self) -> None:
        if self.cartpole is None and not isinstance(self.venv, gym.vector.SyncVectorEnv):
            for env in self.envs:  # made here, not by the vector env
                env.close()
        self.venv.close()


def _cartpole_dynamics(env: CartPoleVectorEnv, state: np.ndarray, action: np.ndarray):
    """One step of CartPole (Gymnasium 1.x) for ``state (4, k)`` under ``action (k,)``: the new
    state and whether each episode terminated."""
    x, x_dot, theta, theta_dot = state
    force = np.where(action == 1, env.force_mag, -env.force_mag)  # = sign(action - 0.5) * force_mag
    costheta = np.cos(theta)
    sintheta = np.sin(theta)
    temp = (force + env.polemass_length * np.square(theta_dot) * sintheta) / env.total_mass
    thetaacc = (env.gravity * sintheta - costheta * temp) / (
        env.length * (4.0 / 3.0 - env.masspole * np.square(costheta) / env.total_mass)
    )
    xacc = temp - env.polemass_length * thetaacc * costheta / env.total_mass
    x, x_dot, theta, theta_dot = _integrate(env, x, x_dot, theta, theta_dot, xacc, thetaacc)
    new = np.empty((4, x.shape[0]))
    new[0], new[1], new[2], new[3] = x, x_dot, theta, theta_dot
    # |x| > limit is (x < -limit) | (x > limit) for every float
    terminated = (np.abs(x) > env.x_threshold) | (np.abs(theta) > env.theta_threshold_radians)
    return new, terminated


def _cartpole_dynamics_one(env: CartPoleVectorEnv, state: list[float], action) -> tuple:
    """:func:`_cartpole_dynamics` for one sub-env, in Python floats: the same operations in the
    same order (IEEE doubles either way; checked against Gymnasium too)."""
    x, x_dot, theta, theta_dot = state
    force = env.force_mag if action == 1 else -env.force_mag
    costheta = math.cos(theta)
    sintheta = math.sin(theta)
    temp = (force + env.polemass_length * (theta_dot * theta_dot) * sintheta) / env.total_mass
    thetaacc = (env.gravity * sintheta - costheta * temp) / (
        env.length * (4.0 / 3.0 - env.masspole * (costheta * costheta) / env.total_mass)
    )
    xacc = temp - env.polemass_length * thetaacc * costheta / env.total_mass
    new = _integrate(env, x, x_dot, theta, theta_dot, xacc, thetaacc)
    return new, abs(new[0]) > env.x_threshold or abs(new[2]) > env.theta_threshold_radians


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


def _vector_step(env: CartPoleVectorEnv, action: np.ndarray):
    """A CartPoleVectorEnv step by :func:`_cartpole_dynamics` (for the exactness checks)."""
    env.state, terminated = _cartpole_dynamics(env, env.state, action)
    env.steps += 1
    return (env.state.T.astype(np.float32), np.ones(env.num_envs, dtype=np.float32), terminated,
            env.steps >= env.max_episode_steps)


def _one_step(env: CartPoleVectorEnv, action: np.ndarray):
    """The same by :func:`_cartpole_dynamics_one` (one sub-env)."""
    state, terminated = _cartpole_dynamics_one(env, env.state[:, 0].tolist(), action[0])
    env.state = np.array(state)[:, None]
    env.steps += 1
    return (env.state.T.astype(np.float32), np.ones(1, dtype=np.float32), np.array([terminated]),
            env.steps >= env.max_episode_steps)


@functools.cache
def _cartpole_step_matches_gymnasium() -> bool:
    """Whether :func:`_cartpole_dynamics` reproduces the installed Gymnasium's CartPole exactly
    (32 sub-envs, through terminations and truncations). Checked once per process."""
    return _same_as_gymnasium(_vector_step, num_envs=32, episodes=1)


@functools.cache
def _cartpole_step_one_matches_gymnasium() -> bool:
    """The same for :func:`_cartpole_dynamics_one` (one sub-env, 64 episodes): Python's ``math.cos``
    and NumPy's ``cos`` may differ in the last bit on some CPUs, and then it is not used."""
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
