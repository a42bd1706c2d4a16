"""`pgbench digest` / `pgbench compare` (pgbench/report/digest.py): does a run reproduce the committed
report? Runs byte-identical, verdicts equal, or a list of what differs."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
from synthetic import write_run_dir

from pgbench.cli import main
from pgbench.report.digest import build_digest, compare_digests


def digest(runs, claims):
    return {"kind": "pgbench digest", "schema": 1, "provenance": {"cpu": "A", "packages": {"torch": "1"}},
            "runs": [{"suite": "s", "env": "E", "arm": arm, "seed": seed, "config_hash": cfg,
                      "episodes_sha256": sha} for arm, seed, cfg, sha in runs],
            "claims": None if claims is None else [
                {"claim_id": c, "suite": "s", "env": "E", "setting": setting, "verdict": v,
                 "estimate": 1.0} for c, setting, v in claims]}


REF = digest([("a", 0, "c1", "x0"), ("a", 1, "c1", "x1"), ("b", 0, "c2", "y0")],
             [("speedup", "default", "reproduced"), ("speedup", "dropout=0.6", "inconclusive")])


def test_the_same_digest_reproduces():
    equal, lines = compare_digests(copy.deepcopy(REF), REF)
    assert equal
    assert lines == ["your run reproduces the committed report: 3 of 3 runs byte-identical, "
                     "verdicts equal"]


def test_every_kind_of_difference_is_listed():
    mine = copy.deepcopy(REF)
    mine["runs"][0]["episodes_sha256"] = "other"            # a, seed 0: episodes differ
    mine["runs"][2]["config_hash"] = "c3"                   # b, seed 0: another config
    del mine["runs"][1]                                     # a, seed 1: missing
    mine["runs"].append({**REF["runs"][0], "seed": 7})      # a, seed 7: extra
    mine["claims"][1]["verdict"] = "reproduced"
    mine["provenance"]["cpu"] = "B"
    equal, lines = compare_digests(mine, REF)
    assert not equal
    assert lines == [
        "your run differs from the committed report: 0 of 3 runs byte-identical, 1 of 2 verdicts differ",
        "  run s/E/a seed 1: in the reference, not in yours",
        "  run s/E/a seed 7: in yours, not in the reference",
        "  run s/E/b seed 0: another config (config_hash differs)",
        "  run s/E/a seed 0: same config, episodes differ",
        "  claim speedup [E, dropout=0.6]: inconclusive in the reference, reproduced in yours",
        "  episodes are byte-identical only on the same CPU and package versions; these differ: cpu",
    ]


def test_runs_equal_but_no_claims_is_not_a_reproduction():
    mine = copy.deepcopy(REF)
    mine["claims"] = None
    equal, lines = compare_digests(mine, REF)
    assert not equal
    assert lines[0].endswith("3 of 3 runs byte-identical, verdicts not compared (no claims table "
                             "on your side)")


def test_compare_from_the_command_line(tmp_path, capsys):
    """A report directory's digest.json, a digest file and a summary directory all compare; the
    exit code says whether they agree."""
    for seed in (0, 1):
        write_run_dir(tmp_path / "runs" / f"seed{seed}", [10.0 + seed, 20.0, 30.0], seed=seed)
    summary = tmp_path / "summary"
    assert main(["aggregate", str(tmp_path / "runs"), "--out", str(summary)]) == 0
    assert main(["claims", str(summary)]) == 0
    assert main(["digest", str(summary), "--out", str(tmp_path / "ref.json")]) == 0
    document = json.loads((tmp_path / "ref.json").read_text())
    assert document == json.loads(json.dumps(build_digest(summary)))
    runs = pd.read_parquet(summary / "runs.parquet")
    assert sorted(r["episodes_sha256"] for r in document["runs"]) == sorted(runs["episodes_sha256"])
    capsys.readouterr()
    assert main(["compare", str(summary), "--reference", str(tmp_path / "ref.json")]) == 0
    assert capsys.readouterr().out.startswith(
        "your run reproduces the committed report: 2 of 2 runs byte-identical, verdicts equal")
    # one run retrained differently: its episodes change
    write_run_dir(tmp_path / "runs" / "seed1", [11.0, 20.0, 31.0], seed=1)
    assert main(["aggregate", str(tmp_path / "runs"), "--out", str(summary), "--force"]) == 0
    assert main(["claims", str(summary)]) == 0
    capsys.readouterr()
    assert main(["compare", str(summary), "--reference", str(tmp_path / "ref.json")]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 runs byte-identical" in out and "seed 1: same config, episodes differ" in out
    assert main(["compare", str(tmp_path / "nowhere"), "--reference", str(tmp_path / "ref.json")]) == 2


def test_gradient_study_tables_are_digested_by_value():
    from pgbench.report.digest import table_digest

    frame = pd.DataFrame({"env": ["E", "E"], "snapshot": ["init", "q25"],
                          "variance_ratio": [0.5, 0.25], "n_batches": [64, 64]})
    same = table_digest(frame)
    assert same == table_digest(frame[list(reversed(frame.columns))].copy())  # column order
    assert same["rows"] == 2
    nudged = frame.copy()
    nudged.loc[1, "variance_ratio"] = math.nextafter(0.25, 1.0)
    assert nudged.loc[1, "variance_ratio"] != 0.25  # one ulp away
    assert table_digest(nudged) != same
    renamed = frame.assign(snapshot=["init", "q75"])
    assert table_digest(renamed) != same


def test_a_gradient_study_table_that_differs_is_listed():
    ref = copy.deepcopy(REF)
    ref["tables"] = {"gradstudy": {"rows": 3, "sha256": "g"}, "gradstudy_pairs": {"rows": 2, "sha256": "p"}}
    mine = copy.deepcopy(ref)
    equal, lines = compare_digests(mine, ref)
    assert equal and lines[0].endswith("verdicts equal, gradient study identical")
    mine["tables"]["gradstudy_pairs"]["sha256"] = "other"
    equal, lines = compare_digests(mine, ref)
    assert not equal
    assert lines == [("your run differs from the committed report: 3 of 3 runs byte-identical, "
                      "verdicts equal, 1 of 2 gradient-study tables differ"),
                     "  table gradstudy_pairs: values differ (2 rows in the reference, 2 in yours)"]
    # a reference digested before tables were: nothing compared, still a reproduction
    del ref["tables"]
    equal, lines = compare_digests(mine, ref)
    assert equal and lines[0].endswith(", gradient study not compared (the reference has none)")


def _two_test_digest(single_run_verdict, with_test=True):
    """A claim with two tests per setting ("typical" and "single run"), as slides-vanilla."""
    d = digest([("a", 0, "c1", "x0")], [])
    for test, verdict in (("typical", "inconclusive"), ("single run", single_run_verdict)):
        row = {"claim_id": "slides-vanilla", "suite": "s", "env": "E", "setting": "default",
               "verdict": verdict, "estimate": 1.0}
        d["claims"].append({**row, "test": test} if with_test else row)
    return d


def test_each_test_of_a_claim_is_compared():
    """A claim's tests share its id, suite, env and setting: a change in any one of them is a
    verdict that differs (the key once left the test out, and the last test hid the others)."""
    equal, lines = compare_digests(_two_test_digest("plausible"), _two_test_digest("implausible"))
    assert not equal
    assert lines == [
        ("your run differs from the committed report: 1 of 1 runs byte-identical, 1 of 2 "
         "verdicts differ"),
        "  claim slides-vanilla [E] (single run): implausible in the reference, plausible in yours"]
    mine, ref = _two_test_digest("plausible"), _two_test_digest("plausible")
    mine["claims"][0]["verdict"] = "reproduced"  # the first test only
    assert compare_digests(mine, ref)[1][-1] == (
        "  claim slides-vanilla [E] (typical): inconclusive in the reference, reproduced in yours")


def test_a_digest_from_before_per_test_rows_is_compared_and_named():
    """Such a digest kept one of a claim's tests, which one unknown: only claims with one test are
    compared, and the output says so."""
    old = _two_test_digest("plausible", with_test=False)
    old["claims"].append({"claim_id": "speedup", "suite": "s", "env": "E", "setting": "default",
                          "verdict": "reproduced", "estimate": 1.0})
    mine = _two_test_digest("implausible")
    mine["claims"].append({**old["claims"][-1], "test": "main", "verdict": "inconclusive"})
    equal, lines = compare_digests(mine, old)
    assert not equal
    assert lines[1:] == [
        ("  note: the reference's digest predates per-test claim rows: the 1 claim settings with "
         "several tests are not compared (regenerate it with `pgbench report SUMMARY --out DIR "
         "--force`)"),
        "  claim speedup [E]: reproduced in the reference, inconclusive in yours"]
