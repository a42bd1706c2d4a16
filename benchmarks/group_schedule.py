"""When should a group of seeds update? Time the choices of ``WAIT_FRACTION`` and ``READY_SHARE``.

A seed whose batch is complete waits until an update: the waiting seeds update together once
``READY_SHARE`` of the group waits, or one of them has waited ``WAIT_FRACTION`` of its last
round. Waiting changes no number (the script checks that every choice gives the same episodes),
only the trade between more ticks and fewer, larger updates.

The group is the default slides suite's 8 arms (CartPole-v1, one episode per update, 4-128-2
policy, with and without dropout), ``--seeds`` seeds each, ``--steps`` env steps per seed. The
choices are interleaved in one process, in a rotated order on each repeat::

    python benchmarks/group_schedule.py --seeds 5 --steps 50000 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import time

import torch
from slides_arms import ARMS, slides_configs

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
import pgbench.training.group as train

CHOICES = [(0.25, 1.0), (0.5, 0.5), (1.0, 0.5), (0.5, 1.0)]  # (WAIT_FRACTION, READY_SHARE)


def configs(seeds: int, steps: int):
    return slides_configs(seeds, steps, stop_when_solved=True)


def run_once(cfgs, wait: float, share: float) -> tuple[float, int, int, str]:
    """(seconds, update calls, seed updates, digest of every seed's episodes) of one training
    of the group."""
    train.WAIT_FRACTION, train.READY_SHARE = wait, share
    trainer = train.GroupTrainer(cfgs)
    updates = [0]
    update = trainer.update

    def counted(batch, gs):
        updates[0] += 1
        update(batch, gs)

    trainer.update = counted
    t0 = time.perf_counter()
    logs = trainer.run()
    seconds = time.perf_counter() - t0
    digest = hashlib.sha256(repr([log.episode_rows for log in logs]).encode()).hexdigest()[:12]
    return seconds, updates[0], sum(log.updates for log in logs), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per arm")
    parser.add_argument("--steps", type=int, default=50_000, help="env-step budget per seed")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfgs = configs(args.seeds, args.steps)
    results = {c: [] for c in CHOICES}
    for r in range(args.repeats):
        for choice in CHOICES[r % len(CHOICES):] + CHOICES[:r % len(CHOICES)]:
            results[choice].append(run_once(cfgs, *choice))
    digests = {d for runs in results.values() for *_, d in runs}
    print(f"# torch {torch.__version__}; {platform.processor() or platform.machine()}; "
          f"{len(ARMS)} arms x {args.seeds} seeds x {args.steps} steps, {args.repeats} repeats; "
          f"episodes identical across choices: {len(digests) == 1}")
    print("| WAIT_FRACTION | READY_SHARE | seconds (median) | update calls | seeds per call |")
    print("|---:|---:|---:|---:|---:|")
    for (wait, share), runs in results.items():
        secs = statistics.median(r[0] for r in runs)
        calls, seed_updates = runs[0][1], runs[0][2]
        print(f"| {wait} | {share} | {secs:.1f} | {calls:,} | {seed_updates / calls:.1f} |")


if __name__ == "__main__":
    main()
