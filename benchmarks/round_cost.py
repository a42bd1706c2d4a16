"""Cost of one round (collect one episode per seed, then update) of a seed group on CartPole-v1.

The default pipeline's slowest jobs are seed groups of one episode per update whose policies
collapsed to always pushing one way: ~9-step episodes, ~200k updates each to spend a 2M-step
budget. This script measures what such a round costs, and what a round of fresh (random-policy,
~20-step) episodes costs, for groups of 1, 14 and 20 seeds with and without dropout 0.6.

Collapsed policies are made by adding 30 to the bias of action 0's logit (the policy then
pushes left with probability ~1). Each case collects a fixed set of batches, times ``update``
over them (the parameters move, the batches do not) and then times ``collect``; microseconds per
round, median of ``--repeats``. Cases are interleaved in one process.

Run it on two versions of the code by pointing PYTHONPATH at each checkout, alternating::

    PYTHONPATH=/path/to/checkout python benchmarks/round_cost.py --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.rl.config import make_config
from pgbench.training.group import GroupTrainer

CASES = [(policy, S, dropout) for policy in ("collapsed", "fresh") for S in (1, 14, 20)
         for dropout in (0.0, 0.6)]


def trainer(policy: str, S: int, dropout: float) -> GroupTrainer:
    cfg = make_config("vanilla", {"env_id": "CartPole-v1", "hidden": (128,), "dropout": dropout,
                                  "lr": 1e-2, "gamma": 0.99})
    tr = GroupTrainer(cfg, list(range(S)))
    if policy == "collapsed":
        with torch.no_grad():
            tr.params["pi.b1"][:, :, 0] += 30.0
    return tr


def time_case(policy: str, S: int, dropout: float, rounds: int) -> tuple[float, float, float]:
    """(update us, collect us, mean episode length) per round."""
    tr = trainer(policy, S, dropout)
    everyone = np.arange(S)
    batches = [tr.collector.collect_round(tr.params) for _ in range(rounds)]
    length = float(np.mean([b.lengths.mean() for b in batches]))
    for b in batches[:3]:  # warm-up
        tr.update(b, everyone)
    t0 = time.perf_counter()
    for b in batches:
        tr.update(b, everyone)
    update = (time.perf_counter() - t0) / rounds
    tr = trainer(policy, S, dropout)  # collect with the unchanged policy again
    t0 = time.perf_counter()
    for _ in range(rounds):
        tr.collector.collect_round(tr.params)
    collect = (time.perf_counter() - t0) / rounds
    return 1e6 * update, 1e6 * collect, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds timed per case and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {case: [] for case in CASES}
    for r in range(args.repeats):
        order = CASES[r % len(CASES):] + CASES[:r % len(CASES)]
        for case in order:
            results[case].append(time_case(*case, args.rounds))

    print(f"# {pgbench.__file__}; torch {torch.__version__}; {platform.processor() or platform.machine()}; "
          f"{args.rounds} rounds x {args.repeats} repeats")
    print("| policy | seeds | dropout | mean episode | update us/round | collect us/round | total |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (policy, S, dropout), rows in results.items():
        upd = statistics.median(u for u, _, _ in rows)
        col = statistics.median(c for _, c, _ in rows)
        print(f"| {policy} | {S} | {dropout} | {rows[0][2]:.1f} | {upd:,.0f} | {col:,.0f} | "
              f"{upd + col:,.0f} |")


if __name__ == "__main__":
    main()
