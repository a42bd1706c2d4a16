"""The committed reference: build it from a summary, read and validate it (its runs and its
gate settings).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from pgbench.analysis.summary import read_table
from pgbench.check.format import group_label
from pgbench.check.gate import (
    GATE_DEFAULTS,
    GROUP_KEYS,
    METRICS,
    OPTIONAL_RUN_COLUMNS,
    REFERENCE_ROW_FIELDS,
    REFERENCE_SCHEMA,
    RUN_COLUMNS,
)
from pgbench.core.errors import UserError, choice_error
from pgbench.core.fingerprint import UNKNOWN


def _canonical_packages(text: object, where: str) -> str:
    """Package versions as canonical JSON (sorted keys, no spaces) so equal sets compare equal."""
    try:
        packages = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        packages = None
    if not isinstance(packages, dict):
        raise UserError(f"{where}: packages must be a JSON object of package versions, "
                        f"got {str(text)[:60]!r}")
    return json.dumps(packages, sort_keys=True, separators=(",", ":"))


def _validate_runs(frame, source: str):
    """Checks shared by both sides: finite final returns, one row per (group, seed)."""
    bad = frame[~np.isfinite(frame["final_return"].to_numpy(float))]
    if len(bad):
        row = bad.iloc[0]
        raise UserError(f"{source}: final_return is not a finite number for "
                        f"{group_label(tuple(row[k] for k in GROUP_KEYS))} seed {row['seed']}; "
                        "expected the mean return of the last 10% of episodes")
    duplicated = frame.duplicated([*GROUP_KEYS, "seed"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise UserError(f"{source}: more than one run for "
                        f"{group_label(tuple(row[k] for k in GROUP_KEYS))} seed {row['seed']}; "
                        "expected one run per (suite, env, variant, setting, seed)")
    return frame


def read_summary_runs(summary_dir: str | Path, columns: Iterable[str] = RUN_COLUMNS):
    """``SUMMARY/runs.parquet`` with at least ``columns``, validated; raises UserError if unfit.

    Returns a frame with the requested columns, ``seed`` as int64, ``final_return`` as float64
    and ``packages`` as canonical JSON.
    """
    path = Path(summary_dir) / "runs.parquet"
    frame = read_table(summary_dir, "runs", allow_empty=False)
    columns = list(columns)
    for name, default in OPTIONAL_RUN_COLUMNS.items():
        if name in columns and name not in frame.columns:
            frame[name] = default
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks columns {', '.join(missing)}; expected the runs table of "
                        "docs/contracts.md")
    frame = frame[columns].copy()
    try:
        frame["seed"] = frame["seed"].astype("int64")
        for name in set(METRICS) & set(columns):
            frame[name] = frame[name].astype("float64")
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: seed must be integers and final_return numbers ({err})") from None
    for k in (*GROUP_KEYS, "config_hash", "episodes_sha256", "platform"):
        if k in frame:
            frame[k] = frame[k].astype(str)
    frame["packages"] = [_canonical_packages(p, f"{path} seed {s}")
                         for p, s in zip(frame["packages"], frame["seed"])]
    return _validate_runs(frame.reset_index(drop=True), str(path))


def _read_provenance(summary_dir: Path) -> dict:
    """``SUMMARY/provenance.json`` when present and readable, else an empty dict."""
    try:
        provenance = json.loads((summary_dir / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return provenance if isinstance(provenance, dict) else {}


def build_reference(runs, provenance: dict, *, created_at: str, gate: dict | None = None) -> dict:
    """The reference document (docs/contracts.md, Reference) for a validated runs frame.

    ``runs``: columns ``REFERENCE_INPUT_COLUMNS`` with canonical ``packages`` (and, when present,
    ``mean_return`` and ``platform``). Package-version sets and platform fingerprints are stored
    once in ``package_sets`` / ``platforms`` under a 12-hex id, which each row names. ``gate``:
    the settings ``pgbench check`` uses unless its command line overrides them.
    """
    package_sets, platforms, rows = {}, {}, []
    for record in runs.sort_values([*GROUP_KEYS, "seed"]).to_dict("records"):
        package_id = hashlib.sha256(record["packages"].encode("utf-8")).hexdigest()[:12]
        package_sets[package_id] = json.loads(record["packages"])
        fingerprint = str(record.get("platform", UNKNOWN))
        platform_id = UNKNOWN
        if fingerprint != UNKNOWN:
            platform_id = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:12]
            platforms[platform_id] = json.loads(fingerprint)
        mean = float(record.get("mean_return", math.nan))
        steps = float(record["steps_to_threshold"])
        rows.append({
            **{k: str(record[k]) for k in GROUP_KEYS},
            "seed": int(record["seed"]),
            "config_hash": str(record["config_hash"]),
            "final_return": float(record["final_return"]),
            "steps_to_threshold": steps if math.isfinite(steps) else None,
            "censored": bool(record["censored"]),
            "episodes_digest": str(record["episodes_sha256"]),
            "packages": package_id,
            "mean_return": mean if math.isfinite(mean) else None,
            "platform": platform_id,
        })
    document = {"schema": REFERENCE_SCHEMA, "created_at": created_at, "provenance": provenance,
                "package_sets": package_sets, "platforms": platforms, "rows": rows}
    if gate:
        document["gate"] = dict(gate)
    return document


#: What a reference file should be, for error messages.
EXPECTED_REFERENCE = (f"expected a JSON reference written by `pgbench reference` "
                      f"(schema {REFERENCE_SCHEMA})")


def reference_runs(document: object, path: str | Path):
    """The normalised per-run frame (``RUN_COLUMNS``) of a parsed reference document.

    Raises UserError naming ``path`` and the first problem found.
    """
    import pandas as pd

    path = Path(path)
    expected = EXPECTED_REFERENCE
    if not isinstance(document, dict):
        raise UserError(f"reference {path}: top level is not a JSON object; {expected}")
    if document.get("schema") != REFERENCE_SCHEMA:
        raise UserError(f"reference {path}: schema is {document.get('schema')!r}, not "
                        f"{REFERENCE_SCHEMA}; {expected}")
    rows, package_sets = document.get("rows"), document.get("package_sets")
    if not isinstance(rows, list) or not rows:
        raise UserError(f"reference {path}: 'rows' must be a non-empty list of runs; {expected}")
    if not isinstance(package_sets, dict):
        raise UserError(f"reference {path}: 'package_sets' must be an object; {expected}")
    platforms = document.get("platforms", {})
    if not isinstance(platforms, dict):
        raise UserError(f"reference {path}: 'platforms' must be an object; {expected}")
    records = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"reference {path}: rows[{i}] is not an object; {expected}")
        for field, kind in REFERENCE_ROW_FIELDS.items():
            value = row.get(field)
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  if kind is float else isinstance(value, kind) and not isinstance(value, bool))
            if not ok:
                raise UserError(f"reference {path}: rows[{i}].{field} is {value!r}; expected "
                                f"a {kind.__name__}")
        if row["packages"] not in package_sets:
            raise UserError(f"reference {path}: rows[{i}].packages {row['packages']!r} is not "
                            "a key of 'package_sets'")
        mean = row.get("mean_return")
        platform_id = row.get("platform", UNKNOWN)
        if platform_id != UNKNOWN and platform_id not in platforms:
            raise UserError(f"reference {path}: rows[{i}].platform {platform_id!r} is not "
                            "a key of 'platforms'")
        records.append({
            **{k: row[k] for k in GROUP_KEYS}, "seed": row["seed"],
            "config_hash": row["config_hash"], "final_return": float(row["final_return"]),
            "mean_return": float(mean) if isinstance(mean, (int, float)) else math.nan,
            "platform": UNKNOWN if platform_id == UNKNOWN else json.dumps(
                platforms[platform_id], sort_keys=True, separators=(",", ":")),
            "episodes_sha256": row["episodes_digest"],
            "packages": _canonical_packages(json.dumps(package_sets[row["packages"]]),
                                            f"reference {path} package set {row['packages']}"),
        })
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    frame["seed"] = frame["seed"].astype("int64")
    return _validate_runs(frame, f"reference {path}")


def reference_gate(document: dict, path: str | Path) -> dict:
    """The gate settings a reference stores (``{}`` when none), validated."""
    gate = document.get("gate", {})
    if not isinstance(gate, dict) or set(gate) - set(GATE_DEFAULTS):
        raise UserError(f"reference {path}: 'gate' must be an object with keys among "
                        f"{', '.join(GATE_DEFAULTS)}; got {gate!r}")
    if "metric" in gate and gate["metric"] not in METRICS:
        raise choice_error("metric", gate["metric"], METRICS)
    return gate


def read_reference(path: str | Path, with_gate: bool = False):
    """Load and validate a reference JSON file into the normalised per-run frame (and, with
    ``with_gate``, also return the gate settings it stores)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reference {path} not found; {EXPECTED_REFERENCE}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"reference {path} is not UTF-8 text; {EXPECTED_REFERENCE}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"reference {path} is not valid JSON ({err.msg} at line {err.lineno}); "
                        f"{EXPECTED_REFERENCE}") from None
    runs = reference_runs(document, path)
    return (runs, reference_gate(document, path)) if with_gate else runs
