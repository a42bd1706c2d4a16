"""Is pgbench's DQN non-inferior to Stable-Baselines3's at the same settings? (issue 19)

Reads the run directories of the two arms (``dqn`` and ``sb3_dqn``) of a validation suite and
computes, per run, the summary table's ``mean_return`` (AUC per episode) and ``final_return``
(mean of the last tenth of episodes), with ``pgbench.analysis``'s own functions; then the test
of the PPO/A2C/TRPO validation (issue 18's ``noninferiority_ratio`` in pgbench.claims.run_statistics, on the
algos18 branch, re-computed here with the same pieces): the relative difference
mean(dqn) / mean(sb3_dqn) - 1 with a 95% percentile-bootstrap CI (``pgbench.stats.bootstrap.bootstrap_ci``,
arms resampled independently, 2000 resamples), non-inferior when the whole CI lies above -10%
(inferior when wholly below, else inconclusive). The permutation interval of the plain
difference (``pgbench.stats.smallsample.permutation_shift_ci``) is printed beside it.

A stand-in until the ``validate-dqn`` claim runs through ``pgbench claims`` after the merge::

    python benchmarks/dqn_noninferiority.py results/runs/validate_dqn/CartPole-v1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pgbench.analysis.runs import final_return, mean_return
from pgbench.stats.bootstrap import bootstrap_ci
from pgbench.stats.smallsample import permutation_shift_ci

MARGIN = -0.10
MIN_SEEDS = 5  # below this the percentile bootstrap's interval is too narrow to mean anything


def run_values(arm_dir: Path) -> pd.DataFrame:
    """One row per complete run under ``arm_dir/seed*``: seed, mean_return, final_return."""
    rows = []
    for run in sorted(arm_dir.glob("seed*")):
        try:
            info = json.loads((run / "run.json").read_text())
        except OSError:
            continue  # still training
        if info.get("status") != "complete":
            continue
        returns = pd.read_parquet(run / "episodes.parquet")["return"].to_numpy(float)
        rows.append({"seed": int(info["config"]["seed"]), "mean_return": mean_return(returns),
                     "final_return": final_return(returns),
                     "cpu_s": info["provenance"].get("cpu_s")})
    return pd.DataFrame(rows).sort_values("seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_dir", type=Path, help=".../<suite>/<env>, holding dqn/ and sb3_dqn/")
    args = parser.parse_args()
    mine, theirs = run_values(args.env_dir / "dqn"), run_values(args.env_dir / "sb3_dqn")
    print(f"{args.env_dir}: dqn seeds {mine.seed.tolist()}, sb3_dqn seeds {theirs.seed.tolist()}")
    print(f"CPU s per run: dqn {mine.cpu_s.round(0).tolist()}, sb3_dqn {theirs.cpu_s.round(0).tolist()}")
    for column in ("mean_return", "final_return"):
        a, b = mine[column].to_numpy(float), theirs[column].to_numpy(float)
        ci = bootstrap_ci(lambda x, y: float(np.mean(x) / np.mean(y) - 1.0), a, b,
                          rng=np.random.default_rng(19), confidence=0.95, n_resamples=2000)
        verdict = ("non-inferior" if ci.low > MARGIN else
                   "inferior" if ci.high <= MARGIN else "inconclusive")
        if min(len(a), len(b)) < MIN_SEEDS:  # a bootstrap of a few runs is all but degenerate
            verdict = f"no verdict: {min(len(a), len(b))} runs per arm, fewer than {MIN_SEEDS}"
        shift = permutation_shift_ci(a, b, rng=np.random.default_rng(19), confidence=0.95)
        print(f"{column}: dqn {np.round(a, 1).tolist()} (mean {a.mean():.1f}); sb3_dqn "
              f"{np.round(b, 1).tolist()} (mean {b.mean():.1f})")
        print(f"  dqn / sb3_dqn - 1 = {ci.estimate:+.1%} [{ci.low:+.1%}, {ci.high:+.1%}] "
              f"(bootstrap 95%); margin {MARGIN:+.0%}: {verdict}. Difference {shift.estimate:+.1f} "
              f"[{shift.low:+.1f}, {shift.high:+.1f}] (permutation, {shift.n_arrangements} "
              "arrangements)")


if __name__ == "__main__":
    main()
