"""Write a run directory (run.json, episodes.parquet, updates.parquet) atomically, and tell
whether a complete run of a config is already there.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pgbench.core.contracts import EPISODE_COLUMNS, UPDATE_COLUMNS
from pgbench.core.io import replace_dir_atomic, staging_dir, write_json_atomic, write_parquet_atomic
from pgbench.core.outputs import RUN, check_dir
from pgbench.envs.registry import check_env_id
from pgbench.rl.config import TrainConfig
from pgbench.runs.log import SeedLog


def episodes_frame(log: SeedLog) -> pd.DataFrame:
    df = pd.DataFrame(log.episode_rows, columns=EPISODE_COLUMNS)
    return df.astype({"update": "int64", "episode": "int64", "env_steps": "int64",
                      "return": "float64", "length": "int64", "terminated": "bool",
                      "truncated": "bool", "running_reward": "float64"})


def updates_frame(log: SeedLog) -> pd.DataFrame:
    df = pd.DataFrame(log.update_rows, columns=UPDATE_COLUMNS)
    return df.astype({"update": "int64", "env_steps": "int64", "episodes": "int64"})


def write_run(out_dir: Path, cfg: TrainConfig, log: SeedLog, meta: dict, prov: dict,
              elapsed_s: float, cpu_s: float) -> None:
    """Write one seed's run directory atomically: staged beside it, then renamed into place."""
    run_cfg = replace(cfg, seed=log.seed)
    stage = staging_dir(out_dir)
    try:
        write_parquet_atomic(stage / "episodes.parquet", episodes_frame(log))
        write_parquet_atomic(stage / "updates.parquet", updates_frame(log))
        write_json_atomic(stage / "run.json", {
            "schema": 1,
            "config": run_cfg.to_dict(),
            "config_hash": run_cfg.hash(with_seed=False),
            "run_hash": run_cfg.hash(with_seed=True),
            "meta": meta,
            "status": "complete",
            "stop_reason": log.stop_reason,
            "reward_threshold": check_env_id(cfg.env_id).reward_threshold,
            "solved": log.solved,
            "solved_last100": log.solved_last100,
            "totals": {"env_steps": log.env_steps, "episodes": log.episodes, "updates": log.updates,
                       **({} if log.gradient_steps is None else {"gradient_steps": log.gradient_steps})},
            "provenance": {**prov, "elapsed_s": round(elapsed_s, 3), "cpu_s": round(cpu_s, 3)},
        })
        # judged again at the last moment: pgbench never deletes a file it did not write, even
        # one that appeared in the run directory while the run trained
        check_dir(out_dir, RUN, force=True, option="run directory")
        replace_dir_atomic(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def is_complete(run_dir: Path, cfg: TrainConfig) -> bool:
    import json

    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("status") == "complete" and info.get("run_hash") == cfg.hash()
