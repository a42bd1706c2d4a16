"""engine=torch against engine=numba on the slides suite's arms, side by side in one process.

The runs are the default slides suite's 8 arms (CartPole-v1, one episode per update, 4-128-2
policy, with and without dropout) for ``--seeds`` seeds each and ``--steps`` env steps per seed
(no early stop, so both engines do the same amount of work per run). Each engine trains them
the way ``pgbench train-job`` does: torch as one group (every seed on its own clock, shared
forward passes and updates), numba one run at a time. The engines alternate on each repeat, and
each is timed in CPU seconds of this process (the machine is shared; CPU time is what a job
costs). The first numba call loads or compiles the kernels; it is made before timing::

    python benchmarks/engines.py --seeds 2 --steps 50000 --repeats 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)

import torch

from pgbench.compiled import CompiledRun
from pgbench.train import GroupTrainer
from slides_arms import ARMS, slides_configs


def configs(seeds: int, steps: int, engine: str):
    return slides_configs(seeds, steps, engine=engine)


def train(engine: str, cfgs) -> tuple[float, float, int, int]:
    """(CPU seconds, wall seconds, env steps, updates) of training every config."""
    cpu, wall = time.process_time(), time.perf_counter()
    if engine == "torch":
        logs = GroupTrainer(cfgs).run()
    else:
        logs = [CompiledRun(c).run() for c in cfgs]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, sum(log.env_steps for log in logs), sum(log.updates for log in logs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    CompiledRun(configs(1, 1000, "numba")[0]).run()  # load the kernels before timing
    results: dict[str, list] = {"torch": [], "numba": []}
    for r in range(args.repeats):
        for engine in (("torch", "numba") if r % 2 == 0 else ("numba", "torch")):
            results[engine].append(train(engine, configs(args.seeds, args.steps, engine)))
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{len(ARMS)} arms x {args.seeds} seeds x {args.steps} steps, {args.repeats} repeats")
    print("| engine | CPU s (median) | wall s (median) | env steps | updates | us of CPU per step |")
    print("|---|---:|---:|---:|---:|---:|")
    med = {}
    for engine, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        steps, updates = rows[0][2], rows[0][3]
        med[engine] = cpu / steps
        print(f"| {engine} | {cpu:.1f} | {wall:.1f} | {steps:,} | {updates:,} | "
              f"{1e6 * cpu / steps:.2f} |")
    print(f"\nnumba / torch CPU per env step: {med['numba'] / med['torch']:.3f} "
          f"(torch takes {med['torch'] / med['numba']:.1f}x as long)")


if __name__ == "__main__":
    main()
