"""``pgbench aggregate``: run directories -> SUMMARY/{runs,curves,compute}.parquet and
provenance.json (the rules are in the package docstring).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from pgbench.analysis.compute import compute_table
from pgbench.analysis.curves import curves_table
from pgbench.analysis.runs import (
    SkippedRunWarning,
    _hidden,
    _read_episodes,
    _read_json,
    _typed,
    find_run_dirs,
    run_row,
)
from pgbench.core.contracts import RUNS_COLUMNS
from pgbench.core.errors import UserError
from pgbench.core.io import write_json_atomic, write_parquet_atomic


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
    from pgbench.core.provenance import machine_info

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


def run_dirs_of_specs(spec_paths) -> list[str]:
    """The run directories the `pgbench train-job` specs at ``spec_paths`` plan: each arm's
    ``out`` with ``{seed}`` replaced by each of its seeds, in the specs' order.

    The workflow names its jobs' specs instead of every run directory: a command line listing
    thousands of runs would pass the kernel's limit on one argument (128 KiB), which the shell
    command of a large config reaches. UserError names a spec that cannot be read or lacks arms.
    """
    import json

    dirs = []
    for path in spec_paths:
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
            arms = spec["arms"]
            dirs += [str(arm["out"]).replace("{seed}", str(int(seed)))
                     for arm in arms for seed in arm["seeds"]]
        except OSError as err:
            raise UserError(f"cannot read the spec {path} ({err.strerror})") from None
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path} is not a `pgbench train-job` spec ({type(err).__name__}: "
                            f"{err}); expected a JSON object with arms, each with out and "
                            "seeds") from None
    return dirs


# --------------------------------------------------------------------------- command line
def configure_parser(parser) -> None:
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="run directories, or directories searched recursively for runs "
                             "(run.json with status complete)")
    parser.add_argument("--specs", nargs="+", metavar="SPEC",
                        help="`pgbench train-job` spec files: every run they plan (each arm's "
                             "out, for each of its seeds) is aggregated, as if listed")
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
    from pgbench.core.outputs import SUMMARY, check_dir, own_entries

    out = Path(args.out)
    check_dir(out, SUMMARY, force=args.force)
    run_dirs = [*args.run_dirs, *run_dirs_of_specs(args.specs or [])]
    if not run_dirs:
        raise UserError("no runs to aggregate; give run directories, or --specs with the "
                        "train-job specs that planned them")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRunWarning)
        tables = aggregate_runs(run_dirs, benchmarks=args.benchmarks)
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
    command = " ".join(["pgbench", "aggregate", *map(str, args.run_dirs),
                        *(["--specs", *map(str, args.specs)] if args.specs else []), "--out", str(out),
                        *(["--benchmarks", *map(str, args.benchmarks)] if args.benchmarks else []),
                        *(["--gradstudy", str(args.gradstudy)] if args.gradstudy else [])])
    write_json_atomic(out / "provenance.json", summary_provenance(tables["runs"], command))
    runs = tables["runs"]
    print(f"pgbench aggregate: {len(runs)} runs ({runs['censored'].sum()} censored) in "
          f"{runs.groupby(['suite', 'env', 'variant', 'setting']).ngroups} groups -> {out}"
          + (f"; copied {', '.join(copied)}" if copied else ""))
    return 0
