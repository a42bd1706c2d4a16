"""Coverage of the gradient study's bootstrap intervals, measured against exact values.

The sampled study (pools, reference pool, bootstrap) runs on TwoStateChain, whose exact means
and variances `pgbench gradstudy --exact` computes, once per seed; for each kind of interval
(projection on grad J, total variance, paired variance ratio) it counts the intervals that
cover the exact value, and which side the misses fall on. Settings: the calibration test's
(tests/test_exactgrad.py): pools of 256 episodes, batches of 1 and 4, 300 resamples, 95%.

Usage: python benchmarks/gradstudy_coverage.py FIRST_SEED N_SEEDS [BATCHES K,K,... RESAMPLES]
(e.g. ``3000 200``: ~30 s on one core; ``3000 40 256 1,4,16 1000``: the default config's exact
study). Results: docs/contracts.md, "Gradient study".
"""

from __future__ import annotations

import sys

import numpy as np

import pgbench  # noqa: F401  (first: pins the CPU dispatch)
from pgbench.gradstudy import exactstudy as xs
from pgbench.gradstudy import study, tinymdp


def main(first: int, n: int, batches: int = 64, ks: tuple[int, ...] = (1, 4),
         n_resamples: int = 300) -> None:
    mdp = tinymdp.TINY_MDPS["TwoStateChain"]
    params = mdp.policy_params(0)
    settings = study.StudySettings(episodes=ks, batches=batches, reference_batches=batches,
                                   n_resamples=n_resamples, confidence=0.95)
    grad_j, forms, p = xs.exact_forms(mdp, params)
    exact = xs.exact_moments(forms, p, settings.episodes, settings.estimators)
    covered = {kind: [] for kind, _, _ in xs.COVERAGE_KINDS}
    misses = {kind: {"below": 0, "above": 0} for kind in covered}
    for seed in range(first, first + n):
        cells = xs.coverage_cells(mdp, params, settings, seed, forms, p, grad_j, exact)
        for kind, found in cells.items():
            for lo, x, hi in found:
                covered[kind].append(lo <= x <= hi)
                if not lo <= x <= hi:
                    misses[kind]["below" if x < lo else "above"] += 1
    print(f"seeds {first}-{first + n - 1}, {batches} batches of {max(ks)} (K = {ks}), "
          f"{n_resamples} resamples: share of 95% intervals that cover the exact value")
    for kind, flags in covered.items():
        print(f"  {kind}: {np.mean(flags):.1%} of {len(flags)} (exact value below the interval "
              f"{misses[kind]['below']}, above {misses[kind]['above']})")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 6):
        sys.exit("usage: gradstudy_coverage.py FIRST_SEED N_SEEDS [BATCHES K,K,... RESAMPLES]")
    extra = {} if len(sys.argv) == 3 else {
        "batches": int(sys.argv[3]), "ks": tuple(int(k) for k in sys.argv[4].split(",")),
        "n_resamples": int(sys.argv[5])}
    main(int(sys.argv[1]), int(sys.argv[2]), **extra)
