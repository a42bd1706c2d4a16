"""Is pgbench's DQN non-inferior to Stable-Baselines3's at the same settings? (issue 19)

Reads the run directories of the two arms (``dqn`` and ``sb3_dqn``) of a validation suite and
tests, on each run's final return (``pgbench.aggregate.final_return``: the mean return of the
run's last tenth of episodes, the summary table's ``final_return``):

    non-inferior  when the lower end of the 95% CI of mean(dqn) - mean(sb3_dqn) > -margin,
    margin = ``--margin`` (default 0.10) x |mean(sb3_dqn)|, fixed before the runs were seen.

The CI is the permutation test's inverted interval (``pgbench.smallsample.permutation_shift_ci``,
as the claims' ``mean_difference_exact``), so each end is a one-sided 2.5% test: a non-inferior
implementation is called inferior at most 2.5% of the time when it is exactly at the margin.
A stand-in until algos18's registered non-inferiority statistic is merged::

    python benchmarks/dqn_noninferiority.py results/runs/validate_dqn/CartPole-v1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pgbench.aggregate import final_return
from pgbench.smallsample import permutation_shift_ci


def final_returns(arm_dir: Path) -> dict[int, float]:
    """seed -> final return of every complete run under ``arm_dir`` (``seed<k>/``)."""
    out = {}
    for run in sorted(arm_dir.glob("seed*")):
        info = json.loads((run / "run.json").read_text())
        if info.get("status") != "complete":
            continue
        returns = pd.read_parquet(run / "episodes.parquet")["return"].to_numpy(float)
        out[int(info["config"]["seed"])] = final_return(returns)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_dir", type=Path, help="…/<suite>/<env>, holding dqn/ and sb3_dqn/")
    parser.add_argument("--margin", type=float, default=0.10)
    args = parser.parse_args()
    mine, theirs = final_returns(args.env_dir / "dqn"), final_returns(args.env_dir / "sb3_dqn")
    a, b = np.array(list(mine.values())), np.array(list(theirs.values()))
    shift = permutation_shift_ci(a, b, rng=np.random.default_rng(19), confidence=0.95)
    margin = args.margin * abs(b.mean())
    verdict = "non-inferior" if shift.low > -margin else (
        "inferior" if shift.high < -margin else "inconclusive")
    print(f"{args.env_dir}: dqn seeds {sorted(mine)}, sb3_dqn seeds {sorted(theirs)}")
    print(f"final return: dqn mean {a.mean():.1f} (sd {a.std(ddof=1):.1f}), "
          f"sb3_dqn mean {b.mean():.1f} (sd {b.std(ddof=1):.1f})")
    print(f"dqn - sb3_dqn: {shift.estimate:.1f}, 95% CI [{shift.low:.1f}, {shift.high:.1f}] "
          f"(permutation, {'all' if shift.exact else 'random'} {shift.n_arrangements} "
          f"arrangements); margin -{margin:.1f} ({args.margin:.0%} of |sb3 mean|): {verdict}")


if __name__ == "__main__":
    main()
