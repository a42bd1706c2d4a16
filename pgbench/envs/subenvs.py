"""Sub-envs stepped one by one, each episode reset from its own seed's generator, with
CartPole's dynamics stepped without Gymnasium's per-call overhead (checked against Gymnasium).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from pgbench.envs.cartpole import dynamics, dynamics_one, matches_gymnasium, one_matches_gymnasium
from pgbench.envs.registry import make_vector_env


class SubEnvs:
    """``num_envs`` copies of an env, each reset and stepped on its own, by index.

    ``reset(idx, seeds)`` resets sub-env ``idx[i]`` as a single env is reset by
    ``reset(seed=seeds[i])``; ``step(idx, actions)`` steps those sub-envs only and returns
    ``(obs float32, reward float64, terminated, truncated)`` for them. There is no auto-reset:
    the collector resets a sub-env when its seed starts a new round, so each seed of a group runs
    on its own clock.

    CartPole is stepped by :func:`pgbench.envs.cartpole.dynamics`, its equations as Gymnasium writes them, used
    only once checked to give Gymnasium's numbers bit for bit (else through Gymnasium itself);
    every other env is a list of single Gymnasium envs.
    """

    def __init__(self, env_id: str, num_envs: int):
        self.venv = make_vector_env(env_id, num_envs)  # validates the spaces
        self.num_envs = num_envs
        self.single_action_space = self.venv.single_action_space
        cartpole = self.venv.unwrapped
        self.cartpole = (cartpole if isinstance(cartpole, CartPoleVectorEnv)
                         and matches_gymnasium() else None)
        if self.cartpole is not None:
            self.state = np.zeros((4, num_envs))
            self.steps = np.zeros(num_envs, dtype=np.int64)
            self.one = one_matches_gymnasium()
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
                state, terminated = dynamics_one(env, self.state[:, idx[0]].tolist(),
                                                           actions[0])
                state = np.array(state)[:, None]
                terminated = np.array([terminated])
            else:
                state, terminated = dynamics(env, self.state[:, idx], actions)
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
