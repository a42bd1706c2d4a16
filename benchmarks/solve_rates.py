"""How often a variant solves CartPole-v1 within a budget: the distribution the learning tests
choose their pass counts from (tests/test_train.py).

A learning test trains n seeds and asserts that at least k of them solve. k comes from this
measurement, so that a correct implementation fails less than once in 1,000 runs:
P(Binomial(n, p_low) < k) < 1e-3, with p_low the one-sided 99% Clopper-Pearson lower bound of
the measured solve rate. The seeds measured here (1000 and up) are disjoint from the tests'.
The compiled engine runs the same algorithm and random streams as the torch engine (only the
network's rounding differs), at a fraction of the cost, so it measures the distribution::

    python benchmarks/solve_rates.py --variant rtg_baseline --seeds 200 --budget 500000 --n 8
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from scipy import stats

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.rl.config import make_config
from pgbench.training.numba.engine import NumbaRun


def pass_count(solved: int, seeds: int, n: int, risk: float = 1e-3) -> tuple[float, int]:
    """(p_low, k): the 99% lower bound of the solve rate, and the largest k with
    P(Binomial(n, p_low) < k) < risk."""
    p_low = float(stats.beta.ppf(0.01, solved, seeds - solved + 1)) if solved else 0.0
    k = max((k for k in range(n + 1) if stats.binom.cdf(k - 1, n, p_low) < risk), default=0)
    return p_low, k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="rtg_baseline")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--budget", type=int, default=500_000)
    parser.add_argument("--n", type=int, default=8, help="seeds the test trains")
    parser.add_argument("--out", help="write per-seed results as JSON here")
    args = parser.parse_args()
    cfg = make_config(args.variant, {"engine": "numba", "total_steps": args.budget,
                                     "stop_when_solved": True})
    started, rows = time.perf_counter(), []
    for seed in range(1000, 1000 + args.seeds):
        log = NumbaRun(replace(cfg, seed=seed)).run()
        rows.append({"seed": seed, "solved_at": (log.solved or {}).get("env_steps")})
    solved = sum(r["solved_at"] is not None for r in rows)
    p_low, k = pass_count(solved, args.seeds, args.n)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh)
    print(f"{args.variant}: {solved}/{args.seeds} seeds solve within {args.budget:,} steps; "
          f"99% lower bound {p_low:.3f}; a test of {args.n} seeds passes with >= {k} solving "
          f"(false-failure rate < 1e-3); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
