"""The rows ``claims/evaluate`` writes for a claim: which envs get a row, what a "not run" row
says, the tolerance range beside a verdict, and the random stream each row draws from (issue 22's
mutation run found these unchecked)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from synthetic import run_rows, write_summary

from pgbench.claims.evaluate import evaluate_claims
from pgbench.claims.model import load_claims
from pgbench.claims.registry import STATISTICS, ClaimContext, StatisticResult, holds_for, register_statistic
from pgbench.core.errors import UserError
from pgbench.core.seeding import named_rng

K = 1000


def _samples_claim():
    return [c for c in load_claims() if c.id == "q-learning-samples"]


def _qlearning_runs(tmp_path, envs):
    """PPO solving at 100k..118k env steps, DQN at 20k..29k, on each of ``envs``."""
    rows = []
    for env in envs:
        rows += run_rows("ppo", [100 * K + 2 * K * i for i in range(10)], suite="qlearning", env=env)
        rows += run_rows("dqn", [20 * K + K * i for i in range(10)], suite="qlearning", env=env)
    return write_summary(tmp_path / "summary", rows)


def test_an_env_without_runs_gets_its_own_not_run_row_and_the_others_are_still_judged(tmp_path):
    """The claim names CartPole-v1 then Acrobot-v1; only Acrobot-v1 has runs. CartPole-v1's row
    says why, under its own env and setting label, and Acrobot-v1 is judged after it."""
    table = evaluate_claims(_samples_claim(), _qlearning_runs(tmp_path, ["Acrobot-v1"]), n_resamples=200)
    assert table["env"].tolist() == ["CartPole-v1", "Acrobot-v1"]
    assert table["setting"].tolist() == ["env=CartPole-v1", "env=Acrobot-v1"]
    missing, judged = table.iloc[0], table.iloc[1]
    assert missing["verdict"] == "not run"
    assert missing["detail"] == "env 'CartPole-v1' is not in suite 'qlearning'"
    assert missing["holds_for"] == ""
    assert judged["verdict"] == "reproduced"


def test_a_judged_row_says_over_which_thresholds_its_verdict_holds(tmp_path):
    table = evaluate_claims(_samples_claim(), _qlearning_runs(tmp_path, ["CartPole-v1", "Acrobot-v1"]),
                            n_resamples=200)
    for _, row in table.iterrows():
        assert row["verdict"] == "reproduced"
        expected = holds_for("reproduced", row["ci_low"], row["ci_high"], ">=", "factor")
        assert row["holds_for"] == expected and expected.startswith("for any factor < ")


def test_a_suite_missing_from_the_summary_is_named(tmp_path):
    summary = write_summary(tmp_path / "summary", run_rows("vanilla", [1e5] * 3))
    [row] = evaluate_claims(_samples_claim(), summary).to_dict("records")
    assert row["verdict"] == "not run" and row["holds_for"] == ""
    assert row["detail"] == "suite 'qlearning' is not in the summary (the pipeline did not run it)"


def test_a_main_test_draws_from_the_stream_named_without_its_test(tmp_path, monkeypatch):
    """A claim's main test draws from named_rng(seed, id, env, setting), so adding a second test
    under ``also`` leaves the main test's numbers as they were; the second test draws from a
    stream that also names its test."""
    seen = {}

    @register_statistic("test_first_draw", roles=("a",), params=None)
    def first_draw(ctx: ClaimContext):
        seen[ctx.claim.test] = ctx.rng.random()
        return StatisticResult(1.0, 1.0, 1.0, 3, "first draw")

    monkeypatch.setitem(STATISTICS, "test_first_draw", STATISTICS.pop("test_first_draw"))
    path = tmp_path / "claims.yaml"
    path.write_text(
        "claims:\n  - id: draws\n    source: 001_784bf18d2f77e7fb.txt\n    quote: q\n"
        "    suite: slides\n    env: CartPole-v1\n    compare: {a: vanilla}\n"
        "    statistic: test_first_draw\n    direction: '>='\n    threshold: 0\n"
        "    also:\n      - test: second\n")
    summary = write_summary(tmp_path / "summary", run_rows("vanilla", [1e5] * 3))
    evaluate_claims(load_claims(path), summary, seed=4)
    assert seen["main"] == named_rng(4, "draws", "CartPole-v1", "default").random()
    assert seen["second"] == named_rng(4, "draws", "CartPole-v1", "default", "second").random()


def test_resample_counts_from_100_up_are_accepted(tmp_path):
    summary = _qlearning_runs(tmp_path, ["CartPole-v1"])
    assert len(evaluate_claims(_samples_claim(), summary, n_resamples=100)) == 2
    with pytest.raises(UserError, match=re.escape("bad n_resamples 99; accepted: an integer >= 100")):
        evaluate_claims(_samples_claim(), summary, n_resamples=99)
    assert np.isfinite(evaluate_claims(_samples_claim(), summary, n_resamples=100)["ci_low"].iloc[0])


def test_a_median_beyond_the_budget_asks_for_a_larger_budget_not_more_seeds(tmp_path):
    """Every DQN run censored at 50k env steps (its median is only known to be > 50k), PPO solving
    at 60k..69k: the ratio PPO / DQN is at most 69k / 50k, its estimate 0 only a bound. The row is
    inconclusive and says a larger budget would settle it; it neither estimates the seeds needed
    nor says the estimate points against the claim."""
    rows = (run_rows("ppo", [60 * K + K * i for i in range(10)], suite="qlearning")
            + run_rows("dqn", [50 * K] * 10, [True] * 10, suite="qlearning"))
    table = evaluate_claims(_samples_claim(), write_summary(tmp_path / "s", rows), n_resamples=200)
    row = table[table["env"] == "CartPole-v1"].iloc[0]
    assert row["verdict"] == "inconclusive"
    assert row["estimate"] == 0.0 and row["ci_high"] <= 69 / 50
    assert np.isnan(row["seeds_needed"])
    assert "only by a larger step budget" in row["detail"]
    assert "points against the claim" not in row["detail"]
