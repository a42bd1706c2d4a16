"""`--out` safety, one rule for every command (pgbench/core/outputs.py): a target that is not
pgbench's own output of the command's kind is refused (exit 2, one line naming the path and what
is accepted); a complete output of the same config is skipped; pgbench's own output is replaced
only with --force; a file pgbench did not write is never deleted, --force or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixture import make_summary
from synthetic import write_run_dir

from pgbench.cli import main
from pgbench.core.errors import UserError
from pgbench.core.outputs import REPORT, RUN, SKIP, SUMMARY, WRITE, check_dir

TRAIN = ["train", "--env", "CartPole-v1", "--variant", "vanilla", "--seed", "0",
         "--episodes-per-update", "1"]


def train(out, *extra, steps=200):
    return main([*TRAIN, "--total-steps", str(steps), "--out", str(out), *extra])


def tree(path: Path) -> dict:
    """Every file under ``path`` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def refused(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def user_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    return path


# ------------------------------------------------------------------------------- train
def test_train_refuses_a_directory_of_the_users_files_even_with_force(tmp_path, capsys):
    mine = user_dir(tmp_path / "mine")
    before = tree(tmp_path)
    for extra in ([], ["--force"]):
        assert train(mine, *extra) == 2
        refused(capsys, str(mine), "notes.txt", "never deletes", "accepted:", "--force")
        assert tree(tmp_path) == before  # nothing written beside it either (no staging left)


def test_train_refuses_an_existing_file_and_leaves_no_hidden_copy(tmp_path, capsys):
    target = tmp_path / "results.csv"
    target.write_text("a,b\n1,2\n")
    for extra in ([], ["--force"]):
        assert train(target, *extra) == 2
        refused(capsys, str(target), "not a directory", "accepted:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
    assert target.read_text() == "a,b\n1,2\n"


def test_train_skips_a_complete_run_of_the_same_config(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run) == 0
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.iterdir()}
    capsys.readouterr()
    assert train(run) == 0
    assert "skipping 1 of 1 runs, complete with the same config" in capsys.readouterr().err
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.iterdir()} == before


def test_train_replaces_a_run_of_another_config_only_with_force(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, steps=200) == 0
    old = json.loads((run / "run.json").read_text())["run_hash"]
    capsys.readouterr()
    assert train(run, steps=300) == 2
    refused(capsys, str(run), "existing pgbench run directory", "--force")
    assert json.loads((run / "run.json").read_text())["run_hash"] == old
    assert train(run, "--force", steps=300) == 0
    new = json.loads((run / "run.json").read_text())
    assert new["run_hash"] != old and new["config"]["total_steps"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the old run is gone, not hidden


def test_a_file_that_appears_while_training_is_not_deleted(tmp_path):
    """The run directory is judged again just before it is replaced."""
    from pgbench.rl.config import make_config
    from pgbench.training.runner import RunRequest, train_runs

    run = tmp_path / "run"
    assert train(run) == 0
    (run / "notes.txt").write_text("written during training\n")
    cfg = make_config("vanilla", {"env_id": "CartPole-v1", "seed": 0, "total_steps": 300,
                                  "episodes_per_update": 1})
    with pytest.raises(UserError, match="notes.txt"):
        train_runs([RunRequest(cfg, run)])
    assert (run / "notes.txt").read_text() == "written during training\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- train-job
def spec(tmp_path: Path, steps: int) -> str:
    arms = [{"arm": a, "variant": a, "overrides": {"episodes_per_update": 1, "total_steps": steps},
             "seeds": [0], "out": str(tmp_path / "runs" / a / "seed{seed}")}
            for a in ("vanilla", "rtg")]
    path = tmp_path / f"spec{steps}.json"
    path.write_text(json.dumps({"suite": "t", "env": "CartPole-v1", "arms": arms}))
    return f"@{path}"


def test_train_job_judges_every_run_before_training_any(tmp_path, capsys):
    mine = user_dir(tmp_path / "runs" / "rtg" / "seed0")
    for extra in ([], ["--force"]):
        assert main(["train-job", "--spec", spec(tmp_path, 200), *extra]) == 2
        refused(capsys, str(mine), "notes.txt")
    assert not (tmp_path / "runs" / "vanilla").exists()  # the good arm did not train either
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_train_job_skips_same_and_replaces_other_configs_only_with_force(tmp_path, capsys):
    assert main(["train-job", "--spec", spec(tmp_path, 200)]) == 0
    before = tree(tmp_path / "runs")
    capsys.readouterr()
    assert main(["train-job", "--spec", spec(tmp_path, 200)]) == 0
    assert "skipping 2 of 2 runs" in capsys.readouterr().err
    assert tree(tmp_path / "runs") == before
    assert main(["train-job", "--spec", spec(tmp_path, 300)]) == 2
    refused(capsys, "existing pgbench run directory", "--force")
    assert tree(tmp_path / "runs") == before
    assert main(["train-job", "--spec", spec(tmp_path, 300), "--force"]) == 0
    info = json.loads((tmp_path / "runs" / "rtg" / "seed0" / "run.json").read_text())
    assert info["config"]["total_steps"] == 300


# --------------------------------------------------------------------------- aggregate
@pytest.fixture
def runs(tmp_path) -> Path:
    for seed in (0, 1):
        write_run_dir(tmp_path / "runs" / f"seed{seed}", [10.0 + seed, 20.0, 30.0], seed=seed)
    return tmp_path / "runs"


def test_aggregate_refuses_the_users_directory_even_with_force(tmp_path, runs, capsys):
    mine = user_dir(tmp_path / "Documents")
    (mine / "runs.parquet").write_text("not a summary\n")
    before = tree(mine)
    for extra in ([], ["--force"]):
        assert main(["aggregate", str(runs), "--out", str(mine), *extra]) == 2
        refused(capsys, str(mine), "notes.txt", "runs.parquet", "never deletes")
    assert tree(mine) == before


def test_aggregate_replaces_a_summary_only_with_force(tmp_path, runs, capsys):
    out = tmp_path / "summary"
    assert main(["aggregate", str(runs), "--out", str(out)]) == 0
    assert main(["claims", str(out)]) == 0
    before = tree(out)
    capsys.readouterr()
    assert main(["aggregate", str(runs), "--out", str(out)]) == 2
    refused(capsys, str(out), "existing pgbench summary directory", "--force")
    assert tree(out) == before
    assert main(["aggregate", str(runs / "seed0"), "--out", str(out), "--force"]) == 0
    # the claims of the summary replaced are pgbench's and stale: removed
    assert sorted(p.name for p in out.iterdir()) == [
        "compute.parquet", "curves.parquet", "provenance.json", "runs.parquet"]
    assert json.loads((out / "provenance.json").read_text())["n_runs"] == 1


# ------------------------------------------------------------------------------ report
@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> Path:
    return make_summary(tmp_path_factory.mktemp("summary"), gradstudy=False, evil=False)


def report(summary, out, *extra):
    return main(["report", str(summary), "--out", str(out), "--n-boot", "100", *extra])


def test_report_into_the_users_documents_is_refused_even_with_force(tmp_path, summary, capsys):
    docs = user_dir(tmp_path / "Documents")
    (docs / "figures").mkdir()
    (docs / "figures" / "holiday.jpg").write_bytes(b"\xff\xd8")
    before = tree(docs)
    for extra in ([], ["--force"]):
        assert report(summary, docs, *extra) == 2
        refused(capsys, str(docs), "notes.txt", "figures", "never deletes", "accepted:")
    assert tree(docs) == before


def test_report_never_overwrites_the_users_index_html(tmp_path, summary, capsys):
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<h1>my site</h1>")
    assert report(summary, out, "--force") == 2
    refused(capsys, "index.html")
    assert (out / "index.html").read_text() == "<h1>my site</h1>"


def test_report_beside_the_committed_reference_and_replaced_only_with_force(tmp_path, summary, capsys):
    """As in a clone: reports/ holds the committed reference report and CI reference, which a
    report written into reports/ leaves alone; a second report needs --force."""
    out = tmp_path / "reports"
    assert report(summary, out / "reference") == 0
    (out / "ci-reference.json").write_text(json.dumps({"schema": 1, "rows": [], "package_sets": {}}))
    committed = tree(out)
    assert report(summary, out) == 0
    assert {k: v for k, v in tree(out).items() if k in committed} == committed
    assert (out / "index.html").exists() and (out / "figures").is_dir()
    # the report's digest.json is the summary's: `pgbench compare` finds them equal
    assert main(["compare", str(out), "--reference", str(summary)]) == 0
    capsys.readouterr()
    assert report(summary, out) == 2
    refused(capsys, str(out), "existing pgbench report directory", "--force")
    (out / "figures" / "stale.png").write_bytes(b"old")
    assert report(summary, out, "--force") == 0
    assert not (out / "figures" / "stale.png").exists()
    assert {k: v for k, v in tree(out).items() if k in committed} == committed


# --------------------------------------------------------------------------- reference
def test_reference_refuses_a_file_it_did_not_write_even_with_force(tmp_path, runs, capsys):
    assert main(["aggregate", str(runs), "--out", str(tmp_path / "s")]) == 0
    target = tmp_path / "thesis.json"
    target.write_text('{"chapter": 1}')
    for extra in ([], ["--force"]):
        assert main(["reference", str(tmp_path / "s"), "--out", str(target), *extra]) == 2
        refused(capsys, str(target), "not a pgbench reference", "accepted:")
    assert target.read_text() == '{"chapter": 1}'
    assert main(["reference", str(tmp_path / "s"), "--out", str(tmp_path)]) == 2
    refused(capsys, "is a directory")


def test_reference_skips_the_same_runs_and_replaces_others_only_with_force(tmp_path, runs, capsys):
    assert main(["aggregate", str(runs), "--out", str(tmp_path / "both")]) == 0
    assert main(["aggregate", str(runs / "seed0"), "--out", str(tmp_path / "one")]) == 0
    ref = tmp_path / "ref.json"
    assert main(["reference", str(tmp_path / "both"), "--out", str(ref)]) == 0
    before = ref.read_bytes()
    capsys.readouterr()
    assert main(["reference", str(tmp_path / "both"), "--out", str(ref)]) == 0
    assert "already is the reference of these runs" in capsys.readouterr().out
    assert ref.read_bytes() == before
    assert main(["reference", str(tmp_path / "one"), "--out", str(ref)]) == 2
    refused(capsys, str(ref), "existing pgbench reference", "--force")
    assert ref.read_bytes() == before
    assert main(["reference", str(tmp_path / "one"), "--out", str(ref), "--force"]) == 0
    assert len(json.loads(ref.read_text())["rows"]) == 1


# ------------------------------------------------------------------------ the rule alone
def test_the_rule_on_empty_missing_and_hidden_entries(tmp_path):
    assert check_dir(tmp_path / "new", RUN, force=False) == WRITE
    (tmp_path / "empty").mkdir()
    assert check_dir(tmp_path / "empty", REPORT, force=False) == WRITE
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"")
    assert check_dir(tmp_path / "empty", SUMMARY, force=False) == WRITE  # hidden: never touched
    with pytest.raises(UserError, match=r"\.DS_Store"):  # a run directory is replaced whole
        check_dir(tmp_path / "empty", RUN, force=True)
    write_run_dir(tmp_path / "r", [10.0, 20.0])
    assert check_dir(tmp_path / "r", RUN, force=False, same=lambda p: True) == SKIP


def test_runs_kept_beside_the_reports_are_left_alone_and_anything_else_is_not(tmp_path):
    """reports/full/runs/ keeps run directories in git between sittings: the default report,
    written into reports/, must accept that folder beside it, and still refuse a user's file."""
    reports = tmp_path / "reports"
    write_run_dir(reports / "full" / "runs" / "cs234" / "HalfCheetah-v5" / "rtg" / "seed0", [1.0, 2.0])
    (reports / "full" / "runs" / "README.md").write_text("kept runs\n")
    assert check_dir(reports, REPORT, force=True) == WRITE
    (reports / "full" / "runs" / "notes.txt").write_text("mine\n")
    with pytest.raises(UserError, match="full"):
        check_dir(reports, REPORT, force=True)
