"""Claims as data: loading, validation, verdicts on synthetic summaries with known effects."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import run_rows, write_summary

from pgbench.claims.evaluate import evaluate_claims
from pgbench.claims.model import load_claims
from pgbench.claims.registry import (
    STATISTICS,
    ClaimContext,
    StatisticResult,
    register_statistic,
    verdict,
)
from pgbench.cli import main
from pgbench.core import contracts
from pgbench.core.errors import UserError
from pgbench.stats import survival

SOURCES = Path("/work/shared/sources")
SPEEDUP = [c for c in load_claims() if c.id == "slides-speedup"]


def _summary(tmp_path, rows):
    return write_summary(tmp_path / "summary", rows)


def _speedup_rows(table):
    return table[table["claim_id"] == "slides-speedup"]


def _lognormal(rng, median, sigma, n):
    return median * rng.lognormal(0.0, sigma, size=n)


def test_packaged_claims_load_and_cover_the_design_table():
    ids = {c.id for c in load_claims()}
    assert {"slides-vanilla", "slides-improved", "slides-speedup", "baseline-unbiased",
            "baseline-variance", "causality-variance", "value-baseline", "ppo-vs-vpg",
            "optimal-baseline-variance"} <= ids


@pytest.mark.skipif(not SOURCES.is_dir(), reason="the source texts are not on this machine")
def test_every_quote_is_the_sources_own_words():
    def normal(text):  # markdown emphasis (* and **) dropped, line breaks joined
        return " ".join(text.replace("*", "").split())

    for claim in load_claims():
        source = normal((SOURCES / claim.source).read_text(encoding="utf-8"))
        assert normal(claim.quote) in source, claim.id


def test_verdict_rule():
    assert verdict(3.5, 6.0, 3.0, ">=") == "reproduced"
    assert verdict(1.0, 2.9, 3.0, ">=") == "not reproduced"
    assert verdict(2.0, 4.0, 3.0, ">=") == "inconclusive"
    assert verdict(0.0, 0.0, 0.0, ">=") == "not reproduced"  # no difference at all
    assert verdict(0.5, 0.9, 1.0, "<=") == "reproduced"
    assert verdict(1.1, 1.4, 1.0, "<=") == "not reproduced"
    assert verdict(0.8, 1.2, 1.0, "<=") == "inconclusive"


def test_a_5x_speedup_with_many_seeds_is_reproduced(tmp_path):
    rng = np.random.default_rng(0)
    rows = (run_rows("vanilla", _lognormal(rng, 800e3, 0.3, 20), setting="dropout=0.0")
            + run_rows("rtg_baseline", _lognormal(rng, 160e3, 0.3, 20),
                       setting="baseline=ema, dropout=0.0"))
    table = evaluate_claims(SPEEDUP, _summary(tmp_path, rows))
    row = table.iloc[0]
    assert len(table) == 1 and row["setting"] == "baseline=ema, dropout=0.0"
    assert row["verdict"] == "reproduced", row["detail"]
    # the ratio's CI holds 5, so the fold's CI starts at 1; it ends well inside the factor 3
    assert row["ci_low"] == 1.0 and row["estimate"] < row["ci_high"] < 3.0
    assert row["n_seeds"] == 20 and math.isnan(row["seeds_needed"])


def test_no_speedup_is_not_reproduced(tmp_path):
    rng = np.random.default_rng(1)
    rows = (run_rows("vanilla", _lognormal(rng, 300e3, 0.3, 20))
            + run_rows("rtg_baseline", _lognormal(rng, 300e3, 0.3, 20)))
    row = evaluate_claims(SPEEDUP, _summary(tmp_path, rows)).iloc[0]
    assert row["verdict"] == "not reproduced", row["detail"]
    assert row["ci_low"] >= 3.0  # a ratio near 1 is 5 times off the quoted 5


def test_three_seeds_of_a_noisy_2x_effect_are_inconclusive(tmp_path):
    rng = np.random.default_rng(2)
    rows = (run_rows("vanilla", _lognormal(rng, 400e3, 0.8, 3))
            + run_rows("rtg_baseline", _lognormal(rng, 200e3, 0.8, 3)))
    row = evaluate_claims(SPEEDUP, _summary(tmp_path, rows)).iloc[0]
    assert row["verdict"] == "inconclusive", row["detail"]
    assert row["ci_low"] < 3.0 < row["ci_high"]
    assert row["n_seeds"] == 3
    if row["estimate"] < 3.0:  # the estimate on the claim's side: more seeds could settle it
        assert row["seeds_needed"] > 3
    else:
        assert math.isnan(row["seeds_needed"]) and "points against the claim" in row["detail"]


def test_censored_slow_arm_gives_only_a_lower_bound_which_cannot_settle_about_5x(tmp_path):
    # vanilla never solves within its 1M budget in 15 of 20 seeds; rtg_baseline solves at ~100k
    rng = np.random.default_rng(3)
    times = np.where(np.arange(20) < 5, 600e3, 1e6)
    fast = _lognormal(rng, 100e3, 0.2, 20)
    rows = (run_rows("vanilla", times, censored=np.arange(20) >= 5)
            + run_rows("rtg_baseline", fast))
    row = evaluate_claims(SPEEDUP, _summary(tmp_path, rows)).iloc[0]
    assert row["estimate"] == math.inf and row["ci_high"] == math.inf
    # what the data do say: vanilla's median is past its longest run (1M), so the speed-up is
    # above 1M / rtg_baseline's median, and its fold from the quoted 5 above a fifth of that
    fast_median = survival.km_median(fast, np.zeros(20, bool)).median
    bound = 1e6 / fast_median / 5
    shown = float(row["estimate_text"].removeprefix("> "))
    assert row["estimate_text"].startswith("> ") and bound * 0.99 < shown <= bound  # rounded down
    # the speed-up is at least ~6x in the bootstrap (vanilla's 600k solvers over ~100k), which
    # is as consistent with "about 5x" as with 100x: two-sided, that is open
    assert row["verdict"] == "inconclusive"
    assert math.isnan(row["seeds_needed"])  # more steps, not more seeds, would settle it
    assert "more than half" in row["detail"]


def test_settings_left_open_give_one_row_each_paired_on_shared_settings(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for k, dropout in enumerate(("0.0", "0.6")):
        rows += run_rows("vanilla", _lognormal(rng, 800e3, 0.3, 8), setting=f"dropout={dropout}",
                         first_seed=100 * k)
        for j, baseline in enumerate(("ema", "whiten")):
            # dropout=0.6 arms are no faster than vanilla: the verdict must differ by setting
            median = 100e3 if dropout == "0.0" else 800e3
            rows += run_rows("rtg_baseline", _lognormal(rng, median, 0.3, 8),
                             setting=f"baseline={baseline}, dropout={dropout}",
                             first_seed=100 * k + 10 * j)
    table = evaluate_claims(SPEEDUP, _summary(tmp_path, rows))
    assert table["setting"].tolist() == ["baseline=ema, dropout=0.0", "baseline=ema, dropout=0.6",
                                         "baseline=whiten, dropout=0.0", "baseline=whiten, dropout=0.6"]
    verdicts = dict(zip(table["setting"], table["verdict"]))
    assert verdicts["baseline=ema, dropout=0.0"] == "reproduced"
    assert verdicts["baseline=whiten, dropout=0.6"] == "not reproduced"


def test_quoted_figures_within_a_factor_of_three(tmp_path):
    rng = np.random.default_rng(5)
    rows = (run_rows("vanilla", _lognormal(rng, 700e3, 0.2, 20), steps_per_episode=80)
            + run_rows("rtg_baseline", _lognormal(rng, 20e3, 0.2, 20)))
    claims = [c for c in load_claims()
              if c.id in ("slides-vanilla", "slides-improved") and c.test == "typical"]
    table = evaluate_claims(claims, _summary(tmp_path, rows)).set_index("claim_id")
    assert table.loc["slides-vanilla", "verdict"] == "reproduced"  # 700k vs ~800k
    assert table.loc["slides-improved", "verdict"] == "not reproduced"  # 20k vs ~160k: 8x off
    assert table.loc["slides-improved", "estimate"] == pytest.approx(8.0, rel=0.2)
    detail = table.loc["slides-vanilla", "detail"]
    assert "800k" in detail and "10.0k" not in detail and "episodes" in detail


def test_value_baseline_gives_a_row_per_env_and_absent_suites_are_not_run(tmp_path):
    rng = np.random.default_rng(6)
    rows = []
    for env, gain in (("CartPole-v0", 40.0), ("InvertedPendulum-v5", 0.0)):
        rows += run_rows("rtg", [1e5] * 10, suite="cs234", env=env,
                         final_return=rng.normal(150, 10, 10))
        rows += run_rows("rtg_value", [1e5] * 10, suite="cs234", env=env,
                         final_return=rng.normal(150 + gain, 10, 10), first_seed=10)
    claims = [c for c in load_claims() if c.id in ("value-baseline", "ppo-vs-vpg", "slides-speedup")]
    table = evaluate_claims(claims, _summary(tmp_path, rows))
    vb = table[table["claim_id"] == "value-baseline"].set_index("env")
    assert vb.loc["CartPole-v0", "verdict"] == "reproduced"
    assert vb.loc["CartPole-v0", "setting"] == "env=CartPole-v0"
    assert vb.loc["InvertedPendulum-v5", "verdict"] in ("inconclusive", "not reproduced")
    for cid in ("ppo-vs-vpg", "slides-speedup"):
        row = table[table["claim_id"] == cid].iloc[0]
        assert row["verdict"] == "not run" and "is not in the summary" in row["detail"]


def test_a_known_variant_without_runs_is_not_run_and_fixed_settings_filter(tmp_path):
    rng = np.random.default_rng(8)
    summary = _summary(tmp_path, run_rows("vanilla", _lognormal(rng, 800e3, 0.3, 5), setting="dropout=0.0")
                       + run_rows("vanilla", _lognormal(rng, 800e3, 0.3, 5), setting="dropout=0.6",
                                  first_seed=10))
    row = evaluate_claims(SPEEDUP, summary).iloc[0]
    assert row["verdict"] == "not run" and "no runs of variant 'rtg_baseline'" in row["detail"]
    path = _claims_file(tmp_path, compare="{a: vanilla}", statistic="km_median_fold",
                        params="{quoted_steps: 800000, quoted_episodes: 10000}", direction='"<="',
                        fixed="{dropout: 0.6}")
    table = evaluate_claims(load_claims(path), summary)
    assert table["setting"].tolist() == ["dropout=0.6"]
    path = _claims_file(tmp_path, compare="{a: vanilla}", statistic="km_median_fold",
                        params="{quoted_steps: 800000, quoted_episodes: 10000}", direction='"<="',
                        fixed="{dropout: 0.3}")
    row = evaluate_claims(load_claims(path), summary).iloc[0]
    assert row["verdict"] == "not run" and "dropout=0.3" in row["detail"]


def test_gradient_claims_without_their_statistic_or_table_are_not_run(tmp_path):
    rows = run_rows("vanilla", [1e5] * 3)
    grad = [c for c in load_claims() if c.table == "gradstudy_pairs"]
    assert len(grad) == 4
    table = evaluate_claims(grad, _summary(tmp_path, rows))
    assert (table["verdict"] == "not run").all()
    assert table["detail"].str.contains("gradclaims|gradstudy_pairs.parquet").all()


def test_a_registered_statistic_is_used_by_a_claims_file(tmp_path, monkeypatch):
    @register_statistic("test_constant", roles=None, params=None, table="gradstudy_pairs")
    def constant(ctx: ClaimContext):
        assert set(ctx.table["env"]) == {"CartPole-v1"}
        return [StatisticResult(0.5, 0.4, 0.6, 7, "constant", setting=f"snapshot={s}")
                for s in ctx.table["snapshot"]]

    # hand the entry to monkeypatch so the registry is restored after the test
    monkeypatch.setitem(STATISTICS, "test_constant", STATISTICS.pop("test_constant"))
    summary = _summary(tmp_path, run_rows("vanilla", [1e5]))
    pd.DataFrame({"env": ["CartPole-v1", "CartPole-v1", "Acrobot-v1"],
                  "snapshot": ["init", "q75", "init"]}).to_parquet(summary / "gradstudy_pairs.parquet")
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent("""\
        claims:
          - id: custom
            source: 001_784bf18d2f77e7fb.txt
            quote: "There are also other, better baselines."
            suite: variance
            env: CartPole-v1
            table: gradstudy_pairs
            statistic: test_constant
            direction: "<="
            threshold: 1
        """))
    table = evaluate_claims(load_claims(path), summary)
    assert table["setting"].tolist() == ["snapshot=init", "snapshot=q75"]
    assert (table["verdict"] == "reproduced").all()


GOOD = {
    "id": "x-claim", "source": "001_784bf18d2f77e7fb.txt", "quote": "q", "suite": "slides",
    "env": "CartPole-v1", "compare": "{a: vanilla, b: rtg_baseline}",
    "statistic": "km_median_ratio", "direction": '">="', "threshold": "3",
}


def _claims_file(tmp_path, **changes):
    fields = {**GOOD, **changes}
    lines = ["claims:", "  - id: " + fields.pop("id")]
    lines += [f"    {k}: {v}" for k, v in fields.items() if v is not None]
    path = tmp_path / "claims.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_good_claims_file_of_these_tests_loads(tmp_path):
    assert load_claims(_claims_file(tmp_path))[0].compare == {"a": "vanilla", "b": "rtg_baseline"}


@pytest.mark.parametrize("changes, message", [
    ({"compare": "{a: vanila, b: rtg_baseline}"}, r"claim 'x-claim': field 'compare.a' names unknown variant 'vanila'; accepted: vanilla, rtg"),
    ({"direction": '">"'}, r"claim 'x-claim': field 'direction' is '>'; accepted: >=, <="),
    ({"threshold": "lots"}, r"claim 'x-claim': field 'threshold'.*a finite number"),
    ({"statistic": "median_speed"}, r"claim 'x-claim': field 'statistic'.*not registered; accepted: .*km_median_ratio"),
    ({"quote": None}, r"claim 'x-claim': field 'quote' is missing"),
    ({"colour": "red"}, r"claim 'x-claim': field 'colour' is not a claim field"),
    ({"compare": "{a: vanilla}"}, r"claim 'x-claim': field 'compare' has roles a but statistic 'km_median_ratio' compares a, b"),
    ({"params": "{rule: fastest}"}, r"claim 'x-claim': field 'params.rule' is 'fastest'; accepted: running_reward, last100"),
    ({"params": "{speed: 3}"}, r"claim 'x-claim': field 'params.speed' is not a parameter"),
    ({"statistic": "km_median_fold", "compare": "{a: vanilla}",
      "params": "{quoted_steps: 1, quoted_episodes: 1, measure: gradient_steps}"},
     r"claim 'x-claim': field 'params.measure' is 'gradient_steps'; accepted: steps, episodes"),
    ({"source": "slides.pdf"}, r"claim 'x-claim': field 'source'"),
    ({"id": "Bad Id"}, r"field 'id'"),
])
def test_malformed_claims_fail_naming_the_claim_and_field(tmp_path, changes, message):
    with pytest.raises(UserError, match=message):
        load_claims(_claims_file(tmp_path, **changes))


def test_unparseable_or_misshapen_claims_files_fail_clearly(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text("claims: [unclosed\n")
    with pytest.raises(UserError, match=re.escape(str(path)) + ".*not valid YAML"):
        load_claims(path)
    path.write_text("- just a list\n")
    with pytest.raises(UserError, match="list under 'claims'"):
        load_claims(path)
    with pytest.raises(UserError, match="cannot read claims file"):
        load_claims(tmp_path / "absent.yaml")


def test_cli_writes_the_same_claims_table_twice(tmp_path, capsys):
    rng = np.random.default_rng(7)
    rows = (run_rows("vanilla", _lognormal(rng, 800e3, 0.3, 10))
            + run_rows("rtg_baseline", _lognormal(rng, 160e3, 0.3, 10)))
    summary = _summary(tmp_path, rows)
    assert main(["claims", str(summary), "--n-resamples", "500"]) == 0
    first = pd.read_parquet(summary / "claims.parquet")
    out = capsys.readouterr().out
    assert "slides-speedup" in out and "reproduced" in out
    assert main(["claims", str(summary), "--n-resamples", "500"]) == 0
    pd.testing.assert_frame_equal(first, pd.read_parquet(summary / "claims.parquet"))
    assert list(first.columns) == list(contracts.CLAIMS_COLUMNS)
    assert set(first["verdict"]) <= set(contracts.VERDICTS)
    assert first["n_seeds"].dtype == np.int64
    # a different seed moves the bootstrap intervals a little, never the point estimates
    assert main(["claims", str(summary), "--n-resamples", "500", "--seed", "1"]) == 0
    other = pd.read_parquet(summary / "claims.parquet")
    np.testing.assert_array_equal(first["estimate"], other["estimate"])
    assert not (np.array_equal(first["ci_low"].fillna(-1), other["ci_low"].fillna(-1))
                and np.array_equal(first["ci_high"].fillna(-1), other["ci_high"].fillna(-1)))


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["claims", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    summary = _summary(tmp_path, run_rows("vanilla", [1e5]))
    bad = _claims_file(tmp_path, compare="{a: ppo2, b: vanilla}")
    assert main(["claims", str(summary), "--claims", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "x-claim" in err and "ppo2" in err and len(err.strip().splitlines()) == 1
    (summary / "runs.parquet").write_bytes(b"garbage")
    assert main(["claims", str(summary)]) == 2
    assert "runs.parquet" in capsys.readouterr().err


def _claims(claim_id):
    return [c for c in load_claims() if c.id == claim_id]


def test_one_arm_median_past_the_budget_shows_its_fold_bound(tmp_path):
    # 15 of 20 seeds censored at 1M: the median is past 1M, so its fold from the quoted 800k > 1.25
    times = np.where(np.arange(20) < 5, 600e3, 1e6)
    rows = run_rows("vanilla", times, censored=np.arange(20) >= 5)
    table = evaluate_claims(_claims("slides-vanilla"), write_summary(tmp_path / "s", rows))
    row = table[table["test"] == "typical"].iloc[0]
    assert row["estimate"] == math.inf and row["estimate_text"] == "> 1.25"


def test_a_censored_denominator_bounds_the_ratio_from_above(tmp_path):
    # DQN's median is past its 50k steps: PPO / DQN < PPO's median / 50k, shown rounded up
    ppo = 65e3 * np.random.default_rng(1).lognormal(0, 0.1, 10)
    dqn = np.where(np.arange(10) < 2, 30e3, 50e3)
    rows = (run_rows("ppo", ppo, suite="qlearning")
            + run_rows("dqn", dqn, censored=np.arange(10) >= 2, suite="qlearning"))
    table = evaluate_claims(_claims("q-learning-samples"), write_summary(tmp_path / "s", rows))
    row = table[table["env"] == "CartPole-v1"].iloc[0]
    bound = survival.km_median(ppo, np.zeros(10, bool)).median / 50e3
    assert row["estimate"] == 0.0 and row["estimate_text"].startswith("< ")
    assert bound <= float(row["estimate_text"].removeprefix("< ")) < bound * 1.01


def test_runs_censored_at_time_zero_bound_nothing_and_do_not_crash(tmp_path):
    rows = (run_rows("vanilla", np.full(6, 500e3))
            + run_rows("rtg_baseline", np.zeros(6), censored=np.ones(6, bool)))
    row = evaluate_claims(SPEEDUP, write_summary(tmp_path / "s", rows)).iloc[0]
    assert row["verdict"] == "inconclusive" and row["estimate"] == math.inf
