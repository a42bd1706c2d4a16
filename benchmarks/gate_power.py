"""Power and false-alarm rate of the shipped CI gate, by simulation on pools of trained seeds.

How it works (docs/check.md, "How the gate was sized"):

1. ``pools``: train one large pool of independent seeds per condition, once, with the CI suite's
   settings (config/ci.yaml) and the compiled engine, and keep each seed's metrics (mean return
   over training, final return, steps to threshold) in ``OUT/pools.parquet``. Conditions: the
   unchanged suite, and four planted regressions made through the config (so they run in the
   same compiled code): the learning rate halved, a 10% smaller step size (lr x 0.9), the
   baseline weakened (its running mean tracks 10x slower, ``ema_weight`` 0.05 -> 0.005), and
   reward-to-go replaced by the total return (``returns=total``).
   Pool seeds start at 100000, far from the suite's seeds 0..N-1.
2. ``simulate``: repeat the gate many times. Each repetition draws, without replacement, N
   reference seeds from the unchanged pool and N current seeds from the condition's pool
   (for the unchanged condition, N further seeds disjoint from the reference's), and runs
   :func:`pgbench.check.gate.compare_group` with the gate's metric, margin and alpha. The detection
   rate is the share of repetitions called ``regression``; for the unchanged condition that share
   is the false-alarm rate. The "true effect" of a condition is the difference of its pool's
   mean from the unchanged pool's, relative to the latter (the whole pools, not a draw).

Repetitions share seeds (they are subsets of one pool), so the rates describe the pools'
distributions; their Monte Carlo error is shown as a binomial standard error, which understates
the error when N is a large share of a pool. Independent seeds on both sides are what a check on
another machine sees (on the reference's machine the unchanged suite is ``identical``, and a
planted regression shares the reference's seeds, whose runs are correlated with it: a two-sample
test is then conservative).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/gate_power.py pools --out results/gate_power \
        --unchanged 1000 --planted 500
    PYTHONPATH=$PWD python benchmarks/gate_power.py simulate --out results/gate_power --reps 1000
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pgbench.analysis.runs import final_return, mean_return
from pgbench.check.gate import compare_group
from pgbench.core.io import write_parquet_atomic
from pgbench.rl.config import make_config

ROOT = Path(__file__).resolve().parent.parent
POOL_SEED0 = 100_000
#: condition -> (what it plants, TrainConfig overrides on top of the suite's settings)
CONDITIONS = {
    "unchanged": ("unchanged code, other seeds", {}),
    "lr_halved": ("learning rate halved", {"lr_factor": 0.5}),
    "step_size_0.9": ("10% smaller step size (lr x 0.9)", {"lr_factor": 0.9}),
    "baseline_weakened": ("baseline weakened (ema_weight 0.05 -> 0.005)", {"ema_weight": 0.005}),
    "total_return": ("reward-to-go replaced by total return", {"returns": "total"}),
}


def suite_config():
    """The CI suite's one group: (variant, TrainConfig, seeds, gate settings)."""
    ci = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())["suites"]["ci"]
    (env,), (variant,) = ci["envs"], ci["variants"]
    return make_config(variant, {**ci["settings"], "env_id": env}), int(ci["seeds"])


def condition_config(base, overrides: dict):
    overrides = dict(overrides)
    factor = overrides.pop("lr_factor", 1.0)
    return replace(base, lr=base.lr * factor, **overrides)


def train_pool(cfg, seeds: list[int]) -> list[dict]:
    from pgbench.training.numba.engine import NumbaRun

    rows = []
    for seed in seeds:
        t0 = time.process_time()
        log = NumbaRun(replace(cfg, seed=seed)).run()
        returns = np.array([row[3] for row in log.episode_rows], dtype=float)
        rows.append({"seed": seed, "mean_return": mean_return(returns),
                     "final_return": final_return(returns),
                     "steps_to_threshold": float(log.solved["env_steps"]) if log.solved
                     else math.nan, "cpu_s": time.process_time() - t0})
    return rows


def run_pools(args) -> None:
    base, _ = suite_config()
    out = Path(args.out)
    frames, target = [], out / f"pools-{'-'.join(args.conditions)}.parquet"
    for name in args.conditions:
        _, overrides = CONDITIONS[name]
        size = args.unchanged if name == "unchanged" else args.planted
        cfg = condition_config(base, overrides)
        t0 = time.perf_counter()
        frame = pd.DataFrame(train_pool(cfg, list(range(POOL_SEED0, POOL_SEED0 + size))))
        frame.insert(0, "condition", name)
        frames.append(frame)
        print(f"{name}: {size} seeds in {time.perf_counter() - t0:.0f} s "
              f"(cpu {frame['cpu_s'].sum():.0f} s)", flush=True)
        write_parquet_atomic(target, pd.concat(frames, ignore_index=True))


def simulate(pools: pd.DataFrame, *, n: int, reps: int, metric: str, min_effect: float,
             detect: float, alpha: float, seed: int,
             conditions=tuple(CONDITIONS)) -> pd.DataFrame:
    """Detection rate of each condition over ``reps`` repetitions of the gate with n seeds a side."""
    rng = np.random.default_rng(seed)
    base = pools.loc[pools["condition"] == "unchanged", metric].to_numpy(float)
    rows = []
    for name in conditions:
        label = CONDITIONS[name][0]
        pool = pools.loc[pools["condition"] == name, metric].to_numpy(float)
        if pool.size == 0:
            continue
        verdicts = []
        for _ in range(reps):
            if name == "unchanged":
                idx = rng.choice(base.size, size=2 * n, replace=False)
                ref, cur = base[idx[:n]], base[idx[n:]]
            else:
                ref = base[rng.choice(base.size, size=n, replace=False)]
                cur = pool[rng.choice(pool.size, size=n, replace=False)]
            verdicts.append(compare_group(ref, cur, rng, alpha=alpha, min_effect=min_effect,
                                          statistic="mean", detect=detect).verdict)
        verdicts = np.array(verdicts)
        rate = float(np.mean(verdicts == "regression"))
        rows.append({"condition": name, "regression": label, "pool": pool.size,
                     "true_effect": float(pool.mean() / base.mean() - 1),
                     "regression_rate": rate,
                     "se": math.sqrt(max(rate * (1 - rate), 1 / reps) / reps),
                     "inconclusive_rate": float(np.mean(verdicts == "inconclusive")),
                     "pass_rate": float(np.mean(verdicts == "pass"))})
    return pd.DataFrame(rows)


def run_simulate(args) -> None:
    pools = pd.concat([pd.read_parquet(p) for p in sorted(Path(args.out).glob("pools*.parquet"))],
                      ignore_index=True)
    _, n = suite_config()
    n = args.n or n
    print(f"# gate: metric {args.metric}, {n} seeds a side, min-effect {args.min_effect}, "
          f"detect {args.detect}, alpha {args.alpha}, {args.reps} repetitions")
    for metric in dict.fromkeys([args.metric, "final_return"]):
        base = pools.loc[pools["condition"] == "unchanged", metric]
        print(f"# {metric}: unchanged pool mean {base.mean():.1f}, sd {base.std():.1f}, "
              f"cv {base.std() / base.mean():.3f}")
    table = simulate(pools, n=n, reps=args.reps, metric=args.metric, min_effect=args.min_effect,
                     detect=args.detect,
                     alpha=args.alpha, seed=args.seed, conditions=args.conditions)
    cpu = pools.groupby("condition")["cpu_s"].mean()
    print(f"# pools: {pools.groupby('condition').size().to_dict()}")
    print("| regression | true effect | called regression | inconclusive | pass | CPU s / seed |")
    print("|---|---|---|---|---|---|")
    for row in table.itertuples():
        label = "none: " + row.regression if row.condition == "unchanged" else row.regression
        print(f"| {label} | {100 * row.true_effect:+.1f}% | {100 * row.regression_rate:.1f}% "
              f"± {100 * row.se:.1f} | {100 * row.inconclusive_rate:.1f}% | "
              f"{100 * row.pass_rate:.1f}% | {cpu[row.condition]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pools")
    p.add_argument("--out", default="results/gate_power")
    p.add_argument("--unchanged", type=int, default=1000)
    p.add_argument("--planted", type=int, default=500)
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS),
                   help="conditions to train (each call writes OUT/pools-<conditions>.parquet)")
    s = sub.add_parser("simulate")
    s.add_argument("--out", default="results/gate_power")
    s.add_argument("--n", type=int, default=0, help="seeds a side (default: the suite's)")
    s.add_argument("--reps", type=int, default=1000)
    s.add_argument("--metric", default="mean_return")
    s.add_argument("--min-effect", type=float, default=0.02)
    s.add_argument("--detect", type=float, default=0.1)
    s.add_argument("--alpha", type=float, default=0.05)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    args = parser.parse_args()
    run_pools(args) if args.command == "pools" else run_simulate(args)


if __name__ == "__main__":
    main()
