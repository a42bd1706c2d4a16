"""Statistical regression gate on final returns: ``pgbench reference`` and ``pgbench check``.

``pgbench reference SUMMARY --out REF.json`` freezes the per-run results of a summary directory
(``runs.parquet``, see docs/contracts.md) into a small JSON file that is committed to the repo.
``pgbench check SUMMARY --reference REF.json`` compares a fresh summary with it, one row per
group ``(suite, env, variant, setting)``, and exits 1 when some group regressed.

Decision rule for one group (docs/check.md explains it for users). Let ``D = S(cur) - S(ref)``
where ``S`` is the mean or the IQM of the per-seed metric (final return, or mean return over
training; higher is better), and let the
margin be ``delta = min_effect * |S(ref)|``: "worse by more than min-effect" means ``D < -delta``.

1. ``identical``: same seeds, and for every seed the same config hash, package versions and
   ``episodes.parquet`` digest, on the same known platform (:mod:`pgbench.fingerprint`: pinned
   CPU dispatch, architecture, packages). Nothing to test: the runs are bit-for-bit the
   reference. On another or an unknown platform bytes are not promised, so the group is tested.
2. Otherwise the boundary ``D = -delta`` is tested from both sides at level ``alpha``, and each
   decision needs two kinds of evidence to agree: a permutation test of the location shift
   (exact at any number of seeds) and a percentile bootstrap interval ``[ci_low, ci_high]`` of
   ``D`` with confidence ``1 - 2*alpha`` (each end a one-sided ``1 - alpha`` bound):

   - ``regression``: ``p_worse <= alpha`` and ``ci_high < -delta`` (a drop larger than the
     margin is established);
   - ``pass``: ``p_not_worse <= alpha`` and ``ci_low > -delta`` (a drop larger than the margin is
     excluded); with ``detect`` (the drop the gate is designed to catch, > min-effect), the
     mirror test and the interval's low end use ``delta_d = detect * |S(ref)|`` instead: a pass
     excludes a drop of ``detect``, which sized seeds achieve for unchanged code with the
     power ``--power`` targets;
   - ``inconclusive``: neither (the interval still contains ``-delta``, or there are too few
     seeds for any permutation p-value to reach ``alpha``).

   The two verdicts cannot both hold for ``alpha < 0.5``. Requiring the permutation test as well
   as the interval matters with few seeds: a percentile bootstrap of 2-3 seeds is far too narrow
   and alone would raise false alarms; the exact permutation test cannot reject with 2 seeds a
   side (smallest p = 1/6), so such groups are ``inconclusive``.

Every random draw comes from a ``numpy.random.Generator`` passed in; ``pgbench check --seed``
seeds one per group from the seed and the group's name, so a row does not depend on which other
groups are present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from pgbench.errors import UserError, choice_error
from pgbench.fingerprint import UNKNOWN, platform_difference
from pgbench.io import write_bytes_atomic, write_json_atomic

#: Version of the reference JSON layout (docs/contracts.md, section Reference).
REFERENCE_SCHEMA = 1
#: The group key of every table (docs/contracts.md).
GROUP_KEYS = ("suite", "env", "variant", "setting")
#: Per-seed numbers a check can compare (runs.parquet columns, higher is better):
#: ``final_return`` (mean of the last 10% of episodes) or ``mean_return`` (mean over all
#: episodes: the area under the learning curve, less noisy; the CI suite's metric).
METRICS = ("final_return", "mean_return")
#: runs.parquet columns ``pgbench reference`` needs (``mean_return``, ``platform``: when present).
REFERENCE_INPUT_COLUMNS = (*GROUP_KEYS, "seed", "config_hash", "final_return", "steps_to_threshold",
                           "censored", "episodes_sha256", "packages")
#: Columns of the normalised per-run frame both sides of a check are brought to.
RUN_COLUMNS = (*GROUP_KEYS, "seed", "config_hash", *METRICS, "episodes_sha256", "packages",
               "platform")
#: Optional runs.parquet columns and their value when absent (summaries from older versions).
OPTIONAL_RUN_COLUMNS = {"mean_return": math.nan, "platform": UNKNOWN}
#: Gate settings a reference may store (``pgbench reference --metric ...``) and their defaults
#: when neither the reference nor the command line sets them.
GATE_DEFAULTS = {"metric": "final_return", "alpha": 0.05, "min_effect": 0.1, "statistic": "mean",
                 "detect": None}
#: Fields of a reference row that ``pgbench check`` reads, with their JSON types.
REFERENCE_ROW_FIELDS = {"suite": str, "env": str, "variant": str, "setting": str, "seed": int,
                        "config_hash": str, "final_return": float, "episodes_digest": str,
                        "packages": str}

VERDICTS = ("regression", "inconclusive", "pass", "identical", "missing", "new")
#: Trimmed fraction on each side for the interquartile mean.
IQM_TRIM = 0.25
#: Target power of ``--power``.
POWER = 0.8
#: Bootstrap resamples per group: 4000 keeps the Monte Carlo error of the interval's ends near
#: 1% of its width (for alpha = 0.05).
N_BOOTSTRAP = 4000
#: Permutation test: enumerate every split of the pooled seeds up to this many splits (exact
#: p-values), otherwise draw N_PERMUTATIONS random ones.
MAX_EXACT_SPLITS = 20_000
N_PERMUTATIONS = 9_999

GroupKey = tuple[str, str, str, str]


# --------------------------------------------------------------------------------------------
# Statistics: pure functions on arrays of final returns, shape (..., seeds)
# --------------------------------------------------------------------------------------------

def mean_return(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis. ``x``: (..., seeds) final returns -> (...)."""
    return np.mean(x, axis=-1)


def interquartile_mean(x: np.ndarray) -> np.ndarray:
    """Mean of the middle 50% over the last axis (drops ``floor(0.25 * seeds)`` values each side).

    ``x``: (..., seeds) -> (...). With fewer than 4 seeds nothing is dropped and it is the mean.
    Example: ``interquartile_mean([1, 2, 3, 100]) == 2.5``.
    """
    x = np.sort(np.asarray(x, dtype=float), axis=-1)
    cut = int(IQM_TRIM * x.shape[-1])
    return np.mean(x[..., cut:x.shape[-1] - cut], axis=-1)


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": mean_return,
    "iqm": interquartile_mean,
}


def statistic_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic called ``name`` (``mean`` or ``iqm``)."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise choice_error("statistic", name, STATISTICS) from None


def margin(ref: np.ndarray, statistic: str, min_effect: float) -> float:
    """The largest tolerated drop, in return units: ``min_effect * |S(ref)|``.

    ``ref``: (seeds,) reference final returns. ``min_effect`` is a fraction (0.1 = 10%).
    """
    return float(min_effect * abs(statistic_function(statistic)(np.asarray(ref, dtype=float))))


def bootstrap_diff_interval(ref: np.ndarray, cur: np.ndarray, statistic: str,
                            rng: np.random.Generator, *, confidence: float,
                            n_resamples: int = N_BOOTSTRAP) -> tuple[float, float]:
    """Percentile bootstrap interval of ``S(cur) - S(ref)``, resampling seeds within each side.

    ``ref``: (m,), ``cur``: (n,) final returns. Returns (low, high) in return units; each end is
    a one-sided ``(1 + confidence) / 2`` bound.
    """
    stat = statistic_function(statistic)
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    ref_draws = ref[rng.integers(0, ref.size, size=(n_resamples, ref.size))]
    cur_draws = cur[rng.integers(0, cur.size, size=(n_resamples, cur.size))]
    diffs = stat(cur_draws) - stat(ref_draws)
    low, high = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _label_splits(m: int, n: int, rng: np.random.Generator, max_exact: int,
                  n_random: int) -> tuple[np.ndarray, bool]:
    """Index arrays (splits, m + n): the first m columns of a row are labelled "reference".

    Every split when there are at most ``max_exact`` of them (returns exact=True, the observed
    labelling included once), else ``n_random`` uniformly random permutations (exact=False).
    """
    total = m + n
    if math.comb(total, m) <= max_exact:
        chosen = np.array(list(combinations(range(total), m)), dtype=np.intp).reshape(-1, m)
        is_ref = np.zeros((len(chosen), total), dtype=bool)
        np.put_along_axis(is_ref, chosen, True, axis=1)
        # Stable sort on "not reference" puts the chosen indices first, then the rest.
        return np.argsort(~is_ref, axis=1, kind="stable"), True
    return rng.permuted(np.tile(np.arange(total), (n_random, 1)), axis=1), False


def shift_permutation_pvalues(ref: np.ndarray, cur: np.ndarray, shift: float, statistic: str,
                              rng: np.random.Generator, *, max_exact: int = MAX_EXACT_SPLITS,
                              n_permutations: int = N_PERMUTATIONS) -> tuple[float, float]:
    """One-sided permutation p-values for the location shift ``D = S(cur) - S(ref) = -shift``.

    Under a shift model, ``cur + shift`` and ``ref`` are exchangeable at the boundary, so the
    labels of the pooled sample are permuted and ``T = S(cur + shift) - S(ref)`` recomputed.

    ``ref``: (m,), ``cur``: (n,) final returns; ``shift`` >= 0 in return units.
    Returns ``(p_worse, p_not_worse)``: small ``p_worse`` is evidence that ``D < -shift``
    (worse by more than the shift), small ``p_not_worse`` that ``D > -shift``. Exact when all
    ``C(m+n, m)`` splits are enumerated, else Monte Carlo with the usual +1 correction.
    """
    stat = statistic_function(statistic)
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    m = ref.size
    pooled = np.concatenate([ref, cur + shift])
    observed = stat(pooled[m:]) - stat(pooled[:m])
    splits, exact = _label_splits(m, cur.size, rng, max_exact, n_permutations)
    relabelled = pooled[splits]
    t = stat(relabelled[:, m:]) - stat(relabelled[:, :m])
    # Equal values must count as ties although the two sides sum them in different orders.
    tol = 1e-9 * max(1.0, float(np.max(np.abs(pooled))))
    at_most = np.count_nonzero(t <= observed + tol)
    at_least = np.count_nonzero(t >= observed - tol)
    if exact:
        return float(at_most / len(t)), float(at_least / len(t))
    return float((1 + at_most) / (1 + len(t))), float((1 + at_least) / (1 + len(t)))


def smallest_pvalue(m: int, n: int) -> float:
    """Smallest p-value a permutation test of m against n seeds can give: ``1 / C(m+n, m)``."""
    return 1.0 / math.comb(m + n, m)


def effective_sd(values: np.ndarray, statistic: str) -> float:
    """Per-seed standard deviation whose ``sd / sqrt(seeds)`` is the statistic's standard error.

    ``values``: (seeds,) final returns. Mean: the sample sd. IQM: the 25%-winsorized sd divided
    by ``1 - 2 * 0.25`` (the large-sample error of a trimmed mean, as in Yuen's test).
    NaN with fewer than 2 seeds.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size < 2:
        return math.nan
    if statistic == "mean":
        return float(np.std(x, ddof=1))
    cut = int(IQM_TRIM * x.size)
    winsorized = np.clip(x, x[cut], x[x.size - 1 - cut])
    return float(np.std(winsorized, ddof=1) / (1 - 2 * IQM_TRIM))


def seeds_for_power(sd: float, drop: float, alpha: float, power: float = POWER) -> float:
    """Seeds per side for a one-sided level-``alpha`` test to detect ``drop`` with ``power``.

    Normal approximation with equal seeds on both sides and the reference's spread on both:
    ``n = 2 * (z[1 - alpha] + z[power])**2 * sd**2 / drop**2``, rounded up. Also at least the
    smallest n whose exact permutation test can reach ``alpha`` (``1 / C(2n, n) <= alpha``).
    ``sd``, ``drop`` in return units. NaN when ``sd`` is unknown, inf when ``drop`` is 0.
    """
    from scipy.stats import norm

    if not math.isfinite(sd):
        return math.nan
    if drop <= 0:
        return math.inf
    z = norm.ppf(1 - alpha) + norm.ppf(power)
    analytic = math.ceil(2 * (z * sd / drop) ** 2 - 1e-9)
    floor = 1
    while smallest_pvalue(floor, floor) > alpha:
        floor += 1
    return float(max(analytic, floor))


@dataclass(frozen=True)
class CheckResult:
    """The comparison of one group. Returns and differences are in return units.

    ``diff = cur_stat - ref_stat`` (negative = worse); ``ci_low``/``ci_high`` bound it with
    confidence ``1 - 2 * alpha``; ``margin`` is the tolerated drop (>= 0); ``p_worse`` is the
    one-sided p-value of "worse by more than the margin" (small = regression), ``p_not_worse``
    of the mirror test (small = pass). NaN where a field does not apply to the verdict.
    """

    verdict: str
    n_ref: int
    n_cur: int
    ref_stat: float
    cur_stat: float
    diff: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    margin: float = math.nan
    p_worse: float = math.nan
    p_not_worse: float = math.nan
    note: str = ""


def compare_group(ref_values: np.ndarray, cur_values: np.ndarray, rng: np.random.Generator, *,
                  alpha: float = 0.05, min_effect: float = 0.1,
                  statistic: str = "mean", detect: float | None = None) -> CheckResult:
    """Test whether ``cur_values`` are worse than ``ref_values`` by more than ``min_effect``.

    ``ref_values``: (m,), ``cur_values``: (n,) per-seed values, m, n >= 1, higher is
    better. Verdict ``regression``, ``pass`` or ``inconclusive`` by the rule in the module
    docstring. ``detect`` (>= ``min_effect``, default ``min_effect``) is the drop the gate is
    designed to catch: ``pass`` then needs only a drop of ``detect`` excluded, while
    ``regression`` still needs a drop beyond ``min_effect`` established. Deterministic given
    the state of ``rng``.
    """
    ref = np.asarray(ref_values, dtype=float)
    cur = np.asarray(cur_values, dtype=float)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("compare_group needs at least one seed on each side")
    stat = statistic_function(statistic)
    ref_stat, cur_stat = float(stat(ref)), float(stat(cur))
    diff = cur_stat - ref_stat
    delta = margin(ref, statistic, min_effect)
    if detect is not None and detect < min_effect:
        raise ValueError(f"detect ({detect}) must be at least min_effect ({min_effect})")
    low, high = bootstrap_diff_interval(ref, cur, statistic, rng, confidence=1 - 2 * alpha)
    p_worse, p_not_worse = shift_permutation_pvalues(ref, cur, delta, statistic, rng)
    design = delta
    if detect is not None and detect != min_effect:
        design = margin(ref, statistic, detect)
        _, p_not_worse = shift_permutation_pvalues(ref, cur, design, statistic, rng)

    if p_worse <= alpha and high < -delta:
        verdict, note = "regression", f"worse by more than {_percent(min_effect)}"
    elif p_not_worse <= alpha and low > -design:
        verdict = "pass"
        note = "" if design == delta else f"a drop of {_percent(detect)} is excluded"
    else:
        verdict = "inconclusive"
        if smallest_pvalue(ref.size, cur.size) > alpha:
            note = (f"too few seeds: the smallest possible p is "
                    f"{smallest_pvalue(ref.size, cur.size):.2g} > alpha")
        elif low > -design or high < -delta:
            # The interval decides but the permutation test does not reach alpha: the seeds are
            # too few or too spread out for the interval alone to be trusted.
            p = min(p_worse, p_not_worse)
            note = f"permutation test not significant (p={p:.2g}); add seeds"
        elif diff < -delta:
            note = "possible regression: drop beyond the margin but not significant; add seeds"
        elif design == delta:
            note = "interval contains the margin; add seeds"
        else:
            note = (f"neither a drop beyond {_percent(min_effect)} nor one of "
                    f"{_percent(detect)} is established; add seeds")
    return CheckResult(verdict=verdict, n_ref=ref.size, n_cur=cur.size, ref_stat=ref_stat,
                       cur_stat=cur_stat, diff=diff, ci_low=low, ci_high=high, margin=delta,
                       p_worse=p_worse, p_not_worse=p_not_worse, note=note)


# --------------------------------------------------------------------------------------------
# Identity of runs (pure, on the normalised per-run frame)
# --------------------------------------------------------------------------------------------

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
    (:mod:`pgbench.fingerprint`); elsewhere the group is tested and the note says why.
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
        result = compare_group(ref_values, cur_values, group_rng(seed, key), alpha=alpha,
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


def group_rng(seed: int, key: GroupKey) -> np.random.Generator:
    """A Generator for one group, from the user's seed and a stable hash of the group's name."""
    digest = hashlib.sha256("\x1f".join(key).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


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


# --------------------------------------------------------------------------------------------
# Formatting (pure: rows in, text or bytes out)
# --------------------------------------------------------------------------------------------

def _num(x: float) -> str:
    """A return-scale number in a few characters; ``-`` for NaN."""
    if x is None or not math.isfinite(x):
        return "-" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _percent(fraction: float) -> str:
    """0.1 -> ``10%``, 0.125 -> ``12.5%``."""
    return f"{100 * fraction:g}%"


def _pvalue(p: float) -> str:
    if not math.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def group_label(key: GroupKey) -> str:
    """``suite/env/variant [setting]`` (the setting is left out when it is ``default``)."""
    suite, env, variant, setting = key
    label = f"{suite}/{env}/{variant}"
    return label if setting == "default" else f"{label} [{setting}]"


def _aligned(header: list[str], body: list[list[str]], right: set[int]) -> str:
    """Columns padded to their widest cell; columns in ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells):
        padded = [c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def format_table(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float,
                 statistic: str) -> str:
    """The check table: one line per group, columns aligned."""
    confidence = _percent(1 - 2 * alpha)
    header = ["group", "seeds ref/cur", f"ref {statistic}", f"cur {statistic}",
              f"diff [{confidence} CI]", "margin", "p", "verdict", "note"]
    body = []
    for key, r in rows:
        ci = "" if math.isnan(r.ci_low) else f" [{_num(r.ci_low)}, {_num(r.ci_high)}]"
        body.append([group_label(key), f"{r.n_ref}/{r.n_cur}", _num(r.ref_stat),
                     _num(r.cur_stat), _num(r.diff) + ci,
                     "-" if math.isnan(r.margin) else _num(-r.margin), _pvalue(r.p_worse),
                     r.verdict.upper() if r.verdict == "regression" else r.verdict, r.note])
    return _aligned(header, body, right={1, 2, 3, 5, 6})


def format_summary(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float, min_effect: float,
                   statistic: str, metric: str = "final_return",
                   detect: float | None = None) -> str:
    """One line: counts per verdict, the settings, and the outcome."""
    counts = {v: sum(r.verdict == v for _, r in rows) for v in VERDICTS}
    listed = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    outcome = "FAIL" if counts["regression"] else "OK"
    designed = "" if detect is None else f", detect={_percent(detect)}"
    return (f"pgbench check: {len(rows)} groups: {listed or 'none'} "
            f"({metric}, alpha={alpha:g}, min-effect={_percent(min_effect)} of the reference "
            f"{statistic}{designed}) "
            f"-> {outcome}")


def format_power(rows: list[tuple[GroupKey, dict]], *, alpha: float, min_effect: float,
                 statistic: str, detect: float | None = None) -> str:
    """The ``--power`` section: seeds needed per group, and whether the current run has them."""
    detect = 2 * min_effect if detect is None else detect
    title = (f"Seeds per side for a drop of {_percent(detect)} of the reference {statistic} to "
             f"be called a regression (margin {_percent(min_effect)}) with {POWER:.0%} power at "
             f"alpha={alpha:g} (one-sided, normal approximation, reference spread):")
    header = ["group", "seeds ref/cur", "sd", "margin", "needed", "enough"]
    body = []
    for key, row in rows:
        needed = row["needed"]
        have = min(row["n_ref"], row["n_cur"])
        enough = "-" if not math.isfinite(needed) or row["n_cur"] == 0 else (
            "yes" if have >= needed else "no")
        shown = "-" if math.isnan(needed) else ("inf" if math.isinf(needed) else f"{needed:.0f}")
        body.append([group_label(key), f"{row['n_ref']}/{row['n_cur']}", _num(row["sd"]),
                     _num(row["margin"]), shown, enough])
    return title + "\n" + _aligned(header, body, right={1, 2, 3, 4})


def junit_xml(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float,
              statistic: str) -> bytes:
    """JUnit XML, one testcase per group.

    Regression is a failure; inconclusive, missing and new are skipped with the reason.
    """
    failures = sum(r.verdict == "regression" for _, r in rows)
    skipped = sum(r.verdict in {"inconclusive", "missing", "new"} for _, r in rows)
    suite = ET.Element("testsuite", name="pgbench check", tests=str(len(rows)),
                       failures=str(failures), errors="0", skipped=str(skipped), time="0")
    for key, r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"pgbench.{key[0]}.{key[1]}",
                             name=group_label(key).split("/", 2)[2], time="0")
        detail = (f"{statistic}: ref {_num(r.ref_stat)} ({r.n_ref} seeds), cur {_num(r.cur_stat)} "
                  f"({r.n_cur} seeds), diff {_num(r.diff)} [{_percent(1 - 2 * alpha)} CI "
                  f"{_num(r.ci_low)}, {_num(r.ci_high)}], margin {_num(-r.margin)}, "
                  f"p {_pvalue(r.p_worse)}: {r.verdict}" + (f" ({r.note})" if r.note else ""))
        if r.verdict == "regression":
            ET.SubElement(case, "failure", message=f"regression: {r.note}",
                          type="regression").text = detail
        elif r.verdict in {"inconclusive", "missing", "new"}:
            ET.SubElement(case, "skipped", message=f"{r.verdict}: {r.note}")
        ET.SubElement(case, "system-out").text = detail
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


# --------------------------------------------------------------------------------------------
# I/O: summary directories and reference files
# --------------------------------------------------------------------------------------------

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
    import pandas as pd

    path = Path(summary_dir) / "runs.parquet"
    if not path.is_file():
        raise UserError(f"{path} not found; expected a summary directory written by "
                        "`pgbench aggregate` (with runs.parquet)")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise UserError(f"{path} is not a readable Parquet file ({err})") from None
    columns = list(columns)
    for name, default in OPTIONAL_RUN_COLUMNS.items():
        if name in columns and name not in frame.columns:
            frame[name] = default
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks columns {', '.join(missing)}; expected the runs table of "
                        "docs/contracts.md")
    if frame.empty:
        raise UserError(f"{path} has no runs; expected at least one row")
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


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def configure_reference_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (has runs.parquet)")
    parser.add_argument("--out", required=True, metavar="REF.json",
                        help="reference file to write (JSON, written atomically)")
    parser.add_argument("--metric", choices=METRICS, help="store the metric `pgbench check` "
                        "compares by default with this reference")
    parser.add_argument("--min-effect", type=lambda s: _fraction(s, low=0, high=1e9,
                                                                 name="min-effect"),
                        help="store the margin `pgbench check` uses by default")
    parser.add_argument("--detect", type=lambda s: _fraction(s, low=0, high=1e9, name="detect"),
                        help="store the drop the gate is designed to catch (`pgbench check "
                        "--detect`)")
    parser.add_argument("--alpha", type=lambda s: _fraction(s, low=1e-6, high=0.5, name="alpha"),
                        help="store the level `pgbench check` uses by default")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing reference (never a file pgbench did not write)")


def run_reference(args: argparse.Namespace) -> int:
    summary_dir = Path(args.summary_dir)
    runs = read_summary_runs(summary_dir, (*REFERENCE_INPUT_COLUMNS, "mean_return", "platform"))
    gate = {k: getattr(args, k) for k in ("metric", "min_effect", "detect", "alpha")
            if getattr(args, k, None) is not None}
    if "metric" in gate:
        _require_metric(runs, gate["metric"], str(summary_dir / "runs.parquet"))
    options = "".join(f" --{k.replace('_', '-')} {v}" for k, v in gate.items())
    provenance = {**_read_provenance(summary_dir),
                  "command": f"pgbench reference {args.summary_dir} --out {args.out}{options}"}
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = build_reference(runs, provenance, created_at=created_at, gate=gate)
    from pgbench.outputs import SKIP, check_file, is_reference

    def same(path: Path) -> bool:  # the same runs: only the date and command would change
        def text(doc: dict) -> str:
            return json.dumps([doc.get(k) for k in ("schema", "rows", "package_sets", "platforms", "gate")],
                              sort_keys=True, default=str)
        return text(json.loads(path.read_text(encoding="utf-8"))) == text(
            json.loads(json.dumps(document, default=str)))

    if check_file(args.out, "reference", is_reference, force=args.force, same=same) == SKIP:
        print(f"pgbench reference: {args.out} already is the reference of these runs; "
              "leaving it as it is")
        return 0
    write_json_atomic(args.out, document)
    groups = runs.groupby(list(GROUP_KEYS)).ngroups
    print(f"pgbench reference: wrote {args.out}: {len(runs)} runs in {groups} groups")
    return 0


def _fraction(text: str, *, low: float, high: float, name: str) -> float:
    """argparse type: a float in [low, high)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
    if not (low <= value < high):
        raise argparse.ArgumentTypeError(f"{name} must be in [{low:g}, {high:g}), got {value:g}")
    return value


def _seed(text: str) -> int:
    """argparse type: a non-negative integer (numpy seed sequences need one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, got {value}")
    return value


def configure_check_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Compare a summary's per-seed results with a reference, one row per "
                          "(suite, env, variant, setting). Exit 0 when no group regressed, 1 when "
                          "one did, 2 on bad input. Options not given come from the reference's "
                          "stored gate settings, else the defaults. See docs/check.md.")
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (has runs.parquet)")
    parser.add_argument("--reference", required=True, metavar="REF.json",
                        help="reference written by `pgbench reference`")
    parser.add_argument("--alpha", type=lambda s: _fraction(s, low=1e-6, high=0.5, name="alpha"),
                        help="level of each one-sided test; the interval shown "
                        "has confidence 1 - 2*alpha (default: 0.05)")
    parser.add_argument("--min-effect", type=lambda s: _fraction(s, low=0, high=1e9,
                                                                 name="min-effect"),
                        help="largest tolerated drop, as a fraction of the "
                        "reference's statistic for the group (default: 0.1 = 10%%)")
    parser.add_argument("--statistic", choices=sorted(STATISTICS),
                        help="statistic of the per-seed values (default: mean)")
    parser.add_argument("--metric", choices=METRICS, help="per-seed value compared: final_return "
                        "(mean of the last 10%% of episodes) or mean_return (mean over all "
                        "episodes, the area under the learning curve) (default: final_return)")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML, one testcase per "
                        "group (regression = failure; inconclusive, missing, new = skipped)")
    parser.add_argument("--power", action="store_true",
                        help="also print how many seeds detect a drop of --detect with 80%% "
                        "power, from the reference's spread")
    parser.add_argument("--detect", type=lambda s: _fraction(s, low=0, high=1e9, name="detect"),
                        help="the drop the gate is designed to catch, as a fraction of the "
                        "reference's statistic, more than min-effect: `pass` then means a drop "
                        "this large is excluded, and --power sizes the seeds for it (default: "
                        "pass needs a drop beyond min-effect excluded; --power uses twice "
                        "min-effect)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the bootstrap and permutation draws (default: 0)")


def run_check(args: argparse.Namespace) -> int:
    ref_runs, gate = read_reference(args.reference, with_gate=True)
    cur_runs = read_summary_runs(args.summary_dir)
    chosen = {k: getattr(args, k, None) for k in GATE_DEFAULTS}
    settings = {k: v if v is not None else gate.get(k, GATE_DEFAULTS[k]) for k, v in chosen.items()}
    metric = settings.pop("metric")
    if settings["detect"] is not None and settings["detect"] <= settings["min_effect"]:
        raise UserError(f"detect {settings['detect']:g} must exceed min-effect "
                        f"{settings['min_effect']:g}: a drop within the margin is tolerated")
    rows = check_runs(ref_runs, cur_runs, seed=args.seed, metric=metric, **settings)
    print(format_table(rows, alpha=settings["alpha"], statistic=settings["statistic"]))
    detect = stored_detect = settings.pop("detect")
    if args.power:
        detect = 2 * settings["min_effect"] if detect is None else detect
        print()
        print(format_power(power_rows(ref_runs, cur_runs, metric=metric, detect=detect,
                                      **settings), detect=detect, **settings))
    print()
    print(format_summary(rows, metric=metric, detect=stored_detect, **settings))
    if args.junit:
        write_bytes_atomic(args.junit, junit_xml(rows, alpha=settings["alpha"],
                                                 statistic=settings["statistic"]))
    return 1 if any(r.verdict == "regression" for _, r in rows) else 0
