"""The report's validation section (pgbench/report/validation.py): pgbench against its reference
implementations, from the validate-* claims and their runs, with values computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
from synthetic import run_rows, write_summary

from pgbench.claims.evaluate import evaluate_claims
from pgbench.claims.model import load_claims
from pgbench.report import validation


def _arm(variant, suite, values, cpu):
    rows = run_rows(variant, [1e5] * len(values), suite=suite, final_return=values)
    for row, value in zip(rows, values):
        row["mean_return"] = float(value)
        row["cpu_s"] = cpu
    return rows


def _summary(tmp_path, rows):
    path = write_summary(tmp_path / "s", rows)
    table = evaluate_claims(load_claims(), path)
    # the two tables the section reads (a Summary's runs and claims)
    return SimpleNamespace(runs=pd.read_parquet(path / "runs.parquet"), claims=table)


def test_one_row_per_algorithm_env_and_test_with_both_sides_and_the_verdict(tmp_path):
    # pgbench's ppo 95.0 .. 95.9 against sb3_ppo 100.0 .. 100.9 (10 seeds each): means 95.45 and
    # 100.45, ratio - 1 = 95.45 / 100.45 - 1 = -4.98%; every resample's ratio - 1 lies in
    # [95.0 / 100.9 - 1, 95.9 / 100.0 - 1] = [-5.85%, -4.10%], above the -10% margin
    ours = [95.0 + 0.1 * i for i in range(10)]
    reference = [100.0 + 0.1 * i for i in range(10)]
    summary = _summary(tmp_path, _arm("ppo", "validate_ppo", ours, 50.0)
                       + _arm("sb3_ppo", "validate_ppo", reference, 80.0))
    block = validation.section(summary, load_claims())
    assert block["margin"] == "10%"
    rows = {r["test"]: r for r in block["rows"]}
    assert set(rows) == {"AUC (mean return)", "final return"}
    for r in rows.values():
        assert (r["algorithm"], r["reference"], r["env"]) == ("ppo", "sb3_ppo", "CartPole-v1")
        assert (r["a"], r["b"]) == ("95.5 (10)", "100 (10)")  # 3 significant digits
        assert r["ratio"].startswith("-5.0% [")
        low, high = (float(x.strip(" %")) for x in r["ratio"].split("[")[1].rstrip("]").split(","))
        assert -5.85 <= low <= high <= -4.10
        assert (r["verdict"], r["verdict_class"]) == ("reproduced", "reproduced")
        assert r["cpu"] == "50.0 s / 1m 20s"


def test_a_clearly_worse_implementation_is_not_reproduced(tmp_path):
    # 80.0 .. 80.9 against 100.0 .. 100.9: every resample's ratio - 1 is below -19%
    summary = _summary(tmp_path, _arm("dqn", "validate_dqn", [80.0 + 0.1 * i for i in range(10)], 1.0)
                       + _arm("sb3_dqn", "validate_dqn", [100.0 + 0.1 * i for i in range(10)], 1.0))
    rows = validation.section(summary, load_claims())["rows"]
    assert [r["verdict"] for r in rows] == ["not reproduced", "not reproduced"]
    assert [r["algorithm"] for r in rows] == ["dqn", "dqn"]


def test_no_section_without_a_validation_suite(tmp_path):
    summary = _summary(tmp_path, run_rows("vanilla", [1e5] * 3))
    assert validation.section(summary, load_claims()) is None


def test_a_claim_not_run_names_its_suite_and_the_configs_that_have_it(tmp_path):
    from pgbench.report.claim_tables import _not_run_text, suite_configs

    (tmp_path / "a.yaml").write_text("suites:\n  algos: {}\n  slides: {}\n")
    (tmp_path / "b.yaml").write_text("suites:\n  slides: {}\n")
    (tmp_path / "broken.yaml").write_text("suites: [\n")
    configs = suite_configs(tmp_path)
    assert configs == {"algos": ["config/a.yaml"], "slides": ["config/a.yaml", "config/b.yaml"]}
    assert (_not_run_text("slides", configs)
            == "no runs of suite slides in this summary (it is in config/a.yaml, config/b.yaml)")
    assert _not_run_text("qlearning", configs) == "no runs of suite qlearning in this summary"
    # the checkout's own configs: the default suites are in config/config.yaml
    assert "config/config.yaml" in suite_configs()["slides"]
