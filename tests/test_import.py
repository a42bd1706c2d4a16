"""`pgbench import` (pgbench/runs/importing.py): hand-made SB3 Monitor files and tidy tables become run
directories that `aggregate` and `check` read like native runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pgbench.analysis.aggregate import aggregate_runs
from pgbench.cli import main
from pgbench.core.io import write_parquet_atomic


def write_monitor(path: Path, rows: list[tuple[float, int, float]], env_id="CartPole-v1") -> Path:
    """An SB3 Monitor file as `Monitor` writes it: a JSON comment line, then r,l,t rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['#{"t_start": 1700000000.0, "env_id": "%s"}' % env_id, "r,l,t"]
    lines += [f"{r},{l},{t}" for r, l, t in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def summary_of(run_dirs, out: Path) -> pd.DataFrame:
    for name, frame in aggregate_runs(run_dirs).items():
        write_parquet_atomic(out / f"{name}.parquet", frame)
    return pd.read_parquet(out / "runs.parquet")


def test_monitor_files_become_runs_with_hand_computed_metrics(tmp_path):
    # run A: two sub-envs' files, merged by time t; run B: one file
    write_monitor(tmp_path / "sb3/a/0.monitor.csv", [(10.0, 10, 0.5), (30.0, 30, 2.0)])
    write_monitor(tmp_path / "sb3/a/1.monitor.csv", [(20.0, 20, 1.0)])
    write_monitor(tmp_path / "sb3/b/0.monitor.csv", [(5.0, 5, 0.1), (7.0, 7, 0.2), (9.0, 9, 0.3)])
    files = sorted(str(p) for p in (tmp_path / "sb3").rglob("*.monitor.csv"))
    out = tmp_path / "runs"
    assert main(["import", *files, "--format", "monitor", "--out", str(out),
                 "--variant", "ppo_sb3", "--suite", "ext"]) == 0
    a = pd.read_parquet(out / "ext/CartPole-v1/ppo_sb3/seed0/episodes.parquet")
    assert a["return"].tolist() == [10.0, 20.0, 30.0]  # ordered by t across both files
    assert a["env_steps"].tolist() == [10, 30, 60] and a["length"].tolist() == [10, 20, 30]
    # running reward of the sources: 10 -> 0.05 * 10 + 0.95 * 10 = 10 -> 10.5 -> 11.475
    assert a["running_reward"].tolist() == pytest.approx([10.0, 10.5, 11.475])
    info = json.loads((out / "ext/CartPole-v1/ppo_sb3/seed0/run.json").read_text())
    assert info["totals"]["env_steps"] == 60 and info["reward_threshold"] == 475.0
    runs = summary_of([out], tmp_path / "summary")
    assert runs["seed"].tolist() == [0, 1] and set(runs["suite"]) == {"ext"}
    assert runs["final_return"].tolist() == [30.0, 9.0]  # last max(1, n // 10) episodes
    assert runs["mean_return"].tolist() == pytest.approx([20.0, 7.0])
    assert set(runs["platform"]) == {"unknown"} and set(runs["engine"]) == {"imported"}


def test_tidy_csv_with_run_labels(tmp_path):
    table = pd.DataFrame({"run": ["x", "x", "y", "y", "x"], "env_steps": [5, 12, 8, 20, 30],
                          "return": [5.0, 7.0, 8.0, 12.0, 18.0]})
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "runs"
    assert main(["import", str(csv), "--format", "tidy", "--out", str(out),
                 "--env", "CartPole-v1", "--variant", "mylib"]) == 0
    x = pd.read_parquet(out / "imported/CartPole-v1/mylib/seed0/episodes.parquet")
    assert x["env_steps"].tolist() == [5, 12, 30] and x["length"].tolist() == [5, 7, 18]
    runs = summary_of([out], tmp_path / "summary")
    assert runs["mean_return"].tolist() == pytest.approx([10.0, 10.0])
    assert runs["env_steps"].tolist() == [30, 20]


def test_import_refuses_bad_input_with_one_clear_message(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    pd.DataFrame({"seed": [0], "step": [5], "return": [1.0]}).to_csv(csv, index=False)
    assert main(["import", str(csv), "--format", "tidy", "--out", str(tmp_path / "o"),
                 "--env", "CartPole-v1", "--variant", "v"]) == 2
    assert "lacks columns env_steps" in capsys.readouterr().err
    not_monitor = tmp_path / "m/0.monitor.csv"
    not_monitor.parent.mkdir()
    not_monitor.write_text("r,l,t\n1,1,1\n")
    assert main(["import", str(not_monitor), "--format", "monitor", "--out",
                 str(tmp_path / "o"), "--variant", "v"]) == 2
    assert "is not an SB3 Monitor file" in capsys.readouterr().err


def test_import_never_replaces_a_run_directory(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    pd.DataFrame({"seed": [3], "env_steps": [9], "return": [9.0]}).to_csv(csv, index=False)
    args = ["import", str(csv), "--format", "tidy", "--out", str(tmp_path / "o"),
            "--env", "CartPole-v1", "--variant", "v"]
    assert main(args) == 0
    before = (tmp_path / "o/imported/CartPole-v1/v/seed3/run.json").read_bytes()
    assert main(args) == 2 and "never replaces a run directory" in capsys.readouterr().err
    assert (tmp_path / "o/imported/CartPole-v1/v/seed3/run.json").read_bytes() == before


@pytest.mark.slow
def test_check_on_imported_runs_matches_check_on_native_runs(tmp_path, capsys):
    """Train native runs (compiled engine, short), export their episodes as a tidy table,
    import it, and check both summaries against one reference: same verdicts and numbers."""
    from pgbench.rl.config import make_config
    from pgbench.training.runner import train_group

    settings = {"engine": "numba", "episodes_per_update": 1, "total_steps": 4000,
                "hidden": (32,), "env_id": "CartPole-v1"}
    meta = {"suite": "ext", "arm": "rtg_baseline", "setting": {}}
    ref_dirs = [tmp_path / f"ref/seed{s}" for s in range(8)]
    train_group(make_config("rtg_baseline", {**settings, "lr": 0.01}), list(range(8)), ref_dirs,
                meta=meta)
    # current: a planted regression (learning rate / 10) on other seeds
    cur_dirs = [tmp_path / f"cur/seed{s}" for s in range(100, 108)]
    train_group(make_config("rtg_baseline", {**settings, "lr": 0.001}), list(range(100, 108)),
                cur_dirs, meta=meta)
    summary_of(ref_dirs, tmp_path / "ref_summary")
    native = summary_of(cur_dirs, tmp_path / "native")
    reference = tmp_path / "ref.json"
    assert main(["reference", str(tmp_path / "ref_summary"), "--out", str(reference),
                 "--metric", "mean_return"]) == 0
    tidy = pd.concat([pd.read_parquet(d / "episodes.parquet").assign(seed=s)
                      for s, d in zip(range(100, 108), cur_dirs)])
    tidy[["seed", "env_steps", "return"]].to_parquet(tmp_path / "tidy.parquet", index=False)
    assert main(["import", str(tmp_path / "tidy.parquet"), "--format", "tidy", "--suite", "ext",
                 "--env", "CartPole-v1", "--variant", "rtg_baseline",
                 "--out", str(tmp_path / "imported")]) == 0
    imported = summary_of([tmp_path / "imported"], tmp_path / "imported_summary")
    for column in ("seed", "final_return", "mean_return", "steps_to_threshold", "censored"):
        assert imported[column].tolist() == native[column].tolist(), column
    capsys.readouterr()
    codes, tables = [], []
    for summary in ("native", "imported_summary"):
        codes.append(main(["check", str(tmp_path / summary), "--reference", str(reference)]))
        table = capsys.readouterr().out
        tables.append([line for line in table.splitlines()
                       if line.startswith("ext/")])
    assert codes[0] == codes[1]
    # every column but the note (which names the engine's config change) is the same
    strip = lambda rows: [" ".join(r.split()[:10]) for r in rows]
    assert strip(tables[0]) == strip(tables[1]) and len(tables[0]) == 1


@pytest.mark.slow
def test_imported_runs_go_through_aggregate_claims_and_report(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(4):  # learning-curve-like returns: episodes grow longer
        lengths = np.minimum(500, 10 + np.arange(200) * rng.uniform(0.5, 2)).astype(int)
        rows += [(seed, int(s), float(l)) for s, l in zip(np.cumsum(lengths), lengths)]
    pd.DataFrame(rows, columns=["seed", "env_steps", "return"]).to_csv(tmp_path / "t.csv",
                                                                       index=False)
    assert main(["import", str(tmp_path / "t.csv"), "--format", "tidy", "--env", "CartPole-v1",
                 "--variant", "mylib", "--out", str(tmp_path / "runs")]) == 0
    summary, report = tmp_path / "summary", tmp_path / "report"
    assert main(["aggregate", str(tmp_path / "runs"), "--out", str(summary)]) == 0
    assert main(["claims", str(summary)]) == 0
    assert main(["report", str(summary), "--out", str(report), "--n-boot", "200"]) == 0
    assert "mylib" in (report / "README.md").read_text()
