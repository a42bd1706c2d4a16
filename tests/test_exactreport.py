"""The report's exact-study section: present with exact rows, absent without them."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pgbench.core import contracts
from pgbench.gradstudy import exactstudy as xs
from pgbench.gradstudy import study, tinymdp
from pgbench.report.build import render_report

sys.path.insert(0, str(Path(__file__).parent))
from report_fixture import make_summary  # noqa: E402


def _add_exact_rows(summary: Path) -> None:
    mdp = tinymdp.TINY_MDPS["TwoStateChain"]
    settings = study.StudySettings(episodes=(1, 4), batches=8, reference_batches=8, n_resamples=100)
    rows, _, pairs, _ = xs.exact_study(mdp, mdp.policy_params(0), settings, seed=0)
    for name, new, columns in (("gradstudy.parquet", rows, contracts.GRADSTUDY_COLUMNS),
                               ("gradstudy_pairs.parquet", pairs, contracts.PAIRS_COLUMNS)):
        old = pd.read_parquet(summary / name)
        pd.concat([old, study.frame(new, columns)], ignore_index=True).to_parquet(summary / name)


def test_exact_section_shows_exact_and_sampled_side_by_side(tmp_path):
    summary = make_summary(tmp_path / "summary", evil=False)
    _add_exact_rows(summary)
    render_report(summary, tmp_path / "out", n_boot=200)
    html = (tmp_path / "out" / "index.html").read_text()
    md = (tmp_path / "out" / "README.md").read_text()
    for text, name in ((html, "loo_time_baseline"), (md, r"loo\_time\_baseline")):
        assert "Exact gradient study" in text and "TwoStateChain" in text
        assert "projection, exact" in text and name in text
    assert list((tmp_path / "out" / "figures").glob("exact-*.png"))


def test_without_exact_rows_there_is_no_exact_section(tmp_path):
    summary = make_summary(tmp_path / "summary", evil=False)
    render_report(summary, tmp_path / "out", n_boot=200)
    assert "Exact gradient study" not in (tmp_path / "out" / "index.html").read_text()
    assert not list((tmp_path / "out" / "figures").glob("exact-*.png"))
