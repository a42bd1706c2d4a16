"""A small, hand-made summary directory in the shapes of docs/contracts.md, for report tests.

Two (suite, env) pairs, three arms in one of them (one arm named like an XSS payload), five seeds
per arm, some runs solved (their curves carried forward) and some censored at the budget, a
compute table, provenance, one claims row per verdict and, optionally, a gradient study.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

#: An arm name that must come out as text, never markup, in index.html and README.md.
EVIL = "<script>alert(1)</script>"

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")

BUDGET = 200_000
GRID = 200
N_SEEDS = 5


def _hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _arm(variant: str, setting: str) -> str:
    if setting == "default":
        return variant
    return variant + "__" + setting.replace(", ", "__")


def _one_run(rng: np.random.Generator, speed: float, solves: bool, budget: int, threshold: float):
    """Synthetic episodes of one run: returns rise along a logistic in env steps; a run that
    ``solves`` stops some steps after crossing the threshold, one that does not stops at budget."""
    steps, out = 0, []
    half = budget * speed
    while steps < budget:
        level = threshold * 1.05 / (1 + np.exp(-(steps - half) / (0.15 * budget)))
        if not solves:
            level = min(level, 0.7 * threshold)
        ret = float(np.clip(level + rng.normal(0, 0.05 * threshold), 8, threshold * 1.05))
        length = int(max(ret * 475 / threshold, 8))
        steps += length
        out.append((steps, ret))
        if solves and steps > half + 0.45 * budget:
            break
    return out


def make_summary(path: str | Path, *, gradstudy: bool = True, evil: bool = True,
                 seed: int = 0) -> Path:
    """Write runs/curves/compute/provenance/claims (and gradstudy*) parquet/json into ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plan = [
        ("slides", "CartPole-v1", 475.0, [("vanilla", "default", 0.8, 0.4),
                                          ("rtg_baseline", "baseline=whiten, dropout=0.6", 0.3, 1.0),
                                          *([(EVIL, "default", 0.5, 0.6)] if evil else [])]),
        ("cs234", "InvertedPendulum-v5", 950.0, [("pg", "default", 0.6, 0.6),
                                                 ("pg_baseline", "default", 0.4, 0.8)]),
    ]
    runs, curves, compute = [], [], []
    for suite, env, threshold, arms in plan:
        per_suite = []
        for variant, setting, speed, p_solve in arms:
            arm = _arm(variant, setting)
            for s in range(N_SEEDS):
                solves = bool(rng.random() < p_solve) or s == 0
                eps = _one_run(rng, speed * rng.uniform(0.8, 1.2), solves, BUDGET, threshold)
                per_suite.append((variant, setting, arm, s, solves, eps))
        max_steps = max(e[-1][0] for *_, e in per_suite)
        grid = np.linspace(0, max_steps, GRID).round().astype(np.int64)
        for variant, setting, arm, s, solves, eps in per_suite:
            st = np.array([e[0] for e in eps])
            rt = np.array([e[1] for e in eps])
            total = int(st[-1])
            solve_at = float(st[len(st) * 2 // 3]) if solves else float(total)
            last = rt[-max(1, len(rt) // 10):].mean()
            runs.append({
                "suite": suite, "env": env, "variant": variant, "arm": arm, "setting": setting,
                "seed": s, "config_hash": _hash(suite, env, arm), "run_hash": _hash(suite, env, arm, s),
                "stop_reason": "solved" if solves else "budget", "threshold": threshold,
                "budget_steps": BUDGET, "engine": "numba" if suite == "slides" else "torch",
                "env_steps": total, "episodes": len(eps),
                "updates": len(eps), "final_return": float(last),
                "steps_to_threshold": solve_at, "episodes_to_threshold": float(len(eps) * 2 // 3 if solves else len(eps)),
                "censored": not solves,
                "steps_to_threshold_last100": solve_at * 1.1 if solves else float(total),
                "episodes_to_threshold_last100": float(len(eps)),
                "censored_last100": not solves,
                "wall_s": total / 5000.0, "cpu_s": total / 5200.0,
                "run_dir": f"results/runs/{suite}/{env}/{arm}/seed{s}",
                "episodes_sha256": "0" * 64,
                "packages": json.dumps({"torch": "2.13.0", "gymnasium": "1.4.0"}, sort_keys=True),
            })
            for x in grid:
                k = np.searchsorted(st, x, side="right")
                if k == 0:
                    value, carried = np.nan, False
                else:
                    value, carried = float(rt[max(0, k - 10):k].mean()), False
                    if x > st[-1]:
                        carried = solves
                        value = value if solves else np.nan
                curves.append({"suite": suite, "env": env, "variant": variant, "arm": arm,
                               "setting": setting, "seed": s, "env_steps": int(x),
                               "return": value, "carried": carried})
        # one training job per (suite, env): every arm, all seeds
        mine = [r for r in runs if r["suite"] == suite]
        steps = sum(r["env_steps"] for r in mine)
        wall = sum(r["wall_s"] for r in mine)
        compute.append({"rule": "train", "suite": suite, "env": env, "arm": "",
                        "seeds": ",".join(str(s) for s in range(N_SEEDS)), "s": wall,
                        "cpu_time": wall * 0.97, "max_rss": 310.5, "env_steps": steps,
                        "steps_per_s": steps / wall})
    pd.DataFrame(runs).to_parquet(path / "runs.parquet", index=False)
    pd.DataFrame(curves).to_parquet(path / "curves.parquet", index=False)
    pd.DataFrame(compute).to_parquet(path / "compute.parquet", index=False)
    provenance = {
        "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
        "packages": {"torch": "2.13.0", "gymnasium": "1.4.0", "numpy": "2.4.6"},
        "python": "3.11.7", "platform": "Linux-6.1-x86_64", "cpu": "Test CPU @ 2.0GHz",
        "date": "2026-11-22T03:00:00Z",
        "config_hashes": sorted({r["config_hash"] for r in runs}),
        "command": "pgbench aggregate results/runs --out results/summary",
    }
    (path / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True))
    claims = []
    for i, verdict in enumerate(VERDICTS):
        ran = verdict != "not run"
        claims.append({
            "claim_id": ["slides-speedup", "baseline-variance", "value-baseline", "ppo-vs-vpg"][i],
            "source": ["001_784bf18d2f77e7fb.txt", "002_91ea8fbd0a5474df.txt",
                       "000_0c9167c78f251a9d.txt", "000_0c9167c78f251a9d.txt"][i],
            "quote": ["about 5x faster with just 2 small modifications",
                      "a baseline reduces the variance | of the <b>gradient</b>",
                      f"a learned value baseline {EVIL if evil else 'V(s)'} improves on returns",
                      r"advantage denotes $\sum_{t' = t}^T r_{t'}- V^{\pi}(s_t)$"][i],
            "setting": ["dropout=0.6", "default", "default", "default"][i],
            "statistic": "ratio of median steps to solve",
            "estimate": [5.2, 0.91, 1.3, np.nan][i] if ran else np.nan,
            "ci_low": [4.1, 0.80, 0.7, np.nan][i], "ci_high": [6.6, 1.05, 2.1, np.nan][i],
            "confidence": 0.95, "threshold": [3.0, 0.5, 1.0, 1.0][i],
            "direction": [">=", "<=", ">=", ">="][i], "verdict": verdict,
            "n_seeds": [5, 5, 3, 0][i], "seeds_needed": [np.nan, np.nan, 12.0, np.nan][i],
            "detail": ["medians 160k vs 830k steps; quoted ~5x", "median ratio 0.91",
                       "too few seeds", "PPO not in this suite"][i],
        })
    pd.DataFrame(claims).to_parquet(path / "claims.parquet", index=False)
    if gradstudy:
        _write_gradstudy(path, rng)
    return path


def _write_gradstudy(path: Path, rng: np.random.Generator) -> None:
    rows, pairs = [], []
    estimators = {"vanilla": 40.0, "rtg": 12.0, "rtg_baseline": 3.0}
    for snapshot in ("init", "q25", "q75"):
        for n in (1, 4, 16, 64):
            for est, v in estimators.items():
                var = v * (1 + 0.3 * ("q" in snapshot)) / n * rng.uniform(0.9, 1.1)
                rows.append({"env": "CartPole-v1", "snapshot": snapshot, "estimator": est,
                             "episodes_per_batch": n, "n_batches": 200, "total_variance": var,
                             "total_variance_ci_low": var * 0.8, "total_variance_ci_high": var * 1.25,
                             "bias_norm": 0.01, "relative_bias_corrected": 0.02,
                             "relative_bias_corrected_ci_low": 0.0,
                             "relative_bias_corrected_ci_high": 0.1, "bias_over_noise": 0.9,
                             "cosine_to_reference": 0.98,
                             "mean_grad_norm": 1.5})
            for a, b in (("rtg", "vanilla"), ("rtg_baseline", "rtg")):
                r = estimators[a] / estimators[b]
                pairs.append({"env": "CartPole-v1", "snapshot": snapshot, "episodes_per_batch": n,
                              "estimator_a": a, "estimator_b": b, "variance_ratio": r,
                              "variance_ratio_ci_low": r * 0.85, "variance_ratio_ci_high": r * 1.15,
                              "mean_diff_norm": 0.02, "mean_diff_ci_high": 0.05,
                              "mean_diff_pvalue": 0.4})
    pd.DataFrame(rows).to_parquet(path / "gradstudy.parquet", index=False)
    pd.DataFrame(pairs).to_parquet(path / "gradstudy_pairs.parquet", index=False)
    layers = [{"env": r["env"], "snapshot": r["snapshot"], "estimator": r["estimator"],
               "episodes_per_batch": r["episodes_per_batch"], "layer": layer,
               "variance": r["total_variance"] / 2} for r in rows for layer in ("fc1", "fc2")]
    pd.DataFrame(layers).to_parquet(path / "gradstudy_layers.parquet", index=False)
