"""What each Snakemake job cost (compute.parquet), from its ``benchmark:`` file.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd

from pgbench.analysis.runs import SkippedRunWarning, _hidden, _typed
from pgbench.core.contracts import COMPUTE_COLUMNS
from pgbench.core.errors import UserError


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
