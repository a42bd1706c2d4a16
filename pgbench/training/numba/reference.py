"""The per-episode driver of ``engine=numba``, kept as the reference the compiled loop is
checked and measured against.

:class:`EpisodeRun` trains a run as :class:`pgbench.training.numba.engine.NumbaRun` did before the whole
loop moved into compiled code: Python draws each round's reset seeds and builds one
``PCG64(seed)`` per reset (as CartPoleEnv.reset), draws the action noise with ``torch.rand`` per
chunk, calls the rollout and update kernels, and records each episode and the stop rule. It
gives the same numbers as :class:`~pgbench.training.numba.engine.NumbaRun` (tests/test_compiled.py), at
a Python round trip per episode (BENCHMARKS.md, "Compiled engine: profile").
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from pgbench.training.numba.engine import NumbaRun
from pgbench.training.numba.kernels import rollout
from pgbench.training.numba.update import learn
from pgbench.training.rollout import noise_chunk_end


class EpisodeRun(NumbaRun):
    """One ``engine=numba`` run, one Python round trip per round of episodes."""

    def collect(self) -> None:
        """One round: each of the seed's ``n`` sub-envs plays one episode, drawing its noise in
        the chunks :class:`pgbench.training.rollout.Collector` draws."""
        n = self.n
        for i, s in enumerate(self.reset_rng.integers(0, 2**31 - 1, size=n).tolist()):
            # what CartPoleEnv.reset(seed=s) draws (as pgbench.envs.subenvs.SubEnvs.reset)
            self.state[i] = np.random.Generator(np.random.PCG64(s)).uniform(-0.05, 0.05, size=(4,))
        self.steps[:] = 0
        self.alive[:] = True
        t, live = 0, True
        while live:
            t_end = noise_chunk_end(t, self.T)
            u = torch.rand(t_end - t, n, self.uniforms, generator=self.noise_gen).numpy()
            t, live = rollout(self.W0, self.b0, self.W1, self.b1, self.act, self.state,
                              self.steps, self.alive, t, t_end, u, self.keep, self.scale,
                              self.obs, self.actions, self.drop, self.z, self.h, self.logits,
                              self.lengths, self.terminated, self.truncated, self.phys,
                              self.euler, self.T)

    def update(self) -> None:
        cfg, log = self.cfg, self.log
        loss, norm, entropy, log.ema_state = learn(
            self.flat, self.m, self.v, self.grad, self.W1, self.act, self.obs, self.actions,
            self.drop, self.use_drop, self.z, self.h, self.logits, self.lengths, self.returns,
            self.baseline, cfg.gamma, log.ema_state, cfg.ema_weight, cfg.normalize_advantages,
            float(log.updates + 1), cfg.lr, self.work)
        log.update_rows.append((log.updates, log.env_steps, self.n, loss, norm, entropy,
                                math.nan, time.perf_counter() - self.t0))
        log.updates += 1
        log.gradient_steps += 1

    def run(self, progress=None):
        from pgbench.envs.registry import check_env_id
        from pgbench.runs.log import record_episode, stop_reason

        threshold = check_env_id(self.cfg.env_id).reward_threshold
        log = self.log
        while log.stop_reason is None:
            self.collect()
            for i in range(self.n):  # reward 1 per step: the return is the length
                length = int(self.lengths[i])
                record_episode(log, float(length), length, bool(self.terminated[i]),
                               bool(self.truncated[i]), threshold)
            self.update()
            log.stop_reason = stop_reason(self.cfg, log)
            if progress is not None:
                progress(self)
        return log
