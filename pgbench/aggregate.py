"""``pgbench aggregate``: many run directories -> the tidy summary tables of docs/contracts.md.

Reads every complete run under the given directories and writes, each file atomically, into
SUMMARY: ``runs.parquet`` (one row per run), ``curves.parquet`` (learning curves on a common
env-step grid), ``compute.parquet`` (one row per Snakemake job, from its ``benchmark:`` file),
``provenance.json``, and copies of the gradient-study tables given with ``--gradstudy``.

Rules that the contract leaves to this module (documented here, checked in tests):
- A directory is a run when it holds a ``run.json`` whose status is ``complete``. Directories
  with another status, or with episode files but no ``run.json`` (a run still going or killed),
  are skipped with a ``SkippedRunWarning``. Hidden directories (names starting with ``.``) are
  never searched: they are the staging directories of atomic writes.
- The same run (same ``run_hash``) found in two places is counted once (the first path in sorted
  order), with a warning; two copies would double its weight in every statistic.
- ``final_return``: mean return of the last ``max(1, n // 10)`` of the run's n episodes.
- ``episodes_to_threshold`` counts episodes (the 0-based ``solved.episode`` index + 1).
- The plain rule needs a full window: the first episode i >= 99 (0-based) at which the mean
  return of episodes i-99..i is >= the threshold.
- A run without ``meta.suite`` (``pgbench train`` run by hand) gets suite ``adhoc``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pgbench.errors import UserError
from pgbench.fingerprint import platform_fingerprint
from pgbench.io import read_json_object, write_json_atomic, write_parquet_atomic

#: Learning-curve grid points per (suite, env).
GRID_POINTS = 200
#: Episodes averaged at each curve point.
CURVE_WINDOW = 10
#: Episodes averaged by the plain threshold rule.
PLAIN_RULE_WINDOW = 100
#: The final return averages a run's last n // FINAL_DIVISOR episodes (its last 10%).
FINAL_DIVISOR = 10
#: Suite of runs whose run.json names none.
ADHOC_SUITE = "adhoc"

#: Column -> dtype of each table, in contract order.
RUNS_COLUMNS: dict[str, str] = {
    "suite": "str", "env": "str", "variant": "str", "arm": "str", "setting": "str",
    "seed": "int64", "config_hash": "str", "run_hash": "str", "stop_reason": "str",
    "threshold": "float64", "budget_steps": "int64", "engine": "str",
    "env_steps": "int64", "episodes": "int64", "updates": "int64",
    "final_return": "float64", "mean_return": "float64",
    "steps_to_threshold": "float64", "episodes_to_threshold": "float64", "censored": "bool",
    "steps_to_threshold_last100": "float64", "episodes_to_threshold_last100": "float64",
    "censored_last100": "bool",
    "wall_s": "float64", "cpu_s": "float64", "run_dir": "str", "episodes_sha256": "str",
    "packages": "str", "platform": "str",
}
CURVES_COLUMNS: dict[str, str] = {
    "suite": "str", "env": "str", "variant": "str", "arm": "str", "setting": "str",
    "seed": "int64", "env_steps": "int64", "return": "float64", "carried": "bool",
}
COMPUTE_COLUMNS: dict[str, str] = {
    "rule": "str", "suite": "str", "env": "str", "arm": "str", "seeds": "str",
    "s": "float64", "cpu_time": "float64", "max_rss": "float64",
    "env_steps": "Int64", "steps_per_s": "float64",
}
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


def plain_rule_crossing(returns: np.ndarray, env_steps: np.ndarray, threshold: float,
                        window: int = PLAIN_RULE_WINDOW) -> tuple[float, float, bool]:
    """(steps, episodes, censored) of the first episode whose trailing ``window``-episode mean
    return is >= ``threshold``. Shapes (n,). When never: (total steps, n, True).

    Only full windows count: with fewer than ``window`` episodes the rule cannot fire, otherwise
    a lucky first episode would "solve" the task.
    """
    n = len(returns)
    total_steps = float(env_steps[-1]) if n else 0.0
    if n >= window and threshold is not None and math.isfinite(threshold):
        csum = np.concatenate([[0.0], np.cumsum(returns, dtype=float)])
        trailing_sum = csum[window:] - csum[:-window]  # entry j: episodes j .. j+window-1
        # compare sums, not means, so a mean of exactly the threshold is not lost to rounding
        hits = np.flatnonzero(trailing_sum >= window * threshold - 1e-9)
        if hits.size:
            i = hits[0] + window - 1
            return float(env_steps[i]), float(i + 1), False
    return total_steps, float(n), True


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
    env_steps = episodes["env_steps"].to_numpy(dtype=np.int64)
    total_steps = int(need(totals, "env_steps", "totals."))
    total_episodes = int(need(totals, "episodes", "totals."))
    solved = info.get("solved")
    if solved:
        steps, eps, censored = float(solved["env_steps"]), float(solved["episode"]) + 1, False
    else:
        steps, eps, censored = float(total_steps), float(total_episodes), True
    steps100, eps100, censored100 = plain_rule_crossing(returns, env_steps, threshold)
    if censored100:  # censoring time is the run's length, as for the running-reward rule
        steps100, eps100 = float(total_steps), float(total_episodes)
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
        # the trainer already records each run's share of its job's time (job time / seeds)
        "wall_s": float(provenance.get("elapsed_s", math.nan)),
        "cpu_s": float(provenance.get("cpu_s", math.nan)),
        "run_dir": str(run_dir),
        "episodes_sha256": hashlib.sha256(episodes_path.read_bytes()).hexdigest(),
        "packages": json.dumps(provenance.get("packages", {}), sort_keys=True),
        "platform": platform_fingerprint(provenance),
    }


# --------------------------------------------------------------------------- curves
def step_grid(max_env_steps: int, points: int = GRID_POINTS) -> np.ndarray:
    """``points`` evenly spaced env-step counts from 0 to ``max_env_steps``, int64, shape (points,)."""
    return np.rint(np.linspace(0, max_env_steps, points)).astype(np.int64)


def learning_curve(env_steps: np.ndarray, returns: np.ndarray, grid: np.ndarray,
                   carry_forward: bool, window: int = CURVE_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """One run's curve on ``grid``: (values, carried), both shape (len(grid),).

    env_steps, returns: (n,) per finished episode, in order. The value at x is the mean return of
    the (up to) ``window`` latest episodes finished at or before x; NaN before the first episode.
    After the last episode the last value is carried forward (and marked) if ``carry_forward``
    (the run stopped because it solved), else NaN (nothing was measured past the budget).

    Example: episodes ending at steps [10, 30, 60] with returns [10, 20, 30], grid [0, 10, 45, 70],
    no carry: values [nan, 10, 15, nan].
    """
    n = len(returns)
    values = np.full(grid.shape, np.nan)
    carried = np.zeros(grid.shape, dtype=bool)
    if n == 0:
        return values, carried
    csum = np.concatenate([[0.0], np.cumsum(returns, dtype=float)])
    ends = np.arange(1, n + 1)
    starts = np.maximum(0, ends - window)
    trailing_mean = (csum[ends] - csum[starts]) / (ends - starts)
    latest = np.searchsorted(env_steps, grid, side="right") - 1  # last episode done at or before x
    measured = latest >= 0
    values[measured] = trailing_mean[latest[measured]]
    after_last = grid > env_steps[-1]
    if carry_forward:
        carried = after_last
    else:
        values[after_last] = np.nan
    return values, carried


def curves_table(runs: pd.DataFrame, episodes_by_run: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """curves.parquet from the runs table and each run's episodes (keyed by ``run_dir``).

    The grid of a (suite, env) ends at the largest episode env_steps of its runs, so the last
    grid point is measured by at least one run.
    """
    frames = []
    keys = ["suite", "env", "variant", "arm", "setting", "seed"]
    for _, group in runs.groupby(["suite", "env"], sort=True):
        ends = [int(episodes_by_run[d]["env_steps"].iloc[-1])
                for d in group["run_dir"] if len(episodes_by_run[d])]
        grid = step_grid(max(ends, default=0))
        for row in group.itertuples(index=False):
            eps = episodes_by_run[row.run_dir]
            values, carried = learning_curve(eps["env_steps"].to_numpy(dtype=np.int64),
                                             eps["return"].to_numpy(dtype=float), grid,
                                             carry_forward=row.stop_reason == "solved")
            part = pd.DataFrame({k: getattr(row, k) for k in keys}, index=range(len(grid)))
            part["env_steps"], part["return"], part["carried"] = grid, values, carried
            frames.append(part)
    if not frames:
        return _typed([], CURVES_COLUMNS)
    return pd.concat(frames, ignore_index=True)[list(CURVES_COLUMNS)].astype(CURVES_COLUMNS)


# --------------------------------------------------------------------------- compute
def _benchmark_identity(path: Path, root: Path) -> dict:
    """rule/suite/env/arm/block from a benchmark file path.

    Training jobs write ``.../train/<suite>/<env>/block<k>.tsv`` (every arm of the env: arm
    empty); results made before jobs trained every arm have ``.../train/<suite>/<env>/<arm>/
    block<k>.tsv``. Other rules' files give the rule (the first folder under ``root``, or the
    file's stem) and, as ``<rule>/<env>.tsv`` (the gradient study), the env.
    """
    parts = path.relative_to(root).with_suffix("").parts
    full = path.with_suffix("").parts
    if "train" in full:
        i = len(full) - 1 - full[::-1].index("train")
        rest = full[i + 1:]
        if len(rest) in (3, 4) and rest[-1].startswith("block"):
            arm = rest[2] if len(rest) == 4 else ""
            return {"rule": "train", "suite": rest[0], "env": rest[1], "arm": arm, "block": rest[-1]}
    rule = parts[0] if len(parts) > 1 else path.stem
    env = parts[1] if len(parts) == 2 else ""
    return {"rule": rule, "suite": "", "env": env, "arm": "", "block": ""}


def _job_seeds(runs: pd.DataFrame, suite: str, env: str, arm: str, block: str) -> tuple[str, float]:
    """(seeds, env_steps) of a training job: its block's seeds and the env steps of its runs.

    Runs record ``provenance.seed_group``, the seeds trained in one job. The groups of the job's
    runs (every arm of the (suite, env), or the one ``arm`` given), less those inside a larger
    group (a rerun of a killed job trains only the seeds left), sorted by their first seed, are
    taken to be blocks 0, 1, ...; env_steps sums every run of the block's seeds. When the block
    cannot be matched the seeds column keeps the block id and env_steps is missing.
    """
    mine = runs[(runs["suite"] == suite) & (runs["env"] == env)]
    if arm:
        mine = mine[mine["arm"] == arm]
    groups = {frozenset(g) for g in mine["seed_group"] if g}
    blocks = sorted((g for g in groups if not any(g < other for other in groups)),
                    key=lambda g: (min(g), sorted(g)))
    try:
        k = int(block.removeprefix("block"))
    except ValueError:
        k = -1
    if not 0 <= k < len(blocks):
        return block, math.nan
    seeds = sorted(blocks[k])
    steps = mine.loc[mine["seed"].isin(seeds), "env_steps"]
    complete = len(steps) == len(seeds) * mine["arm"].nunique()
    return ",".join(str(s) for s in seeds), float(steps.sum()) if complete else math.nan


def _benchmark_files(benchmarks) -> list[tuple[Path, Path]]:
    """(file, root) of each benchmark TSV: every file under a directory (identified relative to
    it), and each file given as such (read as ``<rule>/<env>.tsv`` or
    ``train/<suite>/<env>/block<k>.tsv``). A file that does not exist is skipped with a warning
    (the workflow lists the jobs it planned; one may have been deleted); a missing directory is
    an error."""
    out = []
    for given in [benchmarks] if isinstance(benchmarks, (str, Path)) else list(benchmarks):
        path = Path(given)
        if path.is_dir():
            out += [(p, path) for p in sorted(path.rglob("*.tsv")) if not _hidden(p, path)]
        elif path.suffix == ".tsv":
            if path.exists():
                out.append((path, path.parent.parent))
            else:
                warnings.warn(SkippedRunWarning(f"no benchmark file {path}; its job is left out "
                                                "of compute.parquet"))
        elif not path.exists():
            raise UserError(f"benchmarks directory {path} does not exist")
        else:
            raise UserError(f"benchmarks {path} is neither a directory nor a .tsv file; "
                            "accepted: a benchmark directory or Snakemake benchmark .tsv files")
    return out


def compute_table(benchmarks, runs: pd.DataFrame) -> pd.DataFrame:
    """compute.parquet from Snakemake ``benchmark:`` TSV files: ``benchmarks`` is a directory
    (every TSV under it), or a list of directories and files (see :func:`_benchmark_files`).

    ``runs`` needs a ``seed_group`` column (tuples) beside the runs-table columns. A benchmark
    file with several rows (``repeat``) contributes their mean. None -> empty table.
    """
    if benchmarks is None:
        return _typed([], COMPUTE_COLUMNS)
    rows = []
    for path, root in _benchmark_files(benchmarks):
        try:
            bench = pd.read_csv(path, sep="\t")
        except Exception as err:
            raise UserError(f"{path} is not a readable Snakemake benchmark TSV ({err})") from None
        if "s" not in bench.columns or bench.empty:
            raise UserError(f"{path} has no 's' column or no rows; expected a Snakemake benchmark file")
        ident = _benchmark_identity(path, root)

        def col(name):
            if name not in bench.columns:
                return math.nan
            return float(pd.to_numeric(bench[name], errors="coerce").mean())

        if ident["rule"] == "train":
            seeds, steps = _job_seeds(runs, ident["suite"], ident["env"], ident["arm"], ident["block"])
        else:
            seeds, steps = "", math.nan
        seconds = col("s")
        rows.append({**{k: ident[k] for k in ("rule", "suite", "env", "arm")}, "seeds": seeds,
                     "s": seconds, "cpu_time": col("cpu_time"), "max_rss": col("max_rss"),
                     "env_steps": None if math.isnan(steps) else int(steps),
                     "steps_per_s": steps / seconds if seconds > 0 else math.nan})
    return _typed(rows, COMPUTE_COLUMNS)


# --------------------------------------------------------------------------- everything
def aggregate_runs(run_dirs, benchmarks: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """The summary tables of the runs under ``run_dirs``: {"runs", "curves", "compute"}.

    ``run_dirs``: run directories or parents of run directories. Raises UserError when a path
    is missing, no complete run is found, or a run's files are unreadable.
    """
    run_dirs = [Path(p) for p in run_dirs]
    found = find_run_dirs(run_dirs)
    if not found:
        raise UserError("no complete runs (run.json with status 'complete') under "
                        + ", ".join(str(p) for p in run_dirs))
    rows, episodes_by_run, seen = [], {}, {}
    for run_dir in sorted(found):
        info = _read_json(run_dir / "run.json")
        run_hash = info.get("run_hash")
        if run_hash and run_hash in seen:
            warnings.warn(f"skipping {run_dir}: same run (run_hash {run_hash}) as {seen[run_hash]}",
                          SkippedRunWarning, stacklevel=2)
            continue
        seen[run_hash] = run_dir
        episodes = _read_episodes(run_dir / "episodes.parquet")
        row = run_row(run_dir, info, episodes)
        row["seed_group"] = tuple((info.get("provenance") or {}).get("seed_group") or ())
        rows.append(row)
        episodes_by_run[row["run_dir"]] = episodes
    with_groups = pd.DataFrame(rows)
    _refuse_two_configs_per_arm(with_groups)
    runs = _typed(rows, RUNS_COLUMNS).sort_values(
        ["suite", "env", "variant", "setting", "seed"], kind="stable").reset_index(drop=True)
    return {
        "runs": runs,
        "curves": curves_table(runs, episodes_by_run),
        "compute": compute_table(benchmarks, with_groups),
    }


def _refuse_two_configs_per_arm(rows: pd.DataFrame) -> None:
    """One run per (suite, env, variant, setting, seed): the report, claims and check compare
    arms by seed. Two runs there come from two configs given the same arm name (e.g. the same
    variant run with both engines, or two budgets, outside a suite)."""
    keys = ["suite", "env", "variant", "setting", "seed"]
    twice = rows[rows.duplicated(keys, keep=False)]
    if twice.empty:
        return
    first = twice.iloc[0]
    same = twice[(twice[keys] == first[keys]).all(axis=1)]
    a, b = (json.loads((Path(d) / "run.json").read_text())["config"] for d in same["run_dir"][:2])
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    raise UserError(
        f"more than one run for {first['suite']}/{first['env']}/{first['variant']} "
        f"({first['setting']}) seed {first['seed']}: {', '.join(same['run_dir'][:2])} (their "
        f"configs differ in {', '.join(differ) or 'nothing'}); accepted: one run per suite, env, "
        "variant, setting and seed. Aggregate them separately, or train them in a suite whose "
        "arms vary that setting")


def summary_provenance(runs: pd.DataFrame, command: str) -> dict:
    """provenance.json: where and with what the summary was made, and which configs it holds."""
    from pgbench.provenance import machine_info

    return {
        **machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_hashes": sorted(set(runs["config_hash"])),
        "n_runs": int(len(runs)),
        "command": command,
    }


def read_gradstudy(gradstudy_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The ``gradstudy*.parquet`` tables under ``gradstudy_dir``, by file name.

    Files with the same name in several folders (e.g. one per env) are concatenated, in sorted
    path order. UserError when the directory is missing, holds no such file, or one is unreadable.
    """
    root = Path(gradstudy_dir)
    if not root.is_dir():
        raise UserError(f"gradstudy directory {root} does not exist")
    by_name: dict[str, list[pd.DataFrame]] = {}
    for path in sorted(p for p in root.rglob("gradstudy*.parquet") if not _hidden(p, root)):
        try:
            by_name.setdefault(path.name, []).append(pd.read_parquet(path))
        except Exception as err:
            raise UserError(f"{path} is not a readable Parquet file ({err})") from None
    if not by_name:
        raise UserError(f"no gradstudy*.parquet files under {root}")
    return {name: pd.concat(frames, ignore_index=True) for name, frames in sorted(by_name.items())}


# --------------------------------------------------------------------------- command line
def configure_parser(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories, or directories searched recursively for runs "
                             "(run.json with status complete)")
    parser.add_argument("--out", required=True, metavar="SUMMARY",
                        help="summary directory to write runs/curves/compute.parquet and "
                             "provenance.json into")
    parser.add_argument("--benchmarks", metavar="PATH", nargs="+",
                        help="Snakemake benchmark directory (every TSV under it), or the jobs' "
                             "benchmark .tsv files: they become compute.parquet (empty without)")
    parser.add_argument("--gradstudy", metavar="DIR",
                        help="directory with gradstudy*.parquet tables to copy into SUMMARY")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing summary directory (never files pgbench did not "
                             "write)")


def run(args) -> int:
    from pgbench.outputs import SUMMARY, check_dir, own_entries

    out = Path(args.out)
    check_dir(out, SUMMARY, force=args.force)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRunWarning)
        tables = aggregate_runs(args.run_dirs, benchmarks=args.benchmarks)
    for w in caught:
        print(f"pgbench aggregate: warning: {w.message}", file=sys.stderr)
    # read everything before writing anything: bad input leaves an old summary as it was
    gradstudy = read_gradstudy(args.gradstudy) if args.gradstudy else {}
    written = {f"{name}.parquet" for name in tables} | set(gradstudy) | {"provenance.json"}
    for stale in own_entries(out, SUMMARY):  # e.g. the claims of the summary being replaced
        if stale.name not in written:
            stale.unlink()
    for name, frame in tables.items():
        write_parquet_atomic(out / f"{name}.parquet", frame)
    for file_name, frame in gradstudy.items():
        write_parquet_atomic(out / file_name, frame)
    copied = list(gradstudy)
    command = " ".join(["pgbench", "aggregate", *map(str, args.run_dirs), "--out", str(out),
                        *(["--benchmarks", *map(str, args.benchmarks)] if args.benchmarks else []),
                        *(["--gradstudy", str(args.gradstudy)] if args.gradstudy else [])])
    write_json_atomic(out / "provenance.json", summary_provenance(tables["runs"], command))
    runs = tables["runs"]
    print(f"pgbench aggregate: {len(runs)} runs ({runs['censored'].sum()} censored) in "
          f"{runs.groupby(['suite', 'env', 'variant', 'setting']).ngroups} groups -> {out}"
          + (f"; copied {', '.join(copied)}" if copied else ""))
    return 0
