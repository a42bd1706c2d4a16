"""How reliably the Gaussian policy learns InvertedPendulum-v5: the distribution the pendulum
learning test (tests/test_train.py) chooses its pass count from.

Trains rtg_value (64 hidden units, 2,000-step batches, lr 1e-2, 60k steps) for seeds 100-139
(disjoint from the test's 0-7) in one group, and prints each seed's ratio of its last 20
episodes' mean return to its first 20's, and the pass count for an n-seed test whose false
failure rate stays below 1e-3 at the one-sided 99% lower bound of the rate of 3-fold
improvement::

    python benchmarks/pendulum_learning.py --n 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from solve_rates import pass_count

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.rl.config import make_config
from pgbench.training.runner import train_group

CONFIG = {"env_id": "InvertedPendulum-v5", "steps_per_update": 2000, "episodes_per_update": 0,
          "total_steps": 60_000, "lr": 1e-2, "hidden": (64,), "gamma": 0.99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="seeds the test trains")
    args = parser.parse_args()
    seeds = list(range(100, 140))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"seed{s}" for s in seeds]
        train_group(make_config("rtg_value", CONFIG), seeds, dirs)
        ratios = []
        for d in dirs:
            ret = pd.read_parquet(d / "episodes.parquet")["return"]
            ratios.append(ret.iloc[-20:].mean() / ret.iloc[:20].mean())
    improved = sum(r > 3 for r in ratios)
    p_low, k = pass_count(improved, len(seeds), args.n)
    print("ratios:", " ".join(f"{r:.2f}" for r in sorted(ratios)))
    print(f"{improved}/{len(seeds)} seeds improve 3-fold; 99% lower bound {p_low:.3f}; a test "
          f"of {args.n} seeds passes with >= {k} improving (false-failure rate < 1e-3); "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
