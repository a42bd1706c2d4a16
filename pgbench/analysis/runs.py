"""One row of runs.parquet per run directory: finding runs, reading them, their final and
mean returns and their times to the threshold under both rules.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pgbench.core.errors import UserError
from pgbench.core.fingerprint import platform_fingerprint
from pgbench.core.io import read_json_object

#: Learning-curve grid points per (suite, env).
GRID_POINTS = 200


#: Episodes averaged at each curve point.
CURVE_WINDOW = 10


#: The final return averages a run's last n // FINAL_DIVISOR episodes (its last 10%).
FINAL_DIVISOR = 10


#: Suite of runs whose run.json names none.
ADHOC_SUITE = "adhoc"


EPISODE_COLUMNS_NEEDED = ("episode", "env_steps", "return")


class SkippedRunWarning(UserWarning):
    """A directory that looked like a run but is not complete; it is left out of the summary."""


def _typed(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """A frame of ``rows`` with exactly ``columns`` in order and dtype (empty rows -> empty frame)."""
    # the explicit "str" dtype makes even an empty column a Parquet string column
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


# --------------------------------------------------------------------------- settings
def setting_label(setting: dict | None) -> str:
    """The ``setting`` string of the contract: sorted ``key=value`` pairs, or ``default``.

    >>> setting_label({"dropout": "0.6", "baseline": "whiten"})
    'baseline=whiten, dropout=0.6'
    >>> setting_label({})
    'default'
    """
    if not setting:
        return "default"
    return ", ".join(f"{k}={setting[k]}" for k in sorted(setting))


def parse_setting_label(label: str) -> dict[str, str]:
    """Inverse of ``setting_label`` (values come back as strings).

    >>> parse_setting_label("baseline=whiten, dropout=0.6")
    {'baseline': 'whiten', 'dropout': '0.6'}
    """
    if label in ("", "default"):
        return {}
    pairs = [item.split("=", 1) for item in label.split(", ")]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"not a setting label: {label!r}")
    return {k: v for k, v in pairs}


# --------------------------------------------------------------------------- discovery
def _read_json(path: Path) -> dict:
    return read_json_object(path, "a run.json (docs/contracts.md)")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_run_dirs(paths) -> list[Path]:
    """Complete run directories under ``paths`` (run directories or parents searched recursively).

    Raises UserError for a path that does not exist. Warns (``SkippedRunWarning``) about, and
    leaves out, directories whose run.json is not ``complete`` and directories that hold
    ``episodes.parquet`` but no run.json.
    """
    found: dict[Path, None] = {}
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise UserError(f"run directory {root} does not exist")
        if not root.is_dir():
            raise UserError(f"{root} is not a directory; expected a run directory or a parent of runs")
        candidates = {p.parent for p in root.rglob("run.json") if not _hidden(p.parent, root)}
        partial = {p.parent for p in root.rglob("episodes.parquet")
                   if not _hidden(p.parent, root) and not (p.parent / "run.json").exists()}
        if (root / "run.json").exists():
            candidates.add(root)
        for run_dir in sorted(partial):
            warnings.warn(f"skipping {run_dir}: no run.json (the run is unfinished or was killed)",
                          SkippedRunWarning, stacklevel=2)
        for run_dir in sorted(candidates):
            status = _read_json(run_dir / "run.json").get("status")
            if status != "complete":
                warnings.warn(f"skipping {run_dir}: run.json status is {status!r}, not 'complete'",
                              SkippedRunWarning, stacklevel=2)
                continue
            found.setdefault(_display_path(run_dir), None)
    return list(found)


def _display_path(path: Path) -> Path:
    """``path`` relative to the working directory when inside it (summaries stay portable
    between checkouts), else absolute."""
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    return resolved.relative_to(cwd) if resolved.is_relative_to(cwd) else resolved


# --------------------------------------------------------------------------- per run
def _read_episodes(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} is missing; a complete run must have episodes.parquet")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise UserError(f"{path} is not a readable Parquet file ({err})") from None
    missing = [c for c in EPISODE_COLUMNS_NEEDED if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks columns {', '.join(missing)}; expected the episodes table "
                        "of docs/contracts.md")
    frame = frame.sort_values("episode", kind="stable").reset_index(drop=True)
    return frame


def final_return(returns: np.ndarray) -> float:
    """Mean of the last ``max(1, n // 10)`` of n episode returns (shape (n,)); NaN without episodes.

    >>> final_return(np.array([0.0, 10.0, 20.0]))
    20.0
    """
    n = len(returns)
    if n == 0:
        return math.nan
    return float(np.mean(returns[n - max(1, n // FINAL_DIVISOR):]))


def mean_return(returns: np.ndarray) -> float:
    """Mean of all n episode returns (shape (n,)): the area under the learning curve per episode,
    a less noisy summary of a run than its final return. NaN without episodes.

    >>> mean_return(np.array([0.0, 10.0, 20.0]))
    10.0
    """
    return float(np.mean(returns)) if len(returns) else math.nan


def run_row(run_dir: Path, info: dict, episodes: pd.DataFrame) -> dict:
    """One row of runs.parquet from a run's ``run.json`` (as a dict) and its episodes table."""
    def need(mapping: dict, key: str, where: str):
        if not isinstance(mapping, dict) or key not in mapping:
            raise UserError(f"{run_dir / 'run.json'} lacks {where}{key}; expected the run.json "
                            "of docs/contracts.md")
        return mapping[key]

    config = need(info, "config", "")
    totals = need(info, "totals", "")
    meta = info.get("meta") or {}
    provenance = info.get("provenance") or {}
    variant = str(need(config, "variant", "config."))
    threshold = info.get("reward_threshold")
    threshold = math.nan if threshold is None else float(threshold)

    returns = episodes["return"].to_numpy(dtype=float)
    total_steps = int(need(totals, "env_steps", "totals."))
    total_episodes = int(need(totals, "episodes", "totals."))
    solved = info.get("solved")
    if solved:
        steps, eps, censored = float(solved["env_steps"]), float(solved["episode"]) + 1, False
    else:
        steps, eps, censored = float(total_steps), float(total_episodes), True
    # the last-100 rule as the trainer judged it (pgbench.runs.log.record_episode, the one copy)
    solved100 = info.get("solved_last100")
    if solved100:
        steps100, eps100, censored100 = (float(solved100["env_steps"]),
                                         float(solved100["episode"]) + 1, False)
    else:  # censoring time is the run's length, as for the running-reward rule
        steps100, eps100, censored100 = float(total_steps), float(total_episodes), True
    # optimiser steps on the acting network: the total, and taken before each rule fired
    # (censored at the total, as env steps are); NaN for a trainer that does not count them
    grad_total = totals.get("gradient_steps")
    grad_total = math.nan if grad_total is None else float(grad_total)

    def grad_steps_at(point):
        if not point:
            return grad_total
        return float(point["gradient_steps"]) if "gradient_steps" in point else math.nan

    episodes_path = run_dir / "episodes.parquet"
    return {
        "suite": str(meta.get("suite") or ADHOC_SUITE),
        "env": str(need(config, "env_id", "config.")),
        "variant": variant,
        "arm": str(meta.get("arm") or variant),
        "setting": setting_label(meta.get("setting")),
        "seed": int(need(config, "seed", "config.")),
        "config_hash": str(info.get("config_hash", "")),
        "run_hash": str(info.get("run_hash", "")),
        "stop_reason": str(info.get("stop_reason") or ""),
        "threshold": threshold,
        "budget_steps": int(config.get("total_steps", -1)),
        "engine": str(config.get("engine", "torch")),  # runs from before engines were torch's
        "env_steps": total_steps,
        "episodes": total_episodes,
        "updates": int(totals.get("updates", 0)),
        "final_return": final_return(returns),
        "mean_return": mean_return(returns),
        "steps_to_threshold": steps,
        "episodes_to_threshold": eps,
        "censored": censored,
        "steps_to_threshold_last100": steps100,
        "episodes_to_threshold_last100": eps100,
        "censored_last100": censored100,
        "gradient_steps": grad_total,
        "gradient_steps_to_threshold": grad_steps_at(solved),
        "gradient_steps_to_threshold_last100": grad_steps_at(solved100),
        # the trainer already records each run's share of its job's time (job time / seeds)
        "wall_s": float(provenance.get("elapsed_s", math.nan)),
        "cpu_s": float(provenance.get("cpu_s", math.nan)),
        "run_dir": str(run_dir),
        "episodes_sha256": hashlib.sha256(episodes_path.read_bytes()).hexdigest(),
        "packages": json.dumps(provenance.get("packages", {}), sort_keys=True),
        "platform": platform_fingerprint(provenance),
        "git_commit": str(provenance.get("git_commit") or ""),
    }
