"""The one reader of a summary directory: every table checked against its contract
(:mod:`pgbench.core.contracts`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pgbench.core.contracts import (
    CLAIMS_REQUIRED,
    COMPUTE_REQUIRED,
    CURVES_REQUIRED,
    GRADSTUDY_REQUIRED,
    PAIRS_REQUIRED,
    RUNS_REQUIRED,
    VERDICTS,
)
from pgbench.core.errors import UserError
from pgbench.core.io import read_json_object


@dataclass(frozen=True)
class Summary:
    """The tables of one summary directory. Optional tables are ``None`` when absent."""

    path: Path
    runs: pd.DataFrame
    curves: pd.DataFrame
    compute: pd.DataFrame
    provenance: dict[str, Any]
    claims: pd.DataFrame | None
    gradstudy: pd.DataFrame | None
    gradstudy_pairs: pd.DataFrame | None


def _read_parquet(path: Path, columns: Iterable[str], *, required: bool = True,
                  allow_empty: bool = False) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise UserError(f"summary table {path} is missing; run `pgbench aggregate` to write it")
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for truncated or foreign files
        raise UserError(f"cannot read summary table {path}: {err}") from err
    if allow_empty and frame.empty:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"summary table {path} lacks column(s) {', '.join(missing)} "
                        f"(see docs/contracts.md); it has: {', '.join(map(str, frame.columns))}")
    return frame


def load_summary(summary_dir: str | os.PathLike) -> Summary:
    """Read a summary directory written by ``pgbench aggregate`` (and ``pgbench claims``).

    ``runs.parquet``, ``curves.parquet`` and ``provenance.json`` are required; ``compute.parquet``
    may be absent or empty; ``claims.parquet`` and ``gradstudy*.parquet`` are optional. Raises
    :class:`UserError` naming the path for a missing or unreadable file or a missing column.
    """
    root = Path(summary_dir)
    if not root.is_dir():
        raise UserError(f"summary directory {root} does not exist; pass the --out directory of "
                        f"`pgbench aggregate`")
    runs = _read_parquet(root / "runs.parquet", RUNS_REQUIRED)
    if runs.empty:
        raise UserError(f"summary table {root / 'runs.parquet'} has no runs")
    curves = _read_parquet(root / "curves.parquet", CURVES_REQUIRED)
    compute = _read_parquet(root / "compute.parquet", COMPUTE_REQUIRED, required=False,
                            allow_empty=True)
    prov_path = root / "provenance.json"
    if not prov_path.is_file():
        raise UserError(f"{prov_path} is missing; run `pgbench aggregate` to write it")
    provenance = read_json_object(prov_path, "the provenance.json of `pgbench aggregate`")
    claims = _read_parquet(root / "claims.parquet", CLAIMS_REQUIRED, required=False)
    if claims is not None:
        bad = sorted(set(claims["verdict"].astype(str)) - set(VERDICTS))
        if bad:
            raise UserError(f"{root / 'claims.parquet'} has unknown verdict(s) {', '.join(map(repr, bad))}; "
                            f"accepted: {', '.join(VERDICTS)}")
    gradstudy = _read_parquet(root / "gradstudy.parquet", GRADSTUDY_REQUIRED, required=False)
    pairs = _read_parquet(root / "gradstudy_pairs.parquet", PAIRS_REQUIRED, required=False)
    return Summary(root, runs, curves, compute if compute is not None else pd.DataFrame(),
                   provenance, claims, gradstudy if gradstudy is not None and not gradstudy.empty
                   else None, pairs)
