"""Synthetic run directories and summaries in the shapes of docs/contracts.md, for tests.

``write_run_dir`` writes what ``pgbench train`` writes (episodes.parquet, updates.parquet,
run.json) from a list of episode returns, computing the sources' running reward and ``solved``
exactly as the contract defines them. ``write_summary`` writes a runs.parquet directly from
times to threshold, for claims tests that need many runs but no episodes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

RUNNING_REWARD_START = 10.0
RUNNING_REWARD_WEIGHT = 0.05


def running_rewards(returns) -> np.ndarray:
    """The sources' running reward after each episode: EMA with weight 0.05, starting at 10."""
    out, value = [], RUNNING_REWARD_START
    for r in returns:
        value = RUNNING_REWARD_WEIGHT * r + (1 - RUNNING_REWARD_WEIGHT) * value
        out.append(value)
    return np.array(out, dtype=float)


def _hash(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def write_run_dir(path, returns, *, lengths=None, suite="slides", env="CartPole-v1",
                  variant="vanilla", seed=0, setting=None, threshold=475.0, stop_reason=None,
                  status="complete", total_steps=500_000, seed_group=None, elapsed_s=2.0,
                  cpu_s=1.5) -> Path:
    """Write a run directory with one episode per update and the given episode ``returns``.

    ``lengths`` default to the returns (CartPole: one reward per step). ``stop_reason`` defaults
    to ``solved`` if the running reward reached ``threshold``, else ``budget``.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    returns = np.asarray(returns, dtype=float)
    n = len(returns)
    lengths = np.asarray(lengths if lengths is not None else np.maximum(returns, 1), dtype=np.int64)
    env_steps = np.cumsum(lengths).astype(np.int64)
    rr = running_rewards(returns)
    episodes = pd.DataFrame({
        "update": np.arange(n, dtype=np.int64), "episode": np.arange(n, dtype=np.int64),
        "env_steps": env_steps, "return": returns, "length": lengths,
        "terminated": np.ones(n, dtype=bool), "truncated": np.zeros(n, dtype=bool),
        "running_reward": rr, "wall_s": np.linspace(0.01, elapsed_s, n) if n else np.zeros(0),
    })
    episodes.to_parquet(path / "episodes.parquet", index=False)
    updates = pd.DataFrame({
        "update": np.arange(n, dtype=np.int64), "env_steps": env_steps,
        "episodes": np.ones(n, dtype=np.int64), "policy_loss": np.zeros(n), "grad_norm": np.ones(n),
        "entropy": np.full(n, 0.69), "value_loss": np.full(n, np.nan),
        "wall_s": episodes["wall_s"].to_numpy(),
    })
    updates.to_parquet(path / "updates.parquet", index=False)
    crossed = np.flatnonzero(rr >= threshold) if threshold is not None else np.array([], int)
    solved = None
    if crossed.size:
        i = int(crossed[0])
        solved = {"update": i, "episode": i, "env_steps": int(env_steps[i])}
    # the last-100 rule, computed here by its definition (an oracle beside pgbench.runs.log)
    solved_last100 = None
    if threshold is not None:
        for i in range(99, n):
            if sum(returns[i - 99:i + 1]) >= 100 * threshold:
                solved_last100 = {"update": i, "episode": i, "env_steps": int(env_steps[i])}
                break
    setting = setting or {}
    arm = variant + "".join(f"__{k}={setting[k]}" for k in sorted(setting))
    config = {"env_id": env, "variant": variant, "seed": seed, "total_steps": total_steps,
              **{k: v for k, v in setting.items()}}
    info = {
        "schema": 1,
        "config": config,
        "config_hash": _hash(env, variant, sorted(setting.items())),
        "run_hash": _hash(env, variant, sorted(setting.items()), seed),
        "meta": {"suite": suite, "arm": arm, "setting": dict(setting)},
        "status": status,
        "stop_reason": stop_reason or ("solved" if solved else "budget"),
        "reward_threshold": threshold,
        "solved": solved,
        "solved_last100": solved_last100,
        "totals": {"env_steps": int(env_steps[-1]) if n else 0, "episodes": n, "updates": n},
        "provenance": {"git_commit": "0" * 40, "git_dirty": False,
                       "packages": {"numpy": np.__version__, "pandas": pd.__version__},
                       "python": "3.11", "platform": "test", "cpu": "test", "hostname": "test",
                       "torch_threads": 1, "started_at": "2025-01-01T00:00:00+00:00",
                       "elapsed_s": elapsed_s, "cpu_s": cpu_s,
                       "seed_group": list(seed_group if seed_group is not None else [seed])},
    }
    (path / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return path


def run_rows(variant, times, censored=None, *, suite="slides", env="CartPole-v1",
             setting="default", final_return=None, first_seed=0, steps_per_episode=100.0,
             gradient_steps=None):
    """runs.parquet rows for one arm: seed k reached the threshold after ``times[k]`` env steps
    (or was censored there). Both threshold rules get the same times. With ``gradient_steps``,
    seed k took ``gradient_steps[k]`` gradient steps to solve (both rules; also its total)."""
    times = np.asarray(times, dtype=float)
    censored = np.zeros(len(times), bool) if censored is None else np.asarray(censored, bool)
    final = (np.full(len(times), 475.0) if final_return is None
             else np.asarray(final_return, dtype=float))
    rows = []
    for k, (t, c, f) in enumerate(zip(times, censored, final)):
        seed = first_seed + k
        rows.append({
            "suite": suite, "env": env, "variant": variant,
            "arm": variant + ("" if setting == "default" else "__" + setting.replace(", ", "__")),
            "setting": setting, "seed": seed, "config_hash": _hash(variant, setting),
            "run_hash": _hash(variant, setting, seed), "stop_reason": "budget" if c else "solved",
            "threshold": 475.0, "budget_steps": int(t) if c else 2_000_000,
            "env_steps": int(t), "episodes": int(t / steps_per_episode), "updates": int(t / steps_per_episode),
            "final_return": float(f),
            "steps_to_threshold": float(t), "episodes_to_threshold": float(t / steps_per_episode),
            "censored": bool(c),
            "steps_to_threshold_last100": float(t), "episodes_to_threshold_last100": float(t / steps_per_episode),
            "censored_last100": bool(c),
            "wall_s": 1.0, "cpu_s": 1.0, "run_dir": f"runs/{variant}/seed{seed}",
            "episodes_sha256": _hash("episodes", variant, setting, seed), "packages": "{}",
        })
    for row, g in zip(rows, gradient_steps if gradient_steps is not None else []):
        row["gradient_steps"] = float(g)
        row["gradient_steps_to_threshold"] = row["gradient_steps_to_threshold_last100"] = float(g)
    return rows


def write_summary(path, rows) -> Path:
    """Write ``rows`` (from ``run_rows``) as SUMMARY/runs.parquet."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path / "runs.parquet", index=False)
    return path
