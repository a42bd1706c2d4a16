"""Compare a summary's runs with the reference's, group by group: identical runs, the gate's
verdict, and the seeds a group needs for the gate's power.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np

from pgbench.check.gate import (
    GROUP_KEYS,
    METRICS,
    CheckResult,
    GroupKey,
    compare_group,
    effective_sd,
    margin,
    seeds_for_power,
    statistic_function,
)
from pgbench.core.errors import UserError, choice_error
from pgbench.core.fingerprint import platform_difference
from pgbench.core.seeding import named_rng


def _package_changes(ref_packages: str, cur_packages: str) -> list[str]:
    """``["torch 2.13.0->2.14.0", ...]`` between two canonical package-version JSON strings."""
    ref, cur = json.loads(ref_packages), json.loads(cur_packages)
    return [f"{name} {ref.get(name, 'none')}->{cur.get(name, 'none')}"
            for name in sorted(set(ref) | set(cur)) if ref.get(name) != cur.get(name)]


def identity_difference(ref_runs, cur_runs) -> str:
    """Why two groups' runs are not bit-identical; ``""`` when they are.

    ``ref_runs``, ``cur_runs``: frames with columns ``seed, config_hash, packages,
    episodes_sha256`` (one row per seed). Identical means the same seeds and, for each seed, the
    same config hash, package versions and episodes digest. Every reason found is listed, so the
    note says what changed (config, which packages, seeds) even when the seeds differ too.
    """
    ref = ref_runs.set_index("seed").sort_index()
    cur = cur_runs.set_index("seed").sort_index()
    reasons = []
    if set(ref["config_hash"]) != set(cur["config_hash"]):
        reasons.append("config changed")
    ref_packages, cur_packages = sorted(set(ref["packages"])), sorted(set(cur["packages"]))
    if ref_packages != cur_packages:
        changes = _package_changes(ref_packages[0], cur_packages[0])
        reasons.append(f"packages changed ({', '.join(changes) or 'mixed versions'})")
    if list(ref.index) != list(cur.index):
        reasons.append("other seeds")
    if reasons:
        return "; ".join(reasons)
    same = ["config_hash", "packages"]
    if (ref[same] != cur[same]).any(axis=None):
        return "config or packages differ between seeds"
    differs = ref["episodes_sha256"] != cur["episodes_sha256"]
    if differs.any():
        # Same config and versions but different bytes: training is not deterministic here.
        seeds = sorted(int(s) for s in ref.index[differs])
        return f"same config and packages but episodes differ for seeds {seeds}"
    return ""


def check_runs(ref_runs, cur_runs, *, alpha: float, min_effect: float, statistic: str,
               seed: int, metric: str = "final_return",
               detect: float | None = None) -> list[tuple[GroupKey, CheckResult]]:
    """Compare every group of two normalised per-run frames (columns ``RUN_COLUMNS``) on the
    per-seed ``metric`` (a column, see ``METRICS``).

    Returns one ``(group, CheckResult)`` per group present on either side, sorted by group.
    Each group's Generator is seeded from ``seed`` and the group's name. ``identical`` is
    possible only where both sides' platform fingerprints are known and equal
    (:mod:`pgbench.core.fingerprint`); elsewhere the group is tested and the note says why.
    """
    _require_metric(ref_runs, metric, "the reference")
    _require_metric(cur_runs, metric, "the current summary")
    stat = statistic_function(statistic)
    ref_groups = {key: frame for key, frame in ref_runs.groupby(list(GROUP_KEYS), sort=True)}
    cur_groups = {key: frame for key, frame in cur_runs.groupby(list(GROUP_KEYS), sort=True)}
    rows = []
    for key in sorted(set(ref_groups) | set(cur_groups)):
        ref, cur = ref_groups.get(key), cur_groups.get(key)
        if cur is None:
            values = ref[metric].to_numpy(float)
            rows.append((key, CheckResult("missing", values.size, 0, float(stat(values)),
                                          math.nan, note="in the reference only")))
            continue
        if ref is None:
            values = cur[metric].to_numpy(float)
            rows.append((key, CheckResult("new", 0, values.size, math.nan, float(stat(values)),
                                          note="not in the reference")))
            continue
        why = identity_difference(ref, cur)
        ref_values = ref.sort_values("seed")[metric].to_numpy(float)
        cur_values = cur.sort_values("seed")[metric].to_numpy(float)
        if not why and not np.array_equal(ref_values, cur_values):
            # Same episodes but other numbers: the aggregation changed, so test rather than trust.
            why = f"same episodes but different {metric} (aggregation changed?)"
        elsewhere = platform_difference(set(ref["platform"]), set(cur["platform"]))
        if elsewhere:
            # Bytes are promised on one platform only: test, whatever the digests say.
            if not why or why.startswith("same config and packages but episodes differ"):
                why = f"{elsewhere}: identical not expected"
            else:
                why = f"{why}; {elsewhere}"
        if not why:
            s = float(stat(ref_values))
            rows.append((key, CheckResult("identical", ref_values.size, cur_values.size, s,
                                          float(stat(cur_values)), diff=0.0)))
            continue
        result = compare_group(ref_values, cur_values, named_rng(seed, *key), alpha=alpha,
                               min_effect=min_effect, statistic=statistic, detect=detect)
        note = "; ".join(part for part in (result.note, why) if part)
        rows.append((key, replace(result, note=note)))
    return rows


def _require_metric(runs, metric: str, side: str) -> None:
    """Raise UserError unless every run of ``runs`` has a finite ``metric``."""
    if metric not in METRICS:
        raise choice_error("metric", metric, METRICS)
    values = runs[metric].to_numpy(float) if metric in runs else np.array([math.nan])
    if not np.isfinite(values).all():
        raise UserError(f"{side} has no finite {metric} for some runs; make it again with this "
                        f"version of pgbench (`pgbench aggregate`, `pgbench reference`) or check "
                        f"another metric (accepted: {', '.join(METRICS)})")




def power_rows(ref_runs, cur_runs, *, alpha: float, min_effect: float, statistic: str,
               metric: str = "final_return",
               detect: float | None = None) -> list[tuple[GroupKey, dict]]:
    """Seeds needed per reference group for the gate to call a drop of ``detect`` (a fraction
    of the reference's statistic; default twice ``min_effect``) a regression with 80% power:
    :func:`seeds_for_power` of the distance from that drop to the margin.

    Returns ``(group, {"n_ref", "n_cur", "sd", "margin", "needed"})`` sorted by group;
    ``n_cur`` is 0 for groups absent from the current summary.
    """
    cur_counts = cur_runs.groupby(list(GROUP_KEYS)).size().to_dict() if len(cur_runs) else {}
    rows = []
    for key, frame in ref_runs.groupby(list(GROUP_KEYS), sort=True):
        values = frame[metric].to_numpy(float)
        sd = effective_sd(values, statistic)
        delta = margin(values, statistic, min_effect)
        drop = margin(values, statistic, 2 * min_effect if detect is None else detect)
        rows.append((key, {"n_ref": values.size, "n_cur": int(cur_counts.get(key, 0)), "sd": sd,
                           "margin": delta, "needed": seeds_for_power(sd, drop - delta, alpha)}))
    return rows
