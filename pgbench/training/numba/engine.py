"""``NumbaRun``: one run of the numba engine, from its config to its :class:`pgbench.runs.log.SeedLog`.

It seeds the run's streams as the torch engine does, checks once per process that the compiled
CartPole and random streams reproduce Gymnasium's and NumPy's/torch's bit for bit, and calls
the compiled loop up to :data:`ROUNDS_PER_CALL` rounds at a time.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch

from pgbench.core.errors import UserError
from pgbench.rl.engines import NUMBA_ACTIVATIONS, NUMBA_BASELINES, NUMBA_RETURNS, check_supported
from pgbench.training.numba.kernels import cartpole_step
from pgbench.training.numba.update import workspace

# CartPole's constants, in the order the kernels read them
PHYSICS = ("gravity", "masspole", "total_mass", "length", "polemass_length", "force_mag", "tau",
           "x_threshold", "theta_threshold_radians")


def cartpole_physics(env_id: str) -> tuple[np.ndarray, bool, int]:
    """CartPole's constants (in :data:`PHYSICS` order), whether it integrates by Euler, and
    its step limit."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        cp = env.unwrapped
        if getattr(cp, "_sutton_barto_reward", False):
            raise UserError(f"engine=numba needs CartPole's reward of 1 per step; {env_id} has "
                            "sutton_barto_reward. Use engine=torch.")
        phys = np.array([float(getattr(cp, k)) for k in PHYSICS])
        return phys, cp.kinematics_integrator == "euler", int(env.spec.max_episode_steps)
    finally:
        env.close()


@functools.cache
def check_cartpole(episodes: int = 64) -> None:
    """Step the compiled CartPole beside Gymnasium's CartPoleEnv under random actions, through
    terminations, and raise unless every state matches bit for bit (once per process)."""
    import gymnasium as gym

    step = cartpole_step
    phys, euler, _ = cartpole_physics("CartPole-v1")
    env = gym.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        env.reset(seed=1000 + episode)
        mine = np.array([env.state], dtype=np.float64)
        for _ in range(500):
            a = int(rng.integers(2))
            _, _, term, _, _ = env.step(a)
            my_term = step(mine, 0, a, phys, euler)
            if not (np.array_equal(mine[0], env.state) and bool(my_term) == term):
                raise UserError(
                    "engine=numba: the compiled CartPole does not reproduce Gymnasium's on this "
                    f"machine (episode {episode} of the check differs); accepted here: "
                    "engine=torch")
            if term:
                break
    env.close()


ROUNDS_PER_CALL = 1024  # rounds (episodes and updates) per compiled call at most


class NumbaRun:
    """One run of a config with ``engine=numba``; ``run(progress)`` trains it and returns its
    :class:`pgbench.runs.log.SeedLog` (the same record the torch trainer keeps)."""

    def __init__(self, cfg):
        from pgbench.core.seeding import seed_sequences, torch_generator
        from pgbench.rl.policies import init_policy
        from pgbench.runs.log import SeedLog
        from pgbench.training.specs import policy_spec

        check_supported(cfg)
        check_cartpole()
        self.cfg, self.cfgs = cfg, [cfg]
        spec = policy_spec(cfg)
        self.phys, self.euler, self.T = cartpole_physics(cfg.env_id)
        streams = seed_sequences(cfg.seed)
        params = init_policy(spec, [torch_generator(streams["init"])])  # as engine=torch
        D, (H,), A = spec.obs_dim, spec.hidden, spec.act_dim
        # the weights, flat in StackedAdam's layout, and views of them in the network's shapes
        self.flat = f = torch.cat([params[k].reshape(-1)
                                   for k in ("pi.W0", "pi.b0", "pi.W1", "pi.b1")]).numpy().copy()
        self.W0, self.b0 = f[:D * H].reshape(D, H), f[D * H:D * H + H]
        self.W1, self.b1 = f[D * H + H:D * H + H + H * A].reshape(H, A), f[D * H + H + H * A:]
        self.m, self.v, self.grad = np.zeros_like(f), np.zeros_like(f), np.zeros(len(f))
        self.reset_rng = np.random.default_rng(streams["env"])
        self.noise_gen = torch_generator(streams["noise"])
        self.n = n = cfg.envs_per_seed
        self.act = NUMBA_ACTIVATIONS.index(cfg.activation)
        self.use_drop = cfg.dropout > 0
        self.keep = np.float32(1.0 - cfg.dropout)
        # a kept unit's mask value, as torch computes (u < keep).float() / keep
        self.scale = np.float32((torch.ones(1) / (1.0 - cfg.dropout)).item())
        self.uniforms = 1 + (H if self.use_drop else 0)  # per step: the action's, dropout's
        # the round's steps, sub-env by sub-env (a round is one episode of each sub-env)
        self.obs = np.zeros((n, self.T, D), dtype=np.float32)
        self.actions = np.zeros((n, self.T), dtype=np.int64)
        self.drop = np.ones((n, self.T if self.use_drop else 1, H), dtype=np.float32)
        self.z = np.zeros((n, self.T, H), dtype=np.float32)
        self.h = np.zeros((n, self.T, H), dtype=np.float32)
        self.logits = np.zeros((n, self.T, A), dtype=np.float32)
        self.state = np.zeros((n, 4))
        self.steps = np.zeros(n, dtype=np.int64)
        self.alive = np.zeros(n, dtype=bool)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)
        self.log = SeedLog(seed=cfg.seed, gradient_steps=0)
        self.logs = [self.log]
        self.work = workspace(n, self.T, D, H, A)  # the update's scratch arrays
        self.returns = NUMBA_RETURNS.index(cfg.returns)
        self.baseline = NUMBA_BASELINES.index(cfg.baseline)
        self.t0 = time.perf_counter()

    def run(self, progress=None):
        """Train the run to its stop and return its log; ``progress(self)`` is called after each
        compiled call (every :data:`ROUNDS_PER_CALL` rounds at most)."""
        from pgbench.envs.registry import check_env_id
        from pgbench.runs.log import LAST100_GRACE_EPISODES, LAST100_WINDOW, RUNNING_REWARD_START
        from pgbench.runs.log import RUNNING_REWARD_WEIGHT as W
        from pgbench.training.numba import loop as L
        from pgbench.training.numba.streams import MT_N, check_streams, mt_seed

        check_streams()
        threshold = check_env_id(self.cfg.env_id).reward_threshold
        cfg, log, n, R = self.cfg, self.log, self.n, ROUNDS_PER_CALL
        ilog = np.zeros(L.ILOG_SIZE, dtype=np.int64)
        ilog[L.SOLVED:L.SOLVED + 3] = ilog[L.SOLVED_100:L.SOLVED_100 + 3] = -1
        flog = np.array([RUNNING_REWARD_START, math.nan])
        ring = np.zeros(LAST100_WINDOW)
        mt = np.empty(MT_N + 1, dtype=np.uint32)
        mt_seed(self.noise_gen.initial_seed(), mt)  # the stream torch.rand draws from
        u = np.empty(self.T * n * self.uniforms, dtype=np.float32)
        net = (self.flat, self.W0, self.b0, self.W1, self.b1, self.m, self.v, self.grad)
        kernels = (self.act, self.use_drop, self.keep, self.scale, self.uniforms)
        buffers = (self.obs, self.actions, self.drop, self.z, self.h, self.logits)
        rules = (threshold is not None, float(threshold or 0.0), LAST100_WINDOW * (threshold or 0.0),
                 W, 1 - W, LAST100_WINDOW, LAST100_GRACE_EPISODES)
        ep_int, ep_float = np.empty((R * n, 6), np.int64), np.empty((R * n, 2))
        up_float = np.empty((R, 3))
        episodes, updates = [], []
        while ilog[L.STOP] == 0:
            # the seeds of the next R rounds at once: the stream of R calls drawing n each
            seeds = self.reset_rng.integers(0, 2**31 - 1, size=R * n)
            rounds, _ = L.train_rounds(
                net, kernels, mt, seeds, -0.05, 0.05 - (-0.05), u, self.state, self.steps,
                self.alive, buffers, self.lengths, self.terminated, self.truncated, self.phys,
                self.euler, self.T, ilog, flog, ring, self.returns, self.baseline, cfg.gamma,
                cfg.ema_weight, cfg.normalize_advantages, cfg.lr, rules, cfg.stop_when_solved,
                cfg.total_steps, ep_int, ep_float, up_float, R, self.work)
            wall = time.perf_counter() - self.t0
            episodes.append((ep_int[:rounds * n].copy(), ep_float[:rounds * n].copy()))
            updates.append((up_float[:rounds].copy(), wall))
            log.env_steps, log.episodes = int(ilog[L.ENV_STEPS]), int(ilog[L.EPISODES])
            log.updates = int(ilog[L.UPDATES])
            log.stop_reason = L.STOP_REASONS[int(ilog[L.STOP])]
            if progress is not None:
                progress(self)
        self._finish(ilog, flog, ring, episodes, updates)
        return log

    def _finish(self, ilog, flog, ring, episodes, updates) -> None:
        """Fill the log's rows and state (as pgbench.runs.log.record_episode keeps them)."""
        from pgbench.training.numba import loop as L

        log, n = self.log, self.n
        e_int = np.concatenate([e for e, _ in episodes])
        e_float = np.concatenate([f for _, f in episodes])
        log.episode_rows = list(zip(
            e_int[:, 0].tolist(), e_int[:, 1].tolist(), e_int[:, 2].tolist(),
            e_float[:, 0].tolist(), e_int[:, 3].tolist(), e_int[:, 4].astype(bool).tolist(),
            e_int[:, 5].astype(bool).tolist(), e_float[:, 1].tolist()))
        rows, first = [], 0
        for values, wall in updates:  # each update's env steps: its round's last episode's
            for r, (loss, norm, entropy) in enumerate(values.tolist()):
                k = first + r
                rows.append((k, int(e_int[k * n + n - 1, 2]), n, loss, norm, entropy,
                             math.nan, wall))
            first += len(values)
        log.update_rows = rows
        log.env_steps, log.episodes = int(ilog[L.ENV_STEPS]), int(ilog[L.EPISODES])
        log.updates = int(ilog[L.UPDATES])
        log.gradient_steps = log.updates  # one policy step per update (REINFORCE, one epoch)
        log.running_reward, log.ema_state = float(flog[L.RUNNING]), float(flog[L.EMA])
        for attr, at in (("solved", L.SOLVED), ("solved_last100", L.SOLVED_100)):
            if ilog[at + 1] >= 0:
                setattr(log, attr, {"update": int(ilog[at]), "episode": int(ilog[at + 1]),
                                    "env_steps": int(ilog[at + 2]), "gradient_steps": int(ilog[at])})
        window = len(ring)
        last = [e_float[k, 0] for k in range(max(0, len(e_float) - window), len(e_float))]
        log.last_returns.clear()
        log.last_returns.extend(float(x) for x in last)
        log.stop_reason = L.STOP_REASONS[int(ilog[L.STOP])]
