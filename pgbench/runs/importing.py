"""``pgbench import``: results made elsewhere, written as pgbench run directories.

Another library's training runs become run directories of docs/contracts.md, so ``pgbench
aggregate``, ``claims``, ``report`` and ``check`` work on them unchanged. Formats:

- ``tidy``: a CSV or Parquet table, one row per finished episode, with columns ``seed`` (or
  ``run``: any label; runs are then numbered 0.. in order of first appearance), ``env_steps``
  (the run's cumulative env steps when the episode ended) and ``return``; optional ``length``
  (else the difference of ``env_steps``), ``env`` and ``variant`` (else ``--env`` /
  ``--variant``). Rows of one run are taken in ``env_steps`` order.
- ``monitor``: Stable-Baselines3 ``Monitor`` CSV files (a ``#{json}`` first line, then
  ``r,l,t``: return, length, seconds since the start). Files in one directory are one run (the
  sub-envs of a vector env) and are merged by ``t``; each directory is a seed, numbered 0.. in
  sorted order of the directories.
- TensorBoard event files are not read: the reader lives in the ``tensorboard`` package (with
  grpcio, protobuf and a web server) or needs protobuf and the TFRecord format re-implemented;
  neither is light. Export the episode-return scalars to CSV (TensorBoard's download button, or
  ``tbparse``) and import them as ``tidy``.

An imported run records where it came from (``provenance.source``); its config holds what is
known (env, variant, seed, the step budget, ``engine: imported``; one pseudo-update per
episode, as the source's updates are unknown), and its platform fingerprint
is unknown, so ``pgbench check`` always tests it (never ``identical``). The running reward and
both "solved" rules are computed as the trainer computes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pgbench.core.errors import UserError, choice_error
from pgbench.core.io import replace_dir_atomic, staging_dir, write_json_atomic, write_parquet_atomic

FORMATS = ("tidy", "monitor")


#: Tidy columns: required, and optional ones.
TIDY_REQUIRED = ("env_steps", "return")


TIDY_OPTIONAL = ("length", "env", "variant")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; UserError when it is neither."""
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise UserError(f"{path} not found; expected a CSV or Parquet file") from None
    except Exception as err:  # pandas and pyarrow raise many types for unreadable files
        raise UserError(f"{path} is not a readable CSV or Parquet table ({err})") from None


def tidy_runs(frame: pd.DataFrame, source: str, env: str | None,
              variant: str | None) -> list[dict]:
    """Runs of a tidy table: ``[{"env", "variant", "seed", "label", "episodes": frame}]``.

    Each run's episodes frame has columns ``env_steps`` (int64), ``return``, ``length``.
    """
    key = "seed" if "seed" in frame else "run" if "run" in frame else None
    missing = [c for c in TIDY_REQUIRED if c not in frame] + ([] if key else ["seed or run"])
    if missing:
        raise UserError(f"{source} lacks columns {', '.join(missing)}; a tidy table needs "
                        f"seed (or run), {', '.join(TIDY_REQUIRED)} and may have "
                        f"{', '.join(TIDY_OPTIONAL)}")
    for name, given in (("env", env), ("variant", variant)):
        if name not in frame and not given:
            raise UserError(f"{source} has no {name} column; pass --{name}")
    frame = frame.copy()
    if env and "env" not in frame:
        frame["env"] = env
    if variant and "variant" not in frame:
        frame["variant"] = variant
    labels = list(dict.fromkeys(frame[key].tolist()))
    if key == "seed":
        try:
            seeds = {label: int(label) for label in labels}
        except (TypeError, ValueError):
            raise UserError(f"{source}: seed must be integers, got {labels[:3]}; name the "
                            "column run to have runs numbered instead") from None
    else:
        seeds = {label: i for i, label in enumerate(labels)}
    runs = []
    for (env_id, name, label), rows in frame.groupby(["env", "variant", key], sort=False):
        rows = rows.sort_values("env_steps", kind="stable")
        steps = _numbers(rows["env_steps"], "env_steps", source).astype(np.int64)
        lengths = (_numbers(rows["length"], "length", source).astype(np.int64)
                   if "length" in rows else np.diff(steps, prepend=0))
        runs.append({"env": str(env_id), "variant": str(name), "seed": seeds[label],
                     "label": str(label), "episodes": pd.DataFrame({
                         "env_steps": steps, "return": _numbers(rows["return"], "return", source),
                         "length": lengths})})
    return runs


def _numbers(column: pd.Series, name: str, source: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(float)
    if not np.isfinite(values).all():
        raise UserError(f"{source}: column {name} has a value that is not a finite number; "
                        "expected numbers in every row")
    return values


def read_monitor(path: Path) -> tuple[dict, pd.DataFrame]:
    """One SB3 Monitor file: (its header JSON, frame with columns r, l, t)."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
            header = json.loads(first[1:]) if first.startswith("#") else None
            frame = pd.read_csv(handle)
    except FileNotFoundError:
        raise UserError(f"{path} not found; expected an SB3 Monitor CSV file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UserError(f"{path} is not an SB3 Monitor file ({err})") from None
    if not isinstance(header, dict) or not {"r", "l", "t"} <= set(frame.columns):
        raise UserError(f"{path} is not an SB3 Monitor file: expected a '#{{...}}' JSON first "
                        "line and the columns r, l, t")
    return header, frame


def monitor_runs(paths: list[Path], env: str | None, variant: str | None) -> list[dict]:
    """Runs of SB3 Monitor files: one run per directory, seeds 0.. in sorted directory order."""
    if not variant:
        raise UserError("Monitor files do not name the algorithm; pass --variant")
    by_dir: dict[Path, list[Path]] = {}
    for path in paths:
        by_dir.setdefault(path.parent, []).append(path)
    runs = []
    for seed, directory in enumerate(sorted(by_dir)):
        parts, env_ids = [], set()
        for path in sorted(by_dir[directory]):
            header, frame = read_monitor(path)
            env_ids.add(header.get("env_id"))
            parts.append(frame[["r", "l", "t"]])
        env_id = env or next(iter(env_ids - {None}), None)
        if not env_id:
            raise UserError(f"{directory}: the Monitor files name no env_id; pass --env")
        merged = pd.concat(parts, ignore_index=True).sort_values("t", kind="stable")
        lengths = _numbers(merged["l"], "l", str(directory)).astype(np.int64)
        runs.append({"env": str(env_id), "variant": variant, "seed": seed,
                     "label": str(directory), "episodes": pd.DataFrame({
                         "env_steps": np.cumsum(lengths),
                         "return": _numbers(merged["r"], "r", str(directory)),
                         "length": lengths})})
    return runs


def _threshold(env_id: str, given: float | None) -> float | None:
    if given is not None:
        return given
    import gymnasium as gym

    try:
        return gym.spec(env_id).reward_threshold
    except Exception:  # not a Gymnasium id: no threshold unless given
        return None


def write_imported_run(out_dir: Path, run: dict, *, suite: str, threshold: float | None,
                       source: str) -> None:
    """Write one imported run as a run directory (docs/contracts.md), atomically."""
    from pgbench.runs.log import SeedLog, record_episode
    from pgbench.runs.store import episodes_frame, updates_frame

    episodes = run["episodes"]
    log = SeedLog(seed=run["seed"])
    for ret, length in zip(episodes["return"].tolist(), episodes["length"].tolist()):
        record_episode(log, float(ret), int(length), False, False, threshold)
        log.updates = log.episodes  # the source's updates are unknown: one per episode
    # the source's own step counts, not the sum of lengths (they differ when sub-envs overlap)
    steps = [int(s) for s in episodes["env_steps"].tolist()]
    rows = [(row[0], row[1], s, *row[3:]) for row, s in zip(log.episode_rows, steps)]
    log.episode_rows = rows
    for solved in (log.solved, log.solved_last100):
        if solved is not None:
            solved["env_steps"] = steps[solved["episode"]]
    total = int(episodes["env_steps"].iloc[-1]) if len(episodes) else 0
    config = {"env_id": run["env"], "variant": run["variant"], "engine": "imported",
              "total_steps": total, "source": source}
    meta = {"suite": suite, "arm": run["variant"], "setting": {},
            "command": f"pgbench import {source}", "label": run["label"]}
    digest = lambda c: hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:16]
    stage = staging_dir(out_dir)
    try:
        write_parquet_atomic(stage / "episodes.parquet", episodes_frame(log))
        write_parquet_atomic(stage / "updates.parquet", updates_frame(SeedLog(seed=0)))
        write_json_atomic(stage / "run.json", {
            "schema": 1, "config": {**config, "seed": run["seed"]},
            "config_hash": digest(config), "run_hash": digest({**config, "seed": run["seed"]}),
            "meta": meta, "status": "complete", "stop_reason": "budget",
            "reward_threshold": threshold, "solved": log.solved,
            "solved_last100": log.solved_last100,
            "totals": {"env_steps": total, "episodes": len(rows), "updates": len(rows)},
            "provenance": {"source": source, "label": run["label"],
                           "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "packages": {}},
        })
        replace_dir_atomic(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def import_runs(paths: list[Path], *, fmt: str, out: Path, suite: str, env: str | None = None,
                variant: str | None = None, threshold: float | None = None) -> list[Path]:
    """Import ``paths`` in format ``fmt``; returns the run directories written under ``out``
    (``out/<suite>/<env>/<variant>/seed<k>``). Refuses to replace an existing run directory."""
    if fmt not in FORMATS:
        raise choice_error("format", fmt, FORMATS)
    if fmt == "tidy":
        runs = []
        for path in paths:
            runs += tidy_runs(read_table(path), str(path), env, variant)
    else:
        runs = monitor_runs(paths, env, variant)
    if not runs:
        raise UserError(f"no episodes in {', '.join(map(str, paths))}")
    targets = [out / suite / r["env"] / r["variant"] / f"seed{r['seed']}" for r in runs]
    if len(set(targets)) != len(targets):
        raise UserError("two runs map to the same (env, variant, seed); give each run its own "
                        "seed")
    for target in targets:
        if target.exists():
            raise UserError(f"{target} exists; pgbench import never replaces a run directory "
                            "(choose another --out or remove it yourself)")
    source = " ".join(str(p) for p in paths)
    for run, target in zip(runs, targets):
        write_imported_run(target, run, suite=suite, source=source,
                           threshold=_threshold(run["env"], threshold))
    return targets


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Turn results made elsewhere into pgbench run directories, for "
                          "`pgbench aggregate`, `claims`, `report` and `check`. See "
                          "docs/check.md (Importing other libraries' results).")
    parser.add_argument("paths", nargs="+", metavar="FILE",
                        help="tidy CSV/Parquet tables, or SB3 Monitor CSV files")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, required=True,
                        help="tidy: one row per episode (seed or run, env_steps, return); "
                        "monitor: Stable-Baselines3 Monitor files, one directory per run")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where the run directories go (DIR/SUITE/ENV/VARIANT/seedK)")
    parser.add_argument("--suite", default="imported", help="suite name of the runs "
                        "(default: imported)")
    parser.add_argument("--env", help="env id when the files do not name it")
    parser.add_argument("--variant", help="algorithm / variant name when the files do not "
                              "name it")
    parser.add_argument("--threshold", type=float, help="reward threshold of 'solved' "
                        "(default: the Gymnasium env's, if any)")


def run(args: argparse.Namespace) -> int:
    targets = import_runs([Path(p) for p in args.paths], fmt=args.fmt, out=Path(args.out),
                          suite=args.suite, env=args.env, variant=args.variant,
                          threshold=args.threshold)
    print(f"pgbench import: wrote {len(targets)} runs under {args.out}")
    return 0
