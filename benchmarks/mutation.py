"""Mutation testing of the modules where a silent bug changes a verdict, within a time budget.

For each target below, mutmut (the ``mutation`` extra) copies this tree to a scratch directory,
mutates the target's functions one small change at a time (``+`` to ``-``, ``<`` to ``<=``,
a constant to another, an argument dropped, ...) and runs the fast tests that cover the target
against each mutant. A mutant the tests pass on "survived": either the tests miss a real bug or
the change makes no difference (an equivalent mutant). docs/testing.md records the last run.

Usage (from the repository root; slow, so nice it and run it in the background)::

    pip install -c constraints.txt -e ".[test,mutation]"
    nice -n 10 python benchmarks/mutation.py --budget 3600 --out /tmp/mutation   # every target
    nice -n 10 python benchmarks/mutation.py estimators stats                    # some targets

Each target gets its share of ``--budget`` seconds (mutmut is stopped at its deadline; what it
tried is still counted, the rest is reported as not tried). ``--out`` gets one directory per
target (mutmut's own files, for ``mutmut show NAME`` and ``mutmut results`` there) and
``summary.json`` with the counts and every surviving mutant's diff. The project's own files are
never changed and ``python -m pytest`` is not affected: mutmut's settings are written into the
scratch copy's pyproject.toml only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pgbench.core.provenance import cpu_model

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "not slow and not browser"]


@dataclass(frozen=True)
class Target:
    """What to mutate (a module, optionally only some of its functions) and which tests run."""

    module: str  # path of the source file, e.g. "pgbench/rl/estimators.py"
    tests: tuple[str, ...]  # pytest node ids or files: the fast tests that cover the module
    functions: tuple[str, ...] = ()  # mutmut name globs inside the module; () = every function
    note: str = ""


# In the order to run them when time is short: the maths first.
_TRAIN_MATHS_TESTS = ("tests/test_planted_bugs.py",
                      "tests/test_train.py::test_stacked_adam_counts_each_seeds_steps",
                      "tests/test_train.py::test_stacked_adam_matches_torch_adam",
                      "tests/test_train.py::test_update_passes_give_each_seed_its_own_block_widths",
                      "tests/test_stopping_rules.py")
TARGETS: dict[str, Target] = {
    "estimators": Target("pgbench/rl/estimators.py",
                         ("tests/test_estimators.py", "tests/test_planted_bugs.py")),
    # the training maths (advantages, losses, stopping rules, Adam), not the loop plumbing,
    # which the whole-run tests (slow) cover
    "update-maths": Target(
        "pgbench/training/update.py", _TRAIN_MATHS_TESTS,
        ("x_advantages__mutmut_*", "x_policy_loss__mutmut_*", "x_block_widths__mutmut_*"),
        note="advantages, policy_loss, block_widths"),
    "run-log": Target("pgbench/runs/log.py", _TRAIN_MATHS_TESTS,
                      ("x_record_episode__mutmut_*", "x_stop_reason__mutmut_*"),
                      note="record_episode, stop_reason"),
    "optim": Target("pgbench/training/optim.py", _TRAIN_MATHS_TESTS,
                    ("xǁStackedAdamǁstep__mutmut_*", "xǁStackedAdamǁ_corrections__mutmut_*"),
                    note="StackedAdam"),
    "train-update": Target(
        "pgbench/training/group.py",
        ("tests/test_planted_bugs.py::test_torch_update_with_dropout_equals_a_plain_per_step_loop",),
        ("xǁGroupTrainerǁupdate__mutmut_*",),
        note="GroupTrainer.update against the plain per-step loop (REINFORCE with dropout)"),
    "stats-metrics": Target("pgbench/stats/metrics.py", ("tests/test_stats.py",)),
    "stats-bootstrap": Target("pgbench/stats/bootstrap.py", ("tests/test_stats.py",)),
    "stats-survival": Target("pgbench/stats/survival.py", ("tests/test_stats.py",)),
    "claims-model": Target("pgbench/claims/model.py", ("tests/test_claims.py",)),
    "claims-evaluate": Target("pgbench/claims/evaluate.py", ("tests/test_claims.py",)),
    "claims-run-statistics": Target("pgbench/claims/run_statistics.py",
                                    ("tests/test_claims.py", "tests/test_claim_verdicts.py")),
    "check-gate": Target("pgbench/check/gate.py", ("tests/test_check.py",)),
    "gradstudy-terms": Target("pgbench/gradstudy/terms.py",
                              ("tests/test_gradstudy.py", "tests/test_policy_gradient.py")),
    "gradstudy-batches": Target("pgbench/gradstudy/batches.py",
                                ("tests/test_gradstudy.py", "tests/test_policy_gradient.py")),
    "gradient-statistics": Target("pgbench/claims/gradient_statistics.py", ("tests/test_gradstudy.py",)),
}

#: mutmut exit codes -> status (mutmut/stats.py); "killed" and "timeout" count as caught.
CAUGHT = {"killed", "timeout", "segfault"}
MAX_SHOWN = 300  # survivors whose diff goes into summary.json (``mutmut show`` takes seconds)


def mutmut_cmd() -> list[str]:
    """mutmut's own script (``python -m mutmut`` puts the package twice in sys.modules)."""
    found = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
    return [found]


def status_of(code) -> str:
    return {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
            34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
            255: "timeout", -11: "segfault", -9: "segfault", None: "not tried"}.get(code,
                                                                                  "suspicious")


def scratch_copy(dest: Path, target: Target) -> None:
    """This tree (the files git sees, as they are on disk) with mutmut's settings added."""
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("reports/", "results/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    tests = [t for t in target.tests if (dest / t.split("::")[0]).exists()]
    settings = {
        "source_paths": ["pgbench"],
        "only_mutate": [target.module],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": [*FAST, "-p", "no:cacheprovider", "-q"],
        "process_isolation": "forkserver",  # torch is not fork-safe once it has run
        "use_git_change_detection": False,
    }
    with open(dest / "pyproject.toml", "a") as f:
        f.write("\n[tool.mutmut]\n")
        for key, value in settings.items():
            f.write(f"{key} = {json.dumps(value, ensure_ascii=False)}\n")


def read_results(work: Path, target: Target) -> dict:
    meta = work / "mutants" / (target.module + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    if target.functions:
        from fnmatch import fnmatch
        codes = {k: v for k, v in codes.items()
                 if any(fnmatch(k, pattern(target, f)) for f in target.functions)}
    by_status: dict[str, list[str]] = {}
    for name, code in sorted(codes.items()):
        by_status.setdefault(status_of(code), []).append(name)
    tried = sum(len(v) for s, v in by_status.items() if s not in ("not tried", "skipped"))
    caught = sum(len(by_status.get(s, [])) for s in CAUGHT)
    survivors = {}
    for name in (by_status.get("survived", []) + by_status.get("no tests", []))[:MAX_SHOWN]:
        shown = subprocess.run([*mutmut_cmd(), "show", name], cwd=work,
                               capture_output=True, text=True, env=mutmut_env(work))
        survivors[name] = [ln for ln in shown.stdout.splitlines()
                           if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return {"module": target.module, "functions": list(target.functions), "tests": list(target.tests),
            "mutants": len(codes), "tried": tried, "caught": caught,
            "kill_rate": round(caught / tried, 4) if tried else None,
            "counts": {s: len(v) for s, v in by_status.items()}, "survivors": survivors}


def pattern(target: Target, function: str) -> str:
    """mutmut's glob for mutants of ``function`` (or, starting with "*", one mutant by name:
    mutmut looks up the tests of a name without "*" and fails if it has none)."""
    if function.startswith("*"):
        return function
    return target.module.removesuffix(".py").replace("/", ".") + "." + function


def mutmut_env(work: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(work)  # the copy's pgbench, never an installed one
    return env


def run_target(name: str, target: Target, out: Path, seconds: float, children: int) -> dict:
    work = out / name
    scratch_copy(work, target)
    cmd = [*mutmut_cmd(), "run", "--max-children", str(children),
           *(pattern(target, f) for f in target.functions)]
    t0 = time.monotonic()
    with open(work / "mutmut.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                                env=mutmut_env(work), start_new_session=True)
        try:
            proc.wait(timeout=seconds)
            finished = True
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # mutmut saves what it has tried
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            finished = False
    result = read_results(work, target)
    result.update(seconds=round(time.monotonic() - t0), finished=finished, note=target.note,
                  mutmut_exit=proc.returncode)
    return result




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help=f"default: all of {', '.join(TARGETS)}")
    ap.add_argument("--budget", type=float, default=3600.0, help="seconds for all targets")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pgbench-mutation"))
    ap.add_argument("--max-children", type=int, default=1, help="mutants run at once")
    ap.add_argument("--survivors-of", type=Path, metavar="DIR",
                    help="run only the mutants that survived in DIR/summary.json (after adding "
                         "tests), each target's survivors against its tests as they are now")
    args = ap.parse_args(argv)
    targets = dict(TARGETS)
    if args.survivors_of:
        before = json.loads((args.survivors_of / "summary.json").read_text())["targets"]
        targets = {}
        for name, r in before.items():
            if r["survivors"]:
                targets[name] = Target(TARGETS[name].module, TARGETS[name].tests,
                                       tuple("*" + k for k in r["survivors"]),
                                       note=f"survivors of {args.survivors_of}")
    names = args.targets or list(targets)
    bad = [n for n in names if n not in targets]
    if bad:
        ap.error(f"unknown target {bad[0]!r}; accepted: {', '.join(targets)}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "cpu": cpu_model(), "targets": {}}
    deadline = time.monotonic() + args.budget
    for i, name in enumerate(names):
        share = (deadline - time.monotonic()) / (len(names) - i)  # unused time passes on
        if share <= 0:
            break
        print(f"[{datetime.now():%H:%M:%S}] {name}: up to {share:.0f} s", flush=True)
        r = run_target(name, targets[name], args.out, share, args.max_children)
        summary["targets"][name] = r
        print(f"    {r['caught']}/{r['tried']} caught of {r['mutants']} mutants "
              f"({r['counts']}) in {r['seconds']} s", flush=True)
        tmp = args.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
        tmp.replace(args.out / "summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
