"""Tests of `pgbench report`: loading and checking the summary, the figures' statistics, escaping,
atomic and deterministic output, and the rendered page in headless Chromium.

The summary is a small hand-made fixture (tests/report_fixture.py) that follows docs/contracts.md,
with one arm named ``<script>alert(1)</script>``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from report_fixture import EVIL, VERDICTS, make_summary

from pgbench.analysis.summary import load_summary
from pgbench.cli import main
from pgbench.core.errors import UserError
from pgbench.report.build import render_report
from pgbench.report.figures import runs as run_figures
from pgbench.report.figures import style
from pgbench.report.format import md_code_block, md_escape
from pgbench.stats import survival

N_BOOT = 200  # enough for the tests; the report's default is 2000
EPOCH = "1795000000"  # SOURCE_DATE_EPOCH: a fixed report date, so two renders can be compared


def _cli_report(summary: Path, out: Path, *extra: str) -> int:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        return main(["report", str(summary), "--out", str(out), "--n-boot", str(N_BOOT), *extra])


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> Path:
    return make_summary(tmp_path_factory.mktemp("summary"))


@pytest.fixture(scope="module")
def report(summary, tmp_path_factory) -> Path:
    """The fixture summary rendered once through the CLI; tests only read it."""
    out = tmp_path_factory.mktemp("reports")
    assert _cli_report(summary, out) == 0
    return out


class _Resources(HTMLParser):
    """Collects every URL-bearing attribute, every <img> and every <script> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.imgs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.scripts += tag == "script"
        for name in ("src", "href", "srcset", "poster", "data", "action", "formaction"):
            if attrs.get(name) is not None:
                self.urls.append(attrs[name])
        if tag == "img":
            self.imgs.append(attrs.get("src") or "")


def _local(url: str) -> bool:
    """A URL that cannot leave the machine: relative path, fragment or data: URI."""
    parsed = urlparse(url)
    return parsed.scheme in ("", "data") and not parsed.netloc and not url.startswith("//")


# ---------------------------------------------------------------------------------------------
# The rendered files
# ---------------------------------------------------------------------------------------------

def test_report_files_and_figures_exist(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    page = _Resources()
    page.feed(html)
    assert page.imgs, "the report shows no figures"
    # the headline figure (the slides suite's fraction solved) opens the report, before the rest
    assert page.imgs[0] == "figures/headline.png"
    for src in page.imgs:
        assert src.startswith("figures/") and src.endswith(".png"), src
        assert (report / src).is_file(), f"{src} is referenced but not written"
    # Every figure written is shown (no stale files), and README links the same set.
    assert sorted(p.name for p in (report / "figures").iterdir()) == sorted(
        Path(s).name for s in page.imgs)
    readme = (report / "README.md").read_text(encoding="utf-8")
    assert sorted(re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", readme)) == sorted(page.imgs)
    # 2x figures: 7 in at 200 dpi, trimmed to what is drawn (a wide legend may add a little).
    png = (report / page.imgs[0]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1300 <= int.from_bytes(png[16:20], "big") <= 1700


def test_html_is_self_contained(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    page = _Resources()
    page.feed(html)
    remote = [u for u in page.urls if not _local(u)]
    assert not remote, f"resources that would leave the machine: {remote}"
    assert page.scripts == 0
    assert "url(" not in html and "@import" not in html  # no CSS-loaded resources


def test_one_verdict_row_per_claim(report, summary):
    claims = pd.read_parquet(summary / "claims.parquet")
    html = (report / "index.html").read_text(encoding="utf-8")
    assert html.count('<tr class="verdict-row"') == len(claims)
    for verdict in VERDICTS:
        assert f'<span class="badge {verdict.replace(" ", "-")}">{verdict}</span>' in html
    # one answer row per claim at the top, its rows grouped under it below (quote shown once)
    assert html.count('<tr class="answer-row"') == claims["claim_id"].nunique()
    assert html.count('<tr class="claim-head">') == claims["claim_id"].nunique()
    readme = (report / "README.md").read_text(encoding="utf-8")
    top, per_setting = readme.split("## Verdicts per setting", 1)
    answers = [line for line in top.splitlines() if line.startswith("| “")]
    assert [a.split("<br>")[1].split(" · ")[0] for a in answers] == [
        md_escape(c) for c in dict.fromkeys(claims["claim_id"])]
    per_setting = per_setting.split("## Results per suite", 1)[0]
    for claim_id in claims["claim_id"].unique():
        assert per_setting.count(f"### {md_escape(claim_id)}\n") == 1
    rows = [line for line in per_setting.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == len(claims)


def test_maths_in_quotes_is_rendered_not_raw(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    assert "\\sum" not in html and "$" not in html.split("<body>", 1)[1]
    assert "∑<sub>t′ = t</sub><sup>T</sup>" in html and "V<sup>π</sup>" in html
    readme = (report / "README.md").read_text(encoding="utf-8")
    assert "\\sum" not in readme and "∑<sub>t′ = t</sub><sup>T</sup>" in readme


def test_claims_without_the_newer_columns_count_as_single_test_quotes():
    from pgbench.report.claim_tables import claim_answers

    claims = pd.DataFrame({"claim_id": ["a", "a", "b"], "quote": ["q", "q", "r"],
                           "source": ["s"] * 3,
                           "verdict": ["reproduced", "inconclusive", "not reproduced"]})
    answers = claim_answers(claims)
    assert [(a["claim_id"], a["tests"][0]["answer"], a["implied"]) for a in answers] == [
        ("a", "reproduced in some settings", False), ("b", "reproduced in none", False)]
    assert answers[0]["counts"] == "2 rows: 1 reproduced, 1 inconclusive"


def test_made_line_and_reproduce_command(report, summary):
    html = (report / "index.html").read_text(encoding="utf-8")
    assert "2026-11-18 " in html  # SOURCE_DATE_EPOCH 1795000000, UTC
    assert f"pgbench report {summary} --out {report} --n-boot {N_BOOT}" in html
    assert "<pre><code>snakemake --cores 8</code></pre>" in html
    readme = (report / "README.md").read_text(encoding="utf-8")
    assert "```bash\nsnakemake --cores 8\n```" in readme


def test_evil_arm_is_escaped_in_html(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_evil_arm_is_escaped_in_markdown(report):
    readme = (report / "README.md").read_text(encoding="utf-8")
    assert "<script" not in readme.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in readme
    # The quote with a pipe stays inside its table cell, and <b> is shown, not rendered.
    assert r"variance \| of the &lt;b&gt;gradient&lt;/b&gt;" in readme


def test_markdown_escape_rules():
    assert md_escape("a|b") == r"a\|b"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert md_escape("*x* _y_ `z` [l](u) ~s~ $m$") == r"\*x\* \_y\_ \`z\` \[l\](u) \~s\~ \$m\$"
    assert md_escape("line\nbreak") == "line break"
    assert md_escape("back\\slash") == "back\\\\slash"
    block = md_code_block("echo ```")
    assert block.startswith("````\n") and block.endswith("\n````")


def test_compute_section_shows_each_job_training_every_arm(report):
    readme = (report / "README.md").read_text(encoding="utf-8")
    jobs = readme.split("### Per Snakemake job", 1)[1]
    rows = [line for line in jobs.splitlines() if line.startswith("| train ")]
    assert len(rows) == 2 and all("| all arms |" in row and "0,1,2,3,4" in row for row in rows), rows


def test_compute_section_names_each_arms_engine(report):
    readme = (report / "README.md").read_text(encoding="utf-8")
    arms = readme.split("## Compute cost", 1)[1].split("### Per Snakemake job", 1)[0]
    engines = {line.split(" | ")[1]: line.split(" | ")[3] for line in arms.splitlines()
               if line.startswith("| ") and line.split(" | ")[1] in ("slides", "cs234")}
    assert engines == {"slides": "numba", "cs234": "torch"}, arms


def test_gradient_study_section_present(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    assert 'id="gradient-study"' in html
    assert any(p.name.startswith("gradvar-") for p in (report / "figures").iterdir())
    assert any(p.name.startswith("gradbatch-") for p in (report / "figures").iterdir())


def test_without_gradient_study_the_section_is_skipped(tmp_path):
    summary = make_summary(tmp_path / "summary", gradstudy=False, evil=False)
    (summary / "compute.parquet").unlink()  # optional as well
    render_report(summary, tmp_path / "out", n_boot=N_BOOT)
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "gradient-study" not in html and "Gradient study" not in readme
    assert not any(p.name.startswith("grad") for p in (tmp_path / "out" / "figures").iterdir())
    assert "No per-job measurements" in html


def test_rerender_is_identical_and_atomic(report, summary, tmp_path):
    """Same summary, seed and date give byte-identical files; stale figures disappear; files the
    report does not own (a committed reference) survive."""
    out = tmp_path / "out"
    shutil.copytree(report, out)
    (out / "figures" / "stale.png").write_bytes(b"old")
    reference = json.dumps({"schema": 1, "rows": [], "package_sets": {}})
    (out / "reference.json").write_text(reference)
    assert _cli_report(summary, out, "--force") == 0
    html = (out / "index.html").read_text(encoding="utf-8").replace(str(out), str(report))
    assert html == (report / "index.html").read_text(encoding="utf-8")
    assert not (out / "figures" / "stale.png").exists()
    assert (out / "reference.json").read_text() == reference
    for png in (report / "figures").iterdir():
        assert (out / "figures" / png.name).read_bytes() == png.read_bytes(), png.name
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging files left behind"


# ---------------------------------------------------------------------------------------------
# Errors a user can cause
# ---------------------------------------------------------------------------------------------

def test_missing_summary_dir_names_the_path(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(UserError, match=re.escape(str(missing))):
        load_summary(missing)
    assert main(["report", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize("table", ["runs.parquet", "curves.parquet"])
def test_missing_or_corrupt_table_names_the_path(tmp_path, table):
    summary = make_summary(tmp_path / "s", gradstudy=False)
    (summary / table).unlink()
    with pytest.raises(UserError, match=re.escape(str(summary / table))):
        load_summary(summary)
    (summary / table).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match=re.escape(str(summary / table))):
        load_summary(summary)


def test_missing_column_and_bad_verdict_are_named(tmp_path):
    summary = make_summary(tmp_path / "s", gradstudy=False)
    runs = pd.read_parquet(summary / "runs.parquet").drop(columns=["censored"])
    runs.to_parquet(summary / "runs.parquet")
    with pytest.raises(UserError, match=r"runs\.parquet lacks column\(s\) censored"):
        load_summary(summary)
    summary = make_summary(tmp_path / "t", gradstudy=False)
    claims = pd.read_parquet(summary / "claims.parquet")
    claims.loc[0, "verdict"] = "maybe"
    claims.to_parquet(summary / "claims.parquet")
    with pytest.raises(UserError, match="unknown verdict.*'maybe'.*accepted: reproduced"):
        load_summary(summary)
    (summary / "provenance.json").write_text("{not json")
    with pytest.raises(UserError, match=re.escape(str(summary / "provenance.json"))):
        load_summary(summary)


# ---------------------------------------------------------------------------------------------
# The statistics behind the figures
# ---------------------------------------------------------------------------------------------

def test_kaplan_meier_by_hand_and_against_scipy():
    t, f = style.solved_fraction_curve([10, 20, 20, 30], [True, True, False, False])
    # At 10: 1 of 4 solved -> S = 3/4. At 20: 1 of 3 at risk solved -> S = 3/4 * 2/3 = 1/2.
    np.testing.assert_allclose(t, [0, 10, 20])
    np.testing.assert_allclose(f, [0, 0.25, 0.5])
    # the tables' median is the claims' (pgbench.stats): 20, and undefined past the data
    assert survival.km_median([10, 20, 20, 30], [False, False, True, True]).median == 20
    assert survival.km_median([10, 40, 40], [False, True, True]).median == math.inf

    from scipy.stats import CensoredData, ecdf

    rng = np.random.default_rng(3)
    times = rng.integers(1, 50, size=40).astype(float)
    solved = rng.random(40) < 0.6
    t, f = style.solved_fraction_curve(times, solved)
    res = ecdf(CensoredData(uncensored=times[solved], right=times[~solved]))
    np.testing.assert_allclose(f[1:], res.cdf.evaluate(t[1:]), atol=1e-12)


def test_arm_table_median_is_the_claims_median_at_exactly_half():
    """30 seeds, 15 solved at 100..1500 and 15 censored at 2000: the fraction solved reaches
    exactly 1/2 at the 15th solve, where a product of 15 factors rounds to 0.4999... . The
    results table must give the claims' median, 1500, not "> 2k"."""
    from pgbench.report.format import fmt_steps
    from pgbench.report.tables import _arm_table

    runs = pd.DataFrame({"arm": "a", "variant": "vanilla", "setting": "default",
                         "steps_to_threshold": [100.0 * k for k in range(1, 16)] + [2000.0] * 15,
                         "censored": [False] * 15 + [True] * 15, "final_return": 1.0})
    table = _arm_table(runs, {"a": "#000000"}, np.random.default_rng(0), n_boot=10)
    assert survival.km_median(runs["steps_to_threshold"], runs["censored"]).median == 1500
    assert fmt_steps(1500) in str(table), table


def test_a_gradient_row_shows_its_own_env_and_counts_batches():
    from pgbench.report.tables import _verdict_rows

    claims = pd.DataFrame([{
        "claim_id": "baseline-unbiased", "quote": "q", "source": "s", "statistic": "x",
        "estimate": 0.1, "ci_low": 0.0, "ci_high": 0.5, "confidence": 0.95, "threshold": 0.25,
        "direction": "<=", "verdict": "inconclusive", "n_seeds": 64, "seeds_needed": 72.3,
        "detail": "", "env": "CartPole-v1, InvertedPendulum-v5",
        "setting": "env=InvertedPendulum-v5, snapshot=q25, episodes_per_batch=16"}])
    row = _verdict_rows(claims)[0]
    assert row["env"] == "InvertedPendulum-v5" and row["seeds_needed"] == "~73 batches needed"
    claims.loc[0, "setting"], claims.loc[0, "env"] = "dropout=0.6", "CartPole-v1"
    row = _verdict_rows(claims)[0]
    assert row["env"] == "CartPole-v1" and row["seeds_needed"] == "~73 seeds needed"


def test_a_long_summary_command_is_shortened_in_the_report():
    from pgbench.report.format import shorten_command

    assert shorten_command("pgbench aggregate a --out s") == "pgbench aggregate a --out s"
    long = "pgbench aggregate " + " ".join(f"results/runs/x/seed{k}" for k in range(270))
    short = shorten_command(long)
    assert len(short) < 500 and short.startswith("pgbench aggregate results/runs/x/seed0 ")
    kept = short.split(" ... ")[0].split(" ")
    assert f"({272 - len(kept)} more arguments;" in short


def test_kaplan_meier_all_censored_is_flat_zero():
    t, f = style.solved_fraction_curve([5.0, 7.0], [False, False])
    np.testing.assert_array_equal(t, [0.0])
    np.testing.assert_array_equal(f, [0.0])


def test_bootstrap_mean_ci():
    values = np.array([[1.0, 2.0, np.nan, 5.0],
                       [3.0, 2.0, np.nan, np.nan]])
    mean, low, high = style.bootstrap_mean_ci(values, np.random.default_rng(0), n_boot=500)
    np.testing.assert_allclose(mean[[0, 1, 3]], [2.0, 2.0, 5.0])
    assert np.isnan(mean[2]) and np.isnan(low[2]) and np.isnan(high[2])
    assert 1.0 <= low[0] <= 2.0 <= high[0] <= 3.0
    assert low[1] == high[1] == 2.0  # no spread, no interval
    again = style.bootstrap_mean_ci(values, np.random.default_rng(0), n_boot=500)
    np.testing.assert_array_equal(np.nan_to_num(low), np.nan_to_num(again[1]))


def test_bootstrap_ci_covers_a_normal_mean():
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        sample = rng.normal(3.0, 1.0, size=(30, 1))
        _, low, high = style.bootstrap_mean_ci(sample, rng, n_boot=400)
        covered += low[0] <= 3.0 <= high[0]
    assert 0.88 <= covered / 200 <= 0.99  # nominal 95%; percentile bootstrap runs a bit short


def test_arm_palette_is_stable():
    a = style.arm_palette(["vanilla", "rtg", "rtg_baseline"])
    b = style.arm_palette(["rtg_baseline", "vanilla", "rtg", "vanilla"])
    assert a == b and list(a) == sorted(a)
    many = style.arm_palette([f"arm{i:02d}" for i in range(14)])
    first = style.arm_palette([f"arm{i:02d}" for i in range(10)])
    assert all(many[k] == v for k, v in first.items())
    assert len(set(many.values())) == 14


def test_learning_curve_marks_carried_points_and_drops_incomplete_ones():
    """Solid where measured, only dashed where a seed is carried forward, nothing where a seed
    has no value."""
    rows = []
    for seed, values, carried in [(0, [np.nan, 1.0, 2.0, 3.0, 3.0], [0, 0, 0, 0, 1]),
                                  (1, [1.0, 1.0, 2.0, 4.0, 4.0], [0, 0, 0, 1, 1])]:
        for x, (v, c) in enumerate(zip(values, carried)):
            rows.append({"arm": "a", "seed": seed, "env_steps": x * 10, "return": v,
                         "carried": bool(c)})
    fig = run_figures.learning_curves_figure(pd.DataFrame(rows), {"a": "#0173b2"},
                                         rng=np.random.default_rng(0), n_boot=50)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_color() == "#0173b2"]
    dashed = next(ln for ln in lines if ln.get_linestyle() != "-")
    solid = next(ln for ln in lines if ln.get_linestyle() == "-")
    np.testing.assert_allclose(dashed.get_ydata(), [np.nan, 1.0, 2.0, 3.5, 3.5])
    np.testing.assert_allclose(solid.get_ydata(), [np.nan, 1.0, 2.0, np.nan, np.nan])


def test_steps_figure_draws_censored_seeds_hollow():
    runs = pd.DataFrame({"arm": ["a"] * 4, "steps_to_threshold": [10.0, 20.0, 50.0, 50.0],
                         "censored": [False, False, True, True], "budget_steps": [50] * 4})
    fig = run_figures.steps_to_solve_figure(runs, {"a": "#0173b2"}, rng=np.random.default_rng(0))
    filled, hollow = fig.axes[0].collections[:2]
    assert len(filled.get_offsets()) == 2 and len(hollow.get_offsets()) == 2
    assert hollow.get_facecolor().size == 0 or hollow.get_facecolor()[0][3] == 0
    np.testing.assert_array_equal(hollow.get_offsets()[:, 0], [50.0, 50.0])


def test_figure_text_is_not_mathtext():
    """An arm name with dollar signs must draw as text (mathtext would fail or mangle it)."""
    runs = pd.DataFrame({"arm": ["cost=$5$ $x"] * 2, "final_return": [1.0, 2.0]})
    fig = run_figures.final_return_figure(runs, {"cost=$5$ $x": "#0173b2"},
                                      rng=np.random.default_rng(0))
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["cost=$5$ $x"]


# ---------------------------------------------------------------------------------------------
# The page in a real browser
# ---------------------------------------------------------------------------------------------

def _browser_or_skip() -> str:
    """The Chromium binary; skip when absent unless PGBENCH_REQUIRE_BROWSER is set (CI)."""
    binary = os.environ.get("PGBENCH_CHROMIUM") or next(
        (b for b in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if b),
        None)
    missing = None
    if binary is None:
        missing = "no chromium binary on PATH (apt-get install chromium, or set PGBENCH_CHROMIUM)"
    else:
        try:
            import websockets.sync.client  # noqa: F401
        except ImportError:
            missing = "the `websockets` package is not installed (needed to drive Chromium)"
    if missing:
        if os.environ.get("PGBENCH_REQUIRE_BROWSER"):
            pytest.fail(f"PGBENCH_REQUIRE_BROWSER is set but {missing}")
        pytest.skip(missing)
    return binary


class _DevTools:
    """A minimal Chrome DevTools Protocol client over one websocket (flattened sessions)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self._id = 0

    def _recv(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return json.loads(self.ws.recv(timeout=remaining))

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 15.0) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            try:
                self.events.append(self._recv(deadline))
            except TimeoutError:
                return False
        return True

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds`` (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.events.append(self._recv(deadline))
            except TimeoutError:
                return


_PAGE_PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'),
                                                 complete: i.complete, width: i.naturalWidth})),
  verdictRows: document.querySelectorAll('tr.verdict-row').length,
  badges: Array.from(document.querySelectorAll('tr.verdict-row .badge')).map(b => b.textContent),
  scripts: document.scripts.length,
  text: document.body.innerText,
  resources: performance.getEntriesByType('resource').map(e => e.name)
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """Module-scoped so that a missing browser skips before the report is rendered."""
    return _browser_or_skip()


@pytest.mark.browser
def test_page_in_headless_chromium(chromium, report, summary, tmp_path):
    binary = chromium
    profile = tmp_path / "profile"
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
         # Any host name the page tried to reach would fail to resolve: the test never leaks,
         # and the request still shows up in the Network events checked below.
         "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=log)
    cdp = None
    from websockets.sync.client import connect

    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=15) as ws:
            cdp = _DevTools(ws)
            target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = cdp.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                cdp.send(f"{domain}.enable", session=session)
            cdp.events.clear()  # about:blank's own events are not the report's
            url = (report / "index.html").resolve().as_uri()
            cdp.send("Page.navigate", {"url": url}, session=session)
            loaded = cdp.wait_for("Page.loadEventFired", timeout=20)
            cdp.drain(0.5)
            dialogs = [e for e in cdp.events if e.get("method") == "Page.javascriptDialogOpening"]
            assert not dialogs, f"the page opened a dialog: {dialogs}"
            assert loaded, "index.html did not finish loading"
            probe = cdp.send("Runtime.evaluate",
                             {"expression": _PAGE_PROBE, "returnByValue": True}, session=session)
            page = json.loads(probe["result"]["value"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    events = cdp.events
    errors = [e["params"] for e in events
              if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, f"console errors: {errors}"

    requests = [e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent"]
    assert requests, "no network events seen: the Network domain is not being observed"
    leaving = [u for u in requests + page["resources"] if not u.startswith(("file://", "data:"))]
    assert not leaving, f"requests that leave the machine: {leaving}"

    assert page["images"], "no <img> in the page"
    broken = [i["src"] for i in page["images"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"

    claims = pd.read_parquet(summary / "claims.parquet")
    assert page["verdictRows"] == len(claims)
    assert sorted(page["badges"]) == sorted(claims["verdict"])

    # The XSS-named arm is text on the page, and nothing ran.
    assert EVIL in page["text"]
    assert page["scripts"] == 0


def test_reproduce_command_names_a_config_other_than_the_default():
    from pgbench.report.build import reproduce_command

    assert reproduce_command(None) == "snakemake --cores 8"
    assert reproduce_command("config/config.yaml") == "snakemake --cores 8"
    assert reproduce_command("./config/config.yaml") == "snakemake --cores 8"
    assert (reproduce_command("config/validate.yaml")
            == "snakemake --cores 8 --configfile config/validate.yaml")
    assert (reproduce_command("my configs/a.yaml")
            == "snakemake --cores 8 --configfile 'my configs/a.yaml'")


def test_step_budget_is_named_per_arm_when_the_arms_differ():
    """Each method at its own published budget (config/qlearning.yaml): the section names both,
    not a dash; one shared budget is one figure."""
    from pgbench.report.sections import _budget_words

    runs = pd.DataFrame({"arm": ["dqn", "dqn", "ppo", "a2c"], "budget_steps": [1e5, 1e5, 1e6, 1e5]})
    assert _budget_words(runs) == "100k (a2c, dqn) · 1M (ppo)"
    assert _budget_words(runs[runs["arm"] == "dqn"]) == "100k"
    assert _budget_words(runs.assign(budget_steps=float("nan"))) == "—"


def test_provenance_names_the_commits_when_runs_were_trained_at_several():
    """A report gathered from runs of several sittings (config/full.yaml's restored runs) says
    which commit trained how many runs; runs of one commit add no line."""
    from pgbench.report.sections import _run_commits

    runs = pd.DataFrame({"git_commit": ["a" * 40] * 3 + ["b" * 40] + [""]})
    assert _run_commits(runs) == "aaaaaaaaaaaa (3 runs), bbbbbbbbbbbb (1 run), unknown (1 run)"
    assert _run_commits(runs.iloc[:3]) == ""
    assert _run_commits(pd.DataFrame({"seed": [0]})) == ""


def test_an_estimate_known_only_as_a_bound_is_shown_as_that_bound():
    """A median past the budget makes the ratio 0 or inf as a number; the table shows the bound
    the data give (claims.parquet's estimate_text) instead, and the number when there is none."""
    from pgbench.core.contracts import CLAIMS_COLUMNS
    from pgbench.report.tables import _verdict_rows

    row = {c: ("" if t == "str" else 0) for c, t in CLAIMS_COLUMNS.items()}
    row.update(claim_id="q-learning-samples", verdict="inconclusive", direction=">=", threshold=1.0,
               estimate=0.0, ci_low=0.0, ci_high=1.39, confidence=0.95, n_seeds=10,
               seeds_needed=float("nan"), estimate_text="< 1.29")
    claims = pd.DataFrame([row, {**row, "estimate": 2.28, "estimate_text": ""}])
    shown = [r["estimate"] for r in _verdict_rows(claims)]
    assert shown == ["< 1.29", "2.28"]


def test_provenance_section_lists_the_commits_of_the_runs():
    import types

    from pgbench.report.sections import _provenance_section

    runs = pd.DataFrame({"git_commit": ["a" * 40, "b" * 40]})
    items = _provenance_section(types.SimpleNamespace(provenance={}, runs=runs))["items"]
    assert {"label": "runs trained at", "value": "aaaaaaaaaaaa (1 run), bbbbbbbbbbbb (1 run)"} in items


def test_reproduce_section_shows_paths_inside_the_working_directory_relative(tmp_path, monkeypatch):
    make_summary(tmp_path / "summary", gradstudy=False, evil=False)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(tmp_path / "summary"), "--out", str(tmp_path / "out"),
                 "--n-boot", "100"]) == 0
    text = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "pgbench report summary --out out" in text and str(tmp_path) not in text
