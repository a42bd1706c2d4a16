"""Env steps to solve for many seeds of one compiled-engine arm: do two engines agree in
distribution? A change of rounding order gives each seed another trajectory after its first
flipped action, so two versions of the engine are compared as samples (Mann-Whitney), not run by
run. Run it in each tree (``PYTHONPATH=TREE``), then compare::

    python benchmarks/engine_equivalence.py rtg_baseline '{"baseline": "whiten"}' 100 300 > A.json
    python benchmarks/engine_equivalence.py --compare A.json B.json
    python benchmarks/engine_equivalence.py --coverage A.json B.json   # (pooled, see coverage)

Slides settings (CartPole-v1, one episode per update, lr 0.01, 4-128-2, gamma 1 unless set,
3M-step budget, stop when solved); a run that never solves counts as 3.1M steps.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

BUDGET = 3_000_000


def steps_to_solve(variant: str, overrides: dict, first: int, last: int) -> list:
    import pgbench  # noqa: F401  (first: pins the CPU dispatch)
    from pgbench.rl.config import make_config
    from pgbench.training.numba.engine import NumbaRun

    base = {"env_id": "CartPole-v1", "episodes_per_update": 1, "lr": 0.01, "hidden": [128],
            "engine": "numba", "gamma": 1.0, "total_steps": BUDGET, "stop_when_solved": True,
            **overrides}
    out = []
    for seed in range(first, last):
        log = NumbaRun(replace(make_config(variant, base), seed=seed)).run()
        out.append(log.solved["env_steps"] if log.solved else None)
    return out


def compare(a_path: str, b_path: str) -> None:
    import numpy as np
    from scipy import stats

    def load(path):
        with open(path) as fh:
            return np.array([x if x is not None else BUDGET + 100_000 for x in json.load(fh)])

    a, b = load(a_path), load(b_path)
    print(f"n {len(a)} / {len(b)}; median {np.median(a):,.0f} / {np.median(b):,.0f}; unsolved "
          f"{int((a > BUDGET).sum())} / {int((b > BUDGET).sum())}; Mann-Whitney p = "
          f"{stats.mannwhitneyu(a, b).pvalue:.3f}")


def coverage(paths, seeds: int = 30, draws: int = 2000) -> None:
    """How often the Kaplan-Meier median's 95% interval (pgbench.stats.survival.km_median) from
    ``seeds`` runs drawn without replacement covers the median of all the pooled runs."""
    import numpy as np

    from pgbench.stats.survival import km_median

    pooled = []
    for path in paths:
        with open(path) as fh:
            pooled += json.load(fh)
    times = np.array([x if x is not None else BUDGET for x in pooled], float)
    censored = np.array([x is None for x in pooled])
    truth = km_median(times, censored).median
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(draws):
        pick = rng.choice(len(times), seeds, replace=False)
        m = km_median(times[pick], censored[pick])
        hits += m.low <= truth <= m.high
    print(f"{len(times)} runs, median {truth:,.0f}: the interval from {seeds} seeds covers it in "
          f"{hits / draws:.1%} of {draws} draws")


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "--coverage":
        coverage(sys.argv[2:])
    else:
        print(json.dumps(steps_to_solve(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]),
                                        int(sys.argv[4]))))
