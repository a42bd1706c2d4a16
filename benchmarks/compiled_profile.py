"""Where a per-episode ``engine=numba`` run spends its time, phase by phase.

Replays the per-episode driver (:class:`pgbench.training.numba.reference.EpisodeRun`: one Python
round trip per episode) with a clock around each phase: reset seeds (``integers`` on the
seed's env generator), reset states (one ``PCG64(seed)`` per episode, as CartPoleEnv.reset),
noise draws (``torch.rand`` per chunk), the rollout kernel, the update kernel, recording the
episode and the stop rule (the rest of the Python loop), and writing the run directory.
Two phases of training: *early* (the slides' 8 arms from their initial weights, ``--steps``
env steps each: episodes of tens to hundreds of steps) and *collapsed* (the same arms with
the output bias set so that the policy pushes left with probability ~1: ~9-step episodes, the
state of a collapsed seed). Phase times are ``perf_counter`` shares of the loop's wall time,
scaled to the process's CPU time (the machine is shared)::

    python benchmarks/compiled_profile.py --seeds 2 --steps 50000
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)

sys.path.insert(0, str(Path(__file__).parent))
from slides_arms import slides_configs  # noqa: E402

from pgbench.core.provenance import provenance
from pgbench.runs.log import record_episode, stop_reason
from pgbench.runs.store import write_run  # noqa: E402
from pgbench.training.numba import kernels
from pgbench.training.numba.reference import EpisodeRun  # noqa: E402
from pgbench.training.rollout import noise_chunk_end  # noqa: E402

clock = time.perf_counter_ns


class ProfiledRun(EpisodeRun):
    """:class:`EpisodeRun`'s loop with a clock around each phase (same calls, same order)."""

    def __init__(self, cfg, spent):
        super().__init__(cfg)
        self.spent = spent

    def run(self, progress=None):
        from pgbench.envs.registry import check_env_id

        threshold = check_env_id(self.cfg.env_id).reward_threshold
        log, spent, n = self.log, self.spent, self.n
        while log.stop_reason is None:
            a = clock()
            seeds = self.reset_rng.integers(0, 2**31 - 1, size=n).tolist()
            b = clock()
            spent["reset seeds (Generator.integers)"] += b - a
            for i, s in enumerate(seeds):
                self.state[i] = np.random.Generator(np.random.PCG64(s)).uniform(-0.05, 0.05, 4)
            a = clock()
            spent["reset states (PCG64(seed) per episode)"] += a - b
            self.steps[:] = 0
            self.alive[:] = True
            t, live = 0, True
            while live:
                b = clock()
                t_end = noise_chunk_end(t, self.T)
                u = torch.rand(t_end - t, n, self.uniforms, generator=self.noise_gen).numpy()
                c = clock()
                spent["noise (torch.rand per chunk)"] += c - b
                t, live = kernels.rollout(
                    self.W0, self.b0, self.W1, self.b1, self.act, self.state, self.steps,
                    self.alive, t, t_end, u, self.keep, self.scale, self.obs, self.actions,
                    self.drop, self.z, self.h, self.logits, self.lengths, self.terminated,
                    self.truncated, self.phys, self.euler, self.T)
                spent["rollout kernel"] += clock() - c
            b = clock()
            for i in range(n):
                length = int(self.lengths[i])
                record_episode(log, float(length), length, bool(self.terminated[i]),
                               bool(self.truncated[i]), threshold)
            c = clock()
            spent["record episode (Python)"] += c - b
            self.update()
            d = clock()
            spent["update (learn kernel + row)"] += d - c
            log.stop_reason = stop_reason(self.cfg, log)
            spent["stop rule + loop (Python)"] += clock() - d
        return log


def phase(cfgs, collapse: bool):
    spent = defaultdict(int)
    cpu, wall = time.process_time(), clock()
    steps = episodes = 0
    with tempfile.TemporaryDirectory() as tmp:
        prov = provenance(seed_group=[0])
        for k, cfg in enumerate(cfgs):
            a = clock()
            run = ProfiledRun(cfg, spent)
            if collapse:
                run.b1[:] = (20.0, -20.0)
            spent["set-up (NumbaRun.__init__)"] += clock() - a
            log = run.run()
            a = clock()
            write_run(Path(tmp) / f"r{k}", cfg, log, {}, prov, 0.0, 0.0)
            spent["write run directory (I/O)"] += clock() - a
            steps, episodes = steps + log.env_steps, episodes + log.episodes
    cpu, wall = time.process_time() - cpu, clock() - wall
    return spent, cpu, wall, steps, episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--collapsed-steps", type=int, default=100_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    EpisodeRun(slides_configs(1, 1000, engine="numba")[0]).run()  # load the kernels
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}")
    for name, steps, collapse in (("early", args.steps, False),
                                  ("collapsed", args.collapsed_steps, True)):
        cfgs = slides_configs(args.seeds, steps, engine="numba")
        spent, cpu, wall, env_steps, episodes = phase(cfgs, collapse)
        scale = cpu / (wall * 1e-9)  # CPU seconds per wall second of this process
        print(f"\n## {name}: {len(cfgs)} runs, {env_steps:,} env steps, {episodes:,} episodes "
              f"({env_steps / episodes:.1f} steps each), {cpu:.2f} CPU-s, "
              f"{wall * 1e-9:.2f} wall-s, {1e6 * cpu / env_steps:.2f} CPU-us per env step\n")
        print("| phase | share | CPU-us per episode | CPU-us per env step |")
        print("|---|---:|---:|---:|")
        rest = wall - sum(spent.values())
        for key, ns in sorted({**spent, "other": rest}.items(), key=lambda kv: -kv[1]):
            us = ns * 1e-3 * scale
            print(f"| {key} | {100 * ns / wall:.1f}% | {us / episodes:.2f} | "
                  f"{us / env_steps:.3f} |")


if __name__ == "__main__":
    main()
