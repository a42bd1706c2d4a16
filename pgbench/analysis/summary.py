"""The one reader of a summary directory: every table checked against its contract
(:mod:`pgbench.core.contracts`), each read once, when first asked for.

The report, the claims and the CI gate all read a summary through :class:`Summary` (or
:func:`read_table` for one table): one place decides what a missing, unreadable or incomplete
table says to the user.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
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


def read_table(summary_dir: str | os.PathLike, name: str, columns: Iterable[str] = (), *,
               required: bool = True, allow_empty: bool = True) -> pd.DataFrame | None:
    """``SUMMARY/<name>.parquet`` with at least ``columns``; None when it is absent and not
    ``required``. A missing, unreadable or empty (unless ``allow_empty``) table, or a missing
    column, raises :class:`UserError` naming the path. An empty table's columns are not checked."""
    path = Path(summary_dir) / f"{name}.parquet"
    if not path.is_file():
        if required:
            raise UserError(f"summary table {path} is missing; expected a summary directory "
                            f"written by `pgbench aggregate` (with {name}.parquet)")
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for truncated or foreign files
        raise UserError(f"cannot read summary table {path}: it is not a readable Parquet file "
                        f"({err})") from None
    if frame.empty:
        if not allow_empty:
            raise UserError(f"summary table {path} has no rows; expected at least one")
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"summary table {path} lacks column(s) {', '.join(missing)} "
                        f"(see docs/contracts.md); it has: {', '.join(map(str, frame.columns))}")
    return frame


class Summary:
    """The tables of one summary directory, each read and checked when first asked for.

    ``runs`` (at least one run), ``curves`` and ``provenance`` are required; ``compute`` may be
    absent (an empty frame); ``claims``, ``gradstudy`` and ``gradstudy_pairs`` are None when
    absent. :meth:`table` reads any other table by name.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"summary directory {self.path} does not exist; make it with "
                            "`pgbench aggregate RUN_DIRS --out SUMMARY`")
        self._tables: dict[str, pd.DataFrame | None] = {}

    def table(self, name: str, columns: Iterable[str] = (), *, required: bool = False,
              allow_empty: bool = True) -> pd.DataFrame | None:
        """SUMMARY/<name>.parquet (see :func:`read_table`), read once."""
        if name not in self._tables:
            self._tables[name] = read_table(self.path, name, columns, required=required,
                                            allow_empty=allow_empty)
        return self._tables[name]

    @functools.cached_property
    def runs(self) -> pd.DataFrame:
        return self.table("runs", RUNS_REQUIRED, required=True, allow_empty=False)

    @functools.cached_property
    def curves(self) -> pd.DataFrame:
        return self.table("curves", CURVES_REQUIRED, required=True)

    @functools.cached_property
    def compute(self) -> pd.DataFrame:
        compute = self.table("compute", COMPUTE_REQUIRED)
        return compute if compute is not None else pd.DataFrame()

    @functools.cached_property
    def provenance(self) -> dict[str, Any]:
        path = self.path / "provenance.json"
        if not path.is_file():
            raise UserError(f"{path} is missing; run `pgbench aggregate` to write it")
        return read_json_object(path, "the provenance.json of `pgbench aggregate`")

    @functools.cached_property
    def claims(self) -> pd.DataFrame | None:
        claims = self.table("claims", CLAIMS_REQUIRED)
        if claims is not None and not claims.empty:
            bad = sorted(set(claims["verdict"].astype(str)) - set(VERDICTS))
            if bad:
                raise UserError(f"{self.path / 'claims.parquet'} has unknown verdict(s) "
                                f"{', '.join(map(repr, bad))}; accepted: {', '.join(VERDICTS)}")
        return claims

    @functools.cached_property
    def gradstudy(self) -> pd.DataFrame | None:
        gradstudy = self.table("gradstudy", GRADSTUDY_REQUIRED)
        return gradstudy if gradstudy is not None and not gradstudy.empty else None

    @functools.cached_property
    def gradstudy_pairs(self) -> pd.DataFrame | None:
        return self.table("gradstudy_pairs", PAIRS_REQUIRED)


def load_summary(summary_dir: str | os.PathLike) -> Summary:
    """A :class:`Summary` whose required tables and optional ones have all been read and
    checked now (the report reads them all): errors surface before any work starts."""
    summary = Summary(summary_dir)
    for name in ("runs", "curves", "compute", "provenance", "claims", "gradstudy",
                 "gradstudy_pairs"):
        getattr(summary, name)
    return summary
