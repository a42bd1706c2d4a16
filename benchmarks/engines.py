"""The ways to train the slides' REINFORCE, side by side in one process: CPU-us per env step.

- *textbook*: the PyTorch examples' ``reinforce.py`` loop (``benchmarks/throughput.py``, arm
  (a): one ``gym.make`` env, a forward pass per step keeping its graph, one backward per
  episode; rtg minus a running mean), one seed for ``--textbook-steps`` env steps;
- *torch*: ``engine=torch``, every run of the sample as one group (as ``pgbench train-job``);
- *numba, per episode*: ``engine=numba``'s per-episode driver
  (:class:`pgbench.training.numba.reference.EpisodeRun`, one Python round trip per episode);
- *compiled*: ``engine=numba`` as it trains now (:class:`pgbench.training.numba.engine.NumbaRun`, the
  whole loop compiled, ``ROUNDS_PER_CALL`` rounds per call).

The sample is the default slides suite's 8 arms (CartPole-v1, one episode per update, 4-128-2
policy, with and without dropout) for ``--seeds`` seeds each and ``--steps`` env steps per seed
from the initial weights (the early, healthy phase of training; no early stop, so every engine
does the same amount of work per run). The two numba drivers also train a *collapsed* sample:
the same runs with the output bias set to (+20, -20), so the policy pushes left (~9-step
episodes, as a seed whose policy collapsed), ``--collapsed-steps`` each. The engines alternate
on each repeat; each is timed in CPU seconds of this process (the machine may be shared: CPU
time is what a job costs, and the engines are compared as ratios run side by side). Kernels
are loaded (or compiled) before timing::

    python benchmarks/engines.py --seeds 2 --steps 50000 --repeats 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)

sys.path.insert(0, str(Path(__file__).parent))
from slides_arms import ARMS, slides_configs  # noqa: E402
from throughput import textbook_reinforce  # noqa: E402

from pgbench.training.group import GroupTrainer  # noqa: E402
from pgbench.training.numba.engine import NumbaRun  # noqa: E402
from pgbench.training.numba.reference import EpisodeRun  # noqa: E402

DRIVERS = {"numba, per episode": EpisodeRun, "compiled": NumbaRun}


def train(engine: str, cfgs, collapse: bool = False) -> tuple[float, float, int, int]:
    """(CPU seconds, wall seconds, env steps, updates) of training every config."""
    cpu, wall = time.process_time(), time.perf_counter()
    if engine == "torch":
        logs = GroupTrainer(cfgs).run()
    else:
        logs = []
        for c in cfgs:
            run = DRIVERS[engine](c)
            if collapse:
                run.b1[:] = (20.0, -20.0)
            logs.append(run.run())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, sum(log.env_steps for log in logs), sum(log.updates for log in logs)


def textbook(steps: int) -> tuple[float, float, int, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    work = textbook_reinforce(steps, seed=0)
    return (time.process_time() - cpu, time.perf_counter() - wall, work.env_steps,
            work.episodes)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--collapsed-steps", type=int, default=100_000)
    parser.add_argument("--textbook-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--arms", default=",".join(str(i) for i in range(len(ARMS))),
                        help="which of the slides arms, by index in slides_arms.ARMS (default "
                        "all; 0 is vanilla without dropout)")
    args = parser.parse_args()
    arms = [int(a) for a in args.arms.split(",")]

    def configs(steps, engine):
        """The chosen arms' configs (slides_configs lists them arm by arm, seed by seed)."""
        every = slides_configs(args.seeds, steps, engine=engine)
        return [c for k, c in enumerate(every) if k // args.seeds in arms]

    torch.set_num_threads(1)
    for driver in DRIVERS.values():  # load the kernels (and the checks) before timing
        driver(slides_configs(1, 1000, engine="numba")[1]).run()
    early: dict[str, list] = {k: [] for k in ("textbook", "torch", *DRIVERS)}
    collapsed: dict[str, list] = {k: [] for k in DRIVERS}
    for r in range(args.repeats):
        order = list(early) if r % 2 == 0 else list(early)[::-1]
        for engine in order:
            if engine == "textbook":
                early[engine].append(textbook(args.textbook_steps))
                continue
            eng = "numba" if engine in DRIVERS else "torch"
            early[engine].append(train(engine, configs(args.steps, eng)))
            if engine in DRIVERS and args.collapsed_steps:
                collapsed[engine].append(train(engine, configs(args.collapsed_steps, "numba"),
                                               collapse=True))
    names = ", ".join(f"{ARMS[a][0]} dropout {ARMS[a][1]['dropout']}"
                      + (f" {ARMS[a][1]['baseline']}" if "baseline" in ARMS[a][1] else "")
                      for a in arms)
    print(f"# {cpu_model()}, torch {torch.__version__}, {len(arms)} arms ({names}) x {args.seeds} seeds "
          f"x {args.steps} steps (collapsed: {args.collapsed_steps}), textbook 1 seed x "
          f"{args.textbook_steps} steps, {args.repeats} repeats, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for name, results in (("early", early), ("collapsed", collapsed)):
        if not any(results.values()):
            continue
        print(f"\n## {name}\n")
        print("| engine | CPU s (median) | wall s (median) | env steps | updates | "
              "CPU-us per env step | vs compiled |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        per_step = {e: statistics.median(r[0] for r in rows) / rows[0][2]
                    for e, rows in results.items()}
        for engine, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            wall = statistics.median(r[1] for r in rows)
            print(f"| {engine} | {cpu:.2f} | {wall:.2f} | {rows[0][2]:,} | {rows[0][3]:,} | "
                  f"{1e6 * per_step[engine]:.3f} | "
                  f"{per_step[engine] / per_step['compiled']:.1f}x |")


if __name__ == "__main__":
    main()
