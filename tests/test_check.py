"""Tests of `pgbench reference` / `pgbench check` (pgbench/check/).

Summary directories are built by hand (`write_summary`) with the runs.parquet columns of
docs/contracts.md; final returns are drawn from known distributions so the verdicts are known.
"""

from __future__ import annotations

import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pgbench.check import compare, gate
from pgbench.cli import main
from pgbench.core.fingerprint import platform_fingerprint

PACKAGES = {"numpy": "2.4.6", "torch": "2.13.0"}
DISPATCH = {"aten_cpu_capability": "avx2", "mkl_cbwr": "AVX2", "threads": 1}
CARTPOLE = ("ci", "CartPole-v1", "rtg_baseline", "default")
PENDULUM = ("ci", "InvertedPendulum-v5", "vanilla", "dropout=0.6")


def write_summary(directory: Path, groups: dict[tuple, np.ndarray], *, seeds=None,
                  packages: dict = PACKAGES, config_salt: str = "",
                  dispatch: dict | None = DISPATCH) -> Path:
    """A summary dir with runs.parquet: one run per (group, value); seeds 0.. unless given.
    The runs' platform fingerprint is made from ``dispatch`` (None: an unknown platform); the
    mean return over training is the final return minus 100.

    The episodes digest is a hash of the group, seed and final return, so the same inputs give
    the same digest, like re-running deterministic training.
    """
    records = []
    for key, values in groups.items():
        suite, env, variant, setting = key
        for i, value in enumerate(np.asarray(values, dtype=float)):
            seed = int(seeds[i]) if seeds is not None else i
            name = f"{key}|{config_salt}"
            records.append({
                "suite": suite, "env": env, "variant": variant,
                "arm": variant if setting == "default" else f"{variant}__{setting}",
                "setting": setting, "seed": seed,
                "config_hash": hashlib.sha256(name.encode()).hexdigest()[:16],
                "run_hash": hashlib.sha256(f"{name}|{seed}".encode()).hexdigest()[:16],
                "stop_reason": "budget", "threshold": 475.0, "budget_steps": 100_000,
                "env_steps": 100_000, "episodes": 500, "updates": 500,
                "final_return": value, "mean_return": value - 100.0,
                "steps_to_threshold": 100_000.0, "episodes_to_threshold": 500.0, "censored": True,
                "steps_to_threshold_last100": 100_000.0, "episodes_to_threshold_last100": 500.0,
                "censored_last100": True, "wall_s": 1.0, "cpu_s": 1.0,
                "run_dir": f"results/runs/{suite}/{env}/{variant}/seed{seed}",
                "episodes_sha256": hashlib.sha256(f"{name}|{seed}|{value!r}".encode()).hexdigest(),
                "packages": json.dumps(packages),
                "platform": platform_fingerprint({"dispatch": dispatch, "machine": "x86_64",
                                                  "packages": packages}),
            })
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_parquet(directory / "runs.parquet", index=False)
    return directory


def normal_returns(seed: int, n: int, mean: float = 400.0, sd: float = 20.0) -> np.ndarray:
    """(n,) final returns from N(mean, sd)."""
    return np.random.default_rng(seed).normal(mean, sd, n)


def verdicts(reps: int, n: int, *, drop: float, sd: float = 20.0, mean: float = 400.0,
             statistic: str = "mean", m: int | None = None) -> Counter:
    """Verdict counts of ``reps`` synthetic comparisons: reference N(mean, sd) with m seeds,
    current N(mean - drop, sd) with n seeds, every draw from a seeded Generator."""
    data = np.random.default_rng(12345)
    counts = Counter()
    for rep in range(reps):
        ref = data.normal(mean, sd, m or n)
        cur = data.normal(mean - drop, sd, n)
        result = gate.compare_group(ref, cur, np.random.default_rng(rep), alpha=0.05,
                                     min_effect=0.1, statistic=statistic)
        counts[result.verdict] += 1
    return counts


# ----------------------------------------------------------------------------- pure statistics

def iqm_last_axis(x):
    return gate.statistic_function("iqm")(x)


def test_interquartile_mean_by_hand():
    assert iqm_last_axis(np.array([1.0, 2.0, 3.0, 100.0])) == 2.5
    # 8 values sorted -50, 1, 2, 3, 4, 5, 6, 100: drop 2 each side, mean of 2, 3, 4, 5.
    assert iqm_last_axis(np.array([100, 1, 2, 3, 4, 5, 6, -50.0])) == 3.5
    # Fewer than 4 seeds: nothing to trim.
    assert iqm_last_axis(np.array([1.0, 5.0])) == 3.0
    batched = iqm_last_axis(np.array([[1.0, 2.0, 3.0, 100.0], [0.0, 0.0, 4.0, 4.0]]))
    np.testing.assert_array_equal(batched, [2.5, 2.0])


def test_margin_is_fraction_of_reference_magnitude():
    assert gate.margin(np.array([190.0, 210.0]), "mean", 0.1) == pytest.approx(20.0)
    assert gate.margin(np.array([-190.0, -210.0]), "mean", 0.1) == pytest.approx(20.0)
    assert gate.margin(np.array([1.0, 2.0, 3.0, 100.0]), "iqm", 0.5) == pytest.approx(1.25)


def test_permutation_pvalues_exact_by_hand():
    # Pooled [1, 2, 3, 4]; the observed split (cur = {3, 4}) has the largest T of the 6 splits.
    p_worse, p_not_worse = gate.shift_permutation_pvalues(
        np.array([1.0, 2.0]), np.array([3.0, 4.0]), 0.0, "mean", np.random.default_rng(0))
    assert p_not_worse == pytest.approx(1 / 6)
    assert p_worse == pytest.approx(1.0)
    # Shifting cur by 10 changes nothing about the ranks: still the extreme split.
    p_worse, _ = gate.shift_permutation_pvalues(
        np.array([13.0, 14.0]), np.array([1.0, 2.0]), 10.0, "mean", np.random.default_rng(0))
    assert p_worse == pytest.approx(1 / 6)
    assert gate.smallest_pvalue(2, 2) == pytest.approx(1 / 6)
    assert gate.smallest_pvalue(3, 3) == pytest.approx(1 / 20)


def test_permutation_monte_carlo_agrees_with_exact():
    ref, cur = normal_returns(1, 6), normal_returns(2, 6, mean=380.0)
    exact = gate.shift_permutation_pvalues(ref, cur, 10.0, "mean", np.random.default_rng(0))
    sampled = gate.shift_permutation_pvalues(ref, cur, 10.0, "mean", np.random.default_rng(0),
                                              max_exact=0, n_permutations=20_000)
    np.testing.assert_allclose(sampled, exact, atol=0.01)


def test_bootstrap_interval_uses_the_generator_and_brackets_the_difference():
    ref, cur = normal_returns(1, 10), normal_returns(2, 10, mean=350.0)
    a = gate.bootstrap_diff_interval(ref, cur, "mean", np.random.default_rng(3), confidence=0.9)
    b = gate.bootstrap_diff_interval(ref, cur, "mean", np.random.default_rng(3), confidence=0.9)
    c = gate.bootstrap_diff_interval(ref, cur, "mean", np.random.default_rng(4), confidence=0.9)
    assert a == b and a != c
    assert a[0] < cur.mean() - ref.mean() < a[1]


def test_bootstrap_interval_coverage_on_normal_data():
    # 30 seeds a side from normals 10 apart: the 90% interval should cover 10 about 90% of the
    # time (percentile bootstrap under-covers a little at this size).
    data = np.random.default_rng(7)
    covered = 0
    for rep in range(200):
        ref, cur = data.normal(100, 20, 30), data.normal(110, 20, 30)
        low, high = gate.bootstrap_diff_interval(ref, cur, "mean", np.random.default_rng(rep),
                                                  confidence=0.9, n_resamples=1000)
        covered += low < 10 < high
    assert 0.82 * 200 <= covered <= 0.96 * 200


def test_compare_group_interval_has_confidence_one_minus_two_alpha():
    ref, cur = normal_returns(1, 8), normal_returns(2, 8, mean=390.0)
    for alpha in (0.05, 0.2):
        result = gate.compare_group(ref, cur, np.random.default_rng(5), alpha=alpha)
        expected = gate.bootstrap_diff_interval(ref, cur, "mean", np.random.default_rng(5),
                                                 confidence=1 - 2 * alpha)
        assert (result.ci_low, result.ci_high) == expected


def test_seeds_for_power_formula():
    # 2 * (z_0.95 + z_0.8)^2 = 2 * (1.6449 + 0.8416)^2 = 12.37 -> 13 seeds.
    assert gate.seeds_for_power(1.0, 1.0, 0.05) == 13
    assert gate.seeds_for_power(2.0, 1.0, 0.05) == math.ceil(4 * 12.365)
    # No spread: the permutation test still needs 3 seeds a side to reach p = 1/20.
    assert gate.seeds_for_power(0.0, 1.0, 0.05) == 3
    assert math.isinf(gate.seeds_for_power(1.0, 0.0, 0.05))
    assert math.isnan(gate.seeds_for_power(math.nan, 1.0, 0.05))


def test_effective_sd_of_iqm_is_wider_than_sd_for_normal_data():
    x = np.random.default_rng(0).normal(0, 1, 4000)
    assert gate.effective_sd(x, "mean") == pytest.approx(1.0, abs=0.05)
    # At the standard normal, q = 0.6745 is the quartile and the 25%-winsorized variance is
    # (2 Phi(q) - 1) - 2 q phi(q) + 2 * 0.25 * q^2 = 0.0713 + 0.2275 = 0.2988; divided by
    # (1 - 2 * 0.25)^2 that is 1.195, so the trimmed mean's error is 1.093 sd / sqrt(n).
    assert gate.effective_sd(x, "iqm") == pytest.approx(1.093, abs=0.04)


# ------------------------------------------------------------------- decision rule, simulated

def test_rerun_of_same_distribution_passes_without_false_alarms():
    counts = verdicts(100, 20, drop=0.0)
    assert counts["regression"] <= 5  # alpha = 0.05 (loose bound; expected ~0)
    assert counts["pass"] >= 90  # 20 seeds, sd 5% of the mean: a drop of 10% is well excluded


def test_false_alarm_rate_at_the_margin_is_at_most_alpha():
    # A true drop of exactly min-effect is the hardest case the rule must not flag more than
    # alpha of the time (binomial(200, 0.05) exceeds 18 with probability < 0.1%).
    counts = verdicts(200, 10, drop=40.0, sd=40.0)
    assert counts["regression"] <= 18
    assert counts["pass"] <= 18


def test_large_drop_is_regression():
    # A drop of 5 margins with 10 seeds: missed with probability ~1e-6 per comparison.
    assert verdicts(50, 10, drop=200.0, sd=40.0) == Counter(regression=50)
    # 3 margins: power ~0.99 by the normal approximation.
    assert verdicts(100, 10, drop=120.0, sd=40.0)["regression"] >= 95


def test_two_seeds_are_inconclusive_never_regression():
    assert verdicts(100, 2, drop=0.0, sd=40.0) == Counter(inconclusive=100)
    # Even an obvious drop: with 2 seeds a side no permutation p-value can reach alpha.
    assert verdicts(30, 2, drop=200.0, sd=40.0) == Counter(inconclusive=30)
    result = gate.compare_group([400.0, 410.0], [100.0, 90.0], np.random.default_rng(0))
    assert "too few seeds" in result.note


def test_iqm_statistic_follows_the_same_rule():
    assert verdicts(50, 20, drop=0.0, statistic="iqm")["regression"] == 0
    assert verdicts(30, 10, drop=120.0, sd=40.0, statistic="iqm")["regression"] == 30


def test_power_prediction_holds():
    sd, mean = 60.0, 400.0
    n = int(gate.seeds_for_power(sd, 0.1 * mean, 0.05))
    unchanged = verdicts(100, n, drop=0.0, sd=sd, mean=mean)
    doubled = verdicts(100, n, drop=0.2 * mean, sd=sd, mean=mean)
    # Designed for 80%: an unchanged method passes, a drop of twice the margin is flagged.
    assert unchanged["pass"] >= 65 and unchanged["regression"] == 0
    assert doubled["regression"] >= 65 and doubled["pass"] == 0


def test_zero_spread_solved_runs_pass():
    result = gate.compare_group(np.full(5, 500.0), np.full(5, 500.0), np.random.default_rng(0))
    assert result.verdict == "pass"
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)


def test_identity_difference_reasons():
    base = pd.DataFrame({"seed": [0, 1], "config_hash": ["a", "a"],
                         "packages": [json.dumps(PACKAGES, sort_keys=True)] * 2,
                         "episodes_sha256": ["x", "y"]})
    assert compare.identity_difference(base, base.copy()) == ""
    newer = base.assign(packages=json.dumps({**PACKAGES, "torch": "2.14.0"}, sort_keys=True))
    assert "torch 2.13.0->2.14.0" in compare.identity_difference(base, newer)
    assert "config changed" in compare.identity_difference(base, base.assign(config_hash="b"))
    nondeterministic = base.assign(episodes_sha256=["x", "z"])
    assert "episodes differ for seeds [1]" in compare.identity_difference(base, nondeterministic)
    assert compare.identity_difference(base, base.assign(seed=[0, 2])) == "other seeds"
    both = compare.identity_difference(base, newer.assign(seed=[5, 6]))
    assert "torch 2.13.0->2.14.0" in both and "other seeds" in both


# ------------------------------------------------------------------------------------- CLI

@pytest.fixture
def reference(tmp_path) -> Path:
    """A reference of two groups, 10 seeds each, written through the CLI."""
    summary = write_summary(tmp_path / "ref_summary", {
        CARTPOLE: normal_returns(1, 10, mean=450.0, sd=15.0),
        PENDULUM: normal_returns(2, 10, mean=900.0, sd=30.0),
    })
    out = tmp_path / "ref.json"
    assert main(["reference", str(summary), "--out", str(out)]) == 0
    return out


def test_reference_follows_the_contract(reference):
    document = json.loads(reference.read_text())
    assert document["schema"] == 1 and document["created_at"]
    assert len(document["rows"]) == 20
    row = document["rows"][0]
    assert set(row) >= {"suite", "env", "variant", "setting", "seed", "config_hash",
                        "final_return", "steps_to_threshold", "censored", "episodes_digest",
                        "packages"}
    assert document["package_sets"][row["packages"]] == PACKAGES


def test_reference_against_itself_is_identical(tmp_path, reference, capsys):
    summary = tmp_path / "ref_summary"
    junit = tmp_path / "check.xml"
    code = main(["check", str(summary), "--reference", str(reference), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("identical") >= 2 and "2 identical" in out
    cases = ET.parse(junit).getroot().findall("testcase")
    assert len(cases) == 2 and not any(c.find("failure") is not None for c in cases)


def test_large_drop_exits_1(tmp_path, reference, capsys):
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(1, 10, mean=450.0, sd=15.0) - 200.0,  # same seeds, code broke
        PENDULUM: normal_returns(2, 10, mean=900.0, sd=30.0),
    }, config_salt="new code")
    code = main(["check", str(summary), "--reference", str(reference)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(l for l in out.splitlines() if "CartPole-v1" in l)
    assert "REGRESSION" in line
    assert "-> FAIL" in out


def test_rerun_with_other_seeds_passes(tmp_path, reference, capsys):
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(101, 10, mean=450.0, sd=15.0),
        PENDULUM: normal_returns(102, 10, mean=900.0, sd=30.0),
    }, seeds=range(100, 110))
    code = main(["check", str(summary), "--reference", str(reference)])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 pass" in out and "regression" not in out.lower().replace("0 regression", "")


def test_new_package_versions_are_tested_not_identical(tmp_path, reference, capsys):
    # Same seeds, config and episodes, newer torch: identity is not assumed, the test runs.
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(1, 10, mean=450.0, sd=15.0),
        PENDULUM: normal_returns(2, 10, mean=900.0, sd=30.0),
    }, packages={**PACKAGES, "torch": "2.14.0"})
    assert main(["check", str(summary), "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    assert "identical" not in out and "2 pass" in out
    assert "packages changed (torch 2.13.0->2.14.0)" in out


def test_missing_and_new_groups_are_shown_not_failed(tmp_path, reference, capsys):
    other = ("ci", "CartPole-v1", "vanilla", "default")
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(101, 1, mean=450.0, sd=15.0),  # 1 seed: p >= 1/11
        other: normal_returns(103, 3),
    }, seeds=[100, 101, 102])
    junit = tmp_path / "check.xml"
    code = main(["check", str(summary), "--reference", str(reference), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 inconclusive" in out and "1 missing" in out and "1 new" in out
    root = ET.parse(junit).getroot()
    cases = root.findall("testcase")
    assert len(cases) == 3 and root.get("tests") == "3" and root.get("skipped") == "3"
    assert all(c.find("skipped") is not None for c in cases)
    assert any("inconclusive" in c.find("skipped").get("message") for c in cases)


def test_junit_has_a_failure_per_regression(tmp_path, reference):
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(101, 10, mean=200.0, sd=15.0),
        PENDULUM: normal_returns(102, 10, mean=905.0, sd=30.0),
    }, seeds=range(100, 110))
    junit = tmp_path / "reports" / "check.xml"
    assert main(["check", str(summary), "--reference", str(reference), "--junit", str(junit)]) == 1
    root = ET.parse(junit).getroot()
    cases = root.findall("testcase")
    assert len(cases) == 2 and root.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("classname") for c in failed] == ["pgbench.ci.CartPole-v1"]
    passed = [c for c in cases if c.find("failure") is None and c.find("skipped") is None]
    assert len(passed) == 1


def test_power_section_and_determinism(tmp_path, reference, capsys):
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(101, 10, mean=440.0, sd=15.0),
        PENDULUM: normal_returns(102, 4, mean=900.0, sd=30.0),
    }, seeds=range(100, 110))
    argv = ["check", str(summary), "--reference", str(reference), "--power", "--seed", "7"]
    main(argv)
    first = capsys.readouterr().out
    main(argv)
    assert capsys.readouterr().out == first
    assert "80% power" in first
    power_lines = first.split("80% power")[1].splitlines()
    assert any("CartPole-v1" in l and l.rstrip().endswith(("yes", "no")) for l in power_lines)


def test_group_result_does_not_depend_on_other_groups(tmp_path, reference, capsys):
    both = write_summary(tmp_path / "both", {
        CARTPOLE: normal_returns(101, 10, mean=440.0, sd=15.0),
        PENDULUM: normal_returns(102, 10, mean=900.0, sd=30.0),
    }, seeds=range(100, 110))
    alone = write_summary(tmp_path / "alone", {
        CARTPOLE: normal_returns(101, 10, mean=440.0, sd=15.0)}, seeds=range(100, 110))
    lines = []
    for summary in (both, alone):
        main(["check", str(summary), "--reference", str(reference)])
        lines.append(next(l for l in capsys.readouterr().out.splitlines() if "CartPole" in l))
    assert lines[0] == lines[1]


# ------------------------------------------------------------------------------ bad input

def run_expecting_error(argv, capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_missing_reference_exits_2(tmp_path, capsys):
    summary = write_summary(tmp_path / "cur", {CARTPOLE: normal_returns(1, 3)})
    err = run_expecting_error(["check", str(summary), "--reference",
                               str(tmp_path / "nope.json")], capsys)
    assert "nope.json not found" in err and "pgbench reference" in err


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not valid JSON"),
    ("[]", "top level is not a JSON object"),
    ('{"schema": 2, "rows": []}', "schema is 2, not 1"),
    ('{"schema": 1, "rows": [], "package_sets": {}}', "'rows' must be a non-empty list"),
    ('{"schema": 1, "package_sets": {"p": {}}, "rows": [{"suite": "ci", "env": "E", '
     '"variant": "v", "setting": "default", "seed": 0, "config_hash": "h", '
     '"episodes_digest": "d", "packages": "p"}]}', "rows[0].final_return is None"),
    ('{"schema": 1, "package_sets": {}, "rows": [{"suite": "ci", "env": "E", '
     '"variant": "v", "setting": "default", "seed": 0, "config_hash": "h", '
     '"final_return": 1.0, "episodes_digest": "d", "packages": "p"}]}',
     "not a key of 'package_sets'"),
])
def test_malformed_reference_exits_2(tmp_path, capsys, content, expected):
    summary = write_summary(tmp_path / "cur", {CARTPOLE: normal_returns(1, 3)})
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    err = run_expecting_error(["check", str(summary), "--reference", str(bad)], capsys)
    assert "bad.json" in err and expected in err


def test_missing_or_malformed_summary_exits_2(tmp_path, reference, capsys):
    err = run_expecting_error(["check", str(tmp_path / "empty"), "--reference", str(reference)],
                              capsys)
    assert "runs.parquet is missing" in err and "pgbench aggregate" in err

    summary = write_summary(tmp_path / "cur", {CARTPOLE: normal_returns(1, 3)})
    runs = pd.read_parquet(summary / "runs.parquet").drop(columns=["episodes_sha256"])
    runs.to_parquet(summary / "runs.parquet")
    err = run_expecting_error(["check", str(summary), "--reference", str(reference)], capsys)
    assert "lacks columns episodes_sha256" in err

    (summary / "runs.parquet").write_bytes(b"not parquet")
    err = run_expecting_error(["check", str(summary), "--reference", str(reference)], capsys)
    assert "not a readable Parquet file" in err

    err = run_expecting_error(["reference", str(tmp_path / "empty"), "--out",
                               str(tmp_path / "r.json")], capsys)
    assert "runs.parquet is missing" in err
    assert not (tmp_path / "r.json").exists()


def test_nan_final_return_exits_2(tmp_path, reference, capsys):
    summary = write_summary(tmp_path / "cur", {CARTPOLE: np.array([400.0, np.nan, 420.0])})
    err = run_expecting_error(["check", str(summary), "--reference", str(reference)], capsys)
    assert "final_return is not a finite number" in err and "seed 1" in err


def test_bad_options_are_rejected(tmp_path, reference, capsys):
    summary = tmp_path / "ref_summary"
    with pytest.raises(SystemExit) as exc:
        main(["check", str(summary), "--reference", str(reference), "--alpha", "0.7"])
    assert exc.value.code == 2
    assert "alpha must be in" in capsys.readouterr().err


def test_other_platform_is_tested_not_identical(tmp_path, reference, capsys):
    # Same seeds, config, packages and episode bytes, but another pinned dispatch: bytes are
    # not promised there, so the groups go through the test and the note says why.
    summary = write_summary(tmp_path / "cur", {
        CARTPOLE: normal_returns(1, 10, mean=450.0, sd=15.0),
        PENDULUM: normal_returns(2, 10, mean=900.0, sd=30.0),
    }, dispatch={**DISPATCH, "aten_cpu_capability": "avx512"})
    assert main(["check", str(summary), "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    assert "identical" not in out.replace("identical not expected", "") and "2 pass" in out
    assert ("other platform (dispatch.aten_cpu_capability avx2->avx512): identical not expected"
            in out)


def test_unknown_platform_never_counts_as_identical(tmp_path, capsys):
    groups = {CARTPOLE: normal_returns(1, 10, mean=450.0, sd=15.0)}
    summary = write_summary(tmp_path / "summary", groups, dispatch=None)
    ref = tmp_path / "ref.json"
    assert main(["reference", str(summary), "--out", str(ref)]) == 0
    assert json.loads(ref.read_text())["rows"][0]["platform"] == "unknown"
    assert main(["check", str(summary), "--reference", str(ref)]) == 0
    out = capsys.readouterr().out
    assert "platform unknown (the reference records no pinned dispatch)" in out
    assert "1 pass" in out


def test_reference_stores_the_gate_settings_check_uses(tmp_path, capsys):
    # mean_return is final_return - 100 here: a drop of 40 is 10% of final_return (450) but
    # 11.4% of mean_return (350), so the metric and the margin the reference stores decide.
    groups = {CARTPOLE: normal_returns(1, 40, mean=450.0, sd=5.0)}
    summary = write_summary(tmp_path / "summary", groups)
    ref = tmp_path / "ref.json"
    assert main(["reference", str(summary), "--out", str(ref), "--metric", "mean_return",
                 "--min-effect", "0.02"]) == 0
    document = json.loads(ref.read_text())
    assert document["gate"] == {"metric": "mean_return", "min_effect": 0.02}
    assert document["rows"][0]["mean_return"] == document["rows"][0]["final_return"] - 100
    worse = write_summary(tmp_path / "cur", {CARTPOLE: normal_returns(5, 40, 450.0, 5.0) - 40},
                          seeds=range(100, 140))
    assert main(["check", str(worse), "--reference", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "(mean_return, alpha=0.05, min-effect=2%" in out
    ref_stat = float(np.mean(normal_returns(1, 40, mean=450.0, sd=5.0))) - 100
    assert f"{ref_stat:.1f}" in out  # the table shows the mean return, not the final return
    # the command line overrides the stored settings: 10% of final_return tolerates 40 +- noise
    code = main(["check", str(worse), "--reference", str(ref), "--metric", "final_return",
                 "--min-effect", "0.2"])
    assert code == 0 and "1 pass" in capsys.readouterr().out


def test_power_sizes_seeds_for_the_drop_to_detect(tmp_path, reference, capsys):
    # sd 15 around 450, margin 2% (9), drop to detect 10% (45): n = 2 (z.95 + z.8)^2 sd^2/36^2
    summary = tmp_path / "ref_summary"
    assert main(["check", str(summary), "--reference", str(reference), "--power",
                 "--min-effect", "0.02", "--detect", "0.1"]) == 0
    out = capsys.readouterr().out
    values = normal_returns(1, 10, mean=450.0, sd=15.0)
    sd, ref_mean = float(np.std(values, ddof=1)), float(np.mean(values))
    z = 1.6448536269514722 + 0.8416212335729143
    expected = max(3, math.ceil(2 * (z * sd / (0.08 * ref_mean)) ** 2))
    line = next(l for l in out.splitlines() if l.startswith("ci/CartPole-v1") and "yes" in l)
    assert line.split()[-2] == str(expected)
    assert main(["check", str(summary), "--reference", str(reference), "--power",
                 "--min-effect", "0.1", "--detect", "0.05"]) == 2


def test_detect_makes_sized_seeds_pass_unchanged_code_and_catch_the_design_drop():
    # sd 50 around 400, margin 2% (8), design drop 10% (40): --power's n is 31 seeds a side.
    # With n seeds both errors are about 20%: unchanged code passes (a 10% drop excluded) and
    # a 10% drop is called a regression about 80% of the time each; 200 seeded repetitions,
    # so a rate below 65% (5 binomial sd under 80%) means the rule is broken.
    n = int(gate.seeds_for_power(50.0, 32.0, 0.05))
    assert n == 31
    data = np.random.default_rng(7)
    passes = regressions = false_alarms = 0
    for rep in range(200):
        ref = data.normal(400.0, 50.0, n)
        rng = np.random.default_rng(rep)
        same = gate.compare_group(ref, data.normal(400.0, 50.0, n), rng, min_effect=0.02,
                                   detect=0.1)
        worse = gate.compare_group(ref, data.normal(360.0, 50.0, n), rng, min_effect=0.02,
                                    detect=0.1)
        passes += same.verdict == "pass"
        regressions += worse.verdict == "regression"
        false_alarms += same.verdict == "regression"
    assert passes / 200 > 0.65 and regressions / 200 > 0.65
    # a false alarm needs the 2% margin exceeded at p <= 0.05: about 1.3% of repetitions
    assert false_alarms <= 10
