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
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from pgbench.core.provenance import cpu_model

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "not slow and not browser", "-n", "0"]  # one process: mutmut traces in-process


@dataclass(frozen=True)
class Target:
    """What to mutate (a module, optionally only some of its functions) and which tests run."""

    module: str  # path of the source file, e.g. "pgbench/rl/estimators.py"
    tests: tuple[str, ...]  # pytest node ids or files: the fast tests that cover the module
    functions: tuple[str, ...] = ()  # mutmut name globs inside the module; () = every function
    note: str = ""


# In the order to run them when time is short: the maths first.
_GAPS = "tests/test_mutation_gaps.py"  # tests written for earlier runs' survivors
_TRAIN_MATHS_TESTS = ("tests/test_planted_bugs.py", _GAPS,
                      "tests/test_train.py::test_stacked_adam_counts_each_seeds_steps",
                      "tests/test_train.py::test_stacked_adam_matches_torch_adam",
                      "tests/test_train.py::test_update_passes_give_each_seed_its_own_block_widths",
                      "tests/test_stopping_rules.py")
_CLAIMS_TESTS = ("tests/test_claims.py", "tests/test_claim_verdicts.py", "tests/test_claims_parse.py")
_EXACT_TESTS = ("tests/test_exactgrad.py", _GAPS)
_ALGO_TESTS = ("tests/test_algorithms_maths.py", _GAPS)
TARGETS: dict[str, Target] = {
    "estimators": Target("pgbench/rl/estimators.py",
                         ("tests/test_estimators.py", _GAPS, "tests/test_planted_bugs.py")),
    # the training maths (advantages, losses, stopping rules, Adam), not the loop plumbing,
    # which the whole-run tests (slow) cover
    "update-maths": Target(
        "pgbench/training/update.py", _TRAIN_MATHS_TESTS,
        ("x_advantages__mutmut_*", "x_policy_loss__mutmut_*", "x_block_widths__mutmut_*"),
        note="advantages, policy_loss, block_widths"),
    "run-log": Target("pgbench/runs/log.py", _TRAIN_MATHS_TESTS,
                      ("x_record_episode__mutmut_*", "x_stop_reason__mutmut_*"),
                      note="record_episode, stop_reason"),
    # StackedAdam.step is decorated (@torch.no_grad), and mutmut 3 skips decorated functions
    "optim": Target("pgbench/training/optim.py", _TRAIN_MATHS_TESTS,
                    ("xǁStackedAdamǁ_corrections__mutmut_*",),
                    note="StackedAdam._corrections (step is decorated: mutmut skips it)"),
    "train-update": Target(
        "pgbench/training/group.py",
        ("tests/test_planted_bugs.py::test_torch_update_with_dropout_equals_a_plain_per_step_loop",
         "tests/test_update_critic.py"),
        ("xǁGroupTrainerǁupdate__mutmut_*",),
        note="GroupTrainer.update against plain per-step loops (REINFORCE with dropout; "
             "with a critic, REINFORCE and PPO)"),
    # the PPO / A2C / TRPO losses and steps (pgbench/training/algorithms/)
    "ppo-loss": Target("pgbench/training/algorithms/ppo.py", _ALGO_TESTS,
                       ("x_clipped_surrogate__mutmut_*", "x_value_loss__mutmut_*"),
                       note="clipped_surrogate, value_loss"),
    "a2c-loss": Target("pgbench/training/algorithms/a2c.py", _ALGO_TESTS,
                       ("x_actor_critic_loss__mutmut_*",), note="actor_critic_loss"),
    "algorithms-gae": Target("pgbench/training/algorithms/advantages.py", _ALGO_TESTS),
    "trpo-step": Target("pgbench/training/algorithms/trpo.py", _ALGO_TESTS,
                        ("x_conjugate_gradient__mutmut_*", "x_kl_line_search__mutmut_*"),
                        note="conjugate_gradient, kl_line_search"),
    "stats-metrics": Target("pgbench/stats/metrics.py", ("tests/test_stats.py", _GAPS)),
    "stats-bootstrap": Target("pgbench/stats/bootstrap.py", ("tests/test_stats.py", _GAPS)),
    "stats-survival": Target("pgbench/stats/survival.py", ("tests/test_stats.py", _GAPS)),
    "stats-smallsample": Target("pgbench/stats/smallsample.py",
                                ("tests/test_stats.py", _GAPS, *_CLAIMS_TESTS)),
    "claims-model": Target("pgbench/claims/model.py", _CLAIMS_TESTS),
    "claims-evaluate": Target("pgbench/claims/evaluate.py", _CLAIMS_TESTS),
    "claims-run-statistics": Target("pgbench/claims/run_statistics.py", _CLAIMS_TESTS),
    "check-gate": Target("pgbench/check/gate.py", ("tests/test_check.py",)),
    "gradstudy-terms": Target("pgbench/gradstudy/terms.py",
                              ("tests/test_gradstudy.py", "tests/test_policy_gradient.py", _GAPS)),
    "gradstudy-batches": Target("pgbench/gradstudy/batches.py",
                                ("tests/test_gradstudy.py", "tests/test_policy_gradient.py", _GAPS)),
    # the exact gradient study: closed-form moments, the tiny MDPs' exact gradient and return
    "exact-moments": Target("pgbench/gradstudy/exactgrad.py", _EXACT_TESTS),
    "exact-mdp": Target("pgbench/gradstudy/tinymdp.py", _EXACT_TESTS,
                        ("x_action_probabilities__mutmut_*", "x_enumerate_trajectories__mutmut_*",
                         "x_exact_policy_gradient__mutmut_*", "x_exact_return__mutmut_*"),
                        note="action_probabilities, enumerate_trajectories, exact_policy_gradient, "
                             "exact_return"),
    "exact-study": Target("pgbench/gradstudy/exactstudy.py", _EXACT_TESTS,
                          ("x_exact_forms__mutmut_*", "x_exact_moments__mutmut_*",
                           "x_exact_values__mutmut_*"),
                          note="exact_forms, exact_moments, exact_values"),
    "gradient-statistics": Target("pgbench/claims/gradient_statistics.py",
                                  ("tests/test_gradstudy.py", _GAPS)),
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
        f.writelines(f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in settings.items())


def read_results(work: Path, target: Target, selected: list[str]) -> dict:
    """Counts over the ``selected`` mutants (a mutant mutmut has no result for: "not tried")."""
    meta = work / "mutants" / (target.module + ".meta")
    found = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    codes = {k: found.get(k) for k in selected}
    by_status: dict[str, list[str]] = {}
    for name, code in sorted(codes.items()):
        by_status.setdefault(status_of(code), []).append(name)
    tried = sum(len(v) for s, v in by_status.items() if s not in ("not tried", "skipped"))
    caught = sum(len(by_status.get(s, [])) for s in CAUGHT)
    survivors = {}
    for name in (by_status.get("survived", []) + by_status.get("no tests", []))[:MAX_SHOWN]:
        shown = subprocess.run([*mutmut_cmd(), "show", name], cwd=work, check=False,
                               capture_output=True, text=True, env=mutmut_env(work))
        survivors[name] = [ln for ln in shown.stdout.splitlines()
                           if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return {"module": target.module, "functions": list(target.functions), "tests": list(target.tests),
            "selected": len(codes), "tried": tried, "caught": caught,
            "kill_rate": round(caught / tried, 4) if tried else None,
            "kill_rate_ci95": [round(x, 4) for x in wilson(caught, tried)] if tried else None,
            "counts": {s: len(v) for s, v in by_status.items()}, "survivors": survivors,
            "not_tried": by_status.get("not tried", [])}


_ENUMERATE = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name
path = Path(sys.argv[1])
names = mutate_file_contents(str(path), path.read_text()).mutant_names
print(json.dumps([get_mutant_name(path, n) for n in names]))
"""


def all_mutants(work: Path, target: Target) -> list[str]:
    """Every mutant mutmut makes of the target's functions, by the names ``mutmut run`` uses
    (mutmut's own generator, run in the scratch copy, where its settings are)."""
    out = subprocess.run([sys.executable, "-c", _ENUMERATE, target.module], cwd=work, check=True,
                         capture_output=True, text=True, env=mutmut_env(work)).stdout
    names = json.loads(out)
    if target.functions:
        names = [k for k in names if any(fnmatch(k, pattern(target, f)) for f in target.functions)]
    return sorted(names)


def sample_size(population: int, count: int | None, fraction: float | None) -> int:
    """How many of a target's ``population`` mutants to run: all, ``count``, or ``fraction``
    of them rounded up (proportional allocation: every mutant of every target has the same
    chance, so the pooled kill rate is a plain random-sample estimate)."""
    n = population
    if count is not None:
        n = min(n, count)
    if fraction is not None:
        n = min(n, math.ceil(fraction * population))
    return n


def sample_mutants(names: list[str], n: int, seed: int, target_name: str) -> list[str]:
    """A uniform random sample of ``n`` names, the same for the same seed on any machine
    (``random.Random`` seeded with a string hashes it with SHA-512, not with Python's hash)."""
    if n >= len(names):
        return list(names)
    return sorted(random.Random(f"{seed}/{target_name}").sample(names, n))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (95% by default) for a proportion k / n (n > 0)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


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


def run_target(name: str, target: Target, out: Path, seconds: float, children: int,
               sample: tuple[int | None, float | None, int] = (None, None, 0)) -> dict:
    """Run mutmut on the target's mutants (a seeded random sample of them if ``sample`` =
    (count, fraction, seed) asks for one) until they are done or ``seconds`` have passed."""
    work = out / name
    scratch_copy(work, target)
    population = all_mutants(work, target)
    count, fraction, seed = sample
    n = sample_size(len(population), count, fraction)
    selected = sample_mutants(population, n, seed, name)
    if n < len(population):  # "*": mutmut then does not require each name to have tests
        patterns = ["*" + k for k in selected]
    else:
        patterns = [pattern(target, f) for f in target.functions]
    cmd = [*mutmut_cmd(), "run", "--max-children", str(children), *patterns]
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
    result = {"mutants": len(population), "sampled": n < len(population),
              **read_results(work, target, selected)}
    result.update(seconds=round(time.monotonic() - t0), finished=finished, note=target.note,
                  mutmut_exit=proc.returncode)
    return result




def totals(results: dict) -> dict:
    """All targets together: counts, the pooled kill rate and its Wilson interval (a fair
    estimate of the whole population's rate when every target ran all its mutants or the same
    fraction of them, and every selected mutant was tried)."""
    keys = ("mutants", "selected", "tried", "caught")
    t = {k: sum(r[k] for r in results.values()) for k in keys}
    t["kill_rate"] = round(t["caught"] / t["tried"], 4) if t["tried"] else None
    t["kill_rate_ci95"] = [round(x, 4) for x in wilson(t["caught"], t["tried"])] if t["tried"] else None
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help=f"default: all of {', '.join(TARGETS)}")
    ap.add_argument("--budget", type=float, default=3600.0, help="seconds for all targets")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pgbench-mutation"))
    ap.add_argument("--max-children", type=int, default=1, help="mutants run at once")
    ap.add_argument("--survivors-of", type=Path, metavar="DIR",
                    help="run only the mutants that survived in DIR/summary.json (after adding "
                         "tests), each target's survivors against its tests as they are now")
    ap.add_argument("--with-untried", action="store_true",
                    help="with --survivors-of: also the selected mutants DIR's run did not try")
    ap.add_argument("--sample", type=int, metavar="N",
                    help="run a uniform random sample of at most N mutants of each target")
    ap.add_argument("--sample-fraction", type=float, metavar="F",
                    help="run a uniform random sample of ceil(F x its mutants) of each target")
    ap.add_argument("--sample-seed", type=int, default=0, metavar="S",
                    help="seed of the samples (each target's sample is drawn with S and its name)")
    args = ap.parse_args(argv)
    targets = dict(TARGETS)
    if args.survivors_of:
        before = json.loads((args.survivors_of / "summary.json").read_text())["targets"]
        targets = {}
        for name, r in before.items():
            again = [*r["survivors"], *(r.get("not_tried", []) if args.with_untried else [])]
            if again:
                targets[name] = Target(TARGETS[name].module, TARGETS[name].tests,
                                       tuple("*" + k for k in again),
                                       note=f"survivors of {args.survivors_of}")
    names = args.targets or list(targets)
    bad = [n for n in names if n not in targets]
    if bad:
        ap.error(f"unknown target {bad[0]!r}; accepted: {', '.join(targets)}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
               "date": datetime.now(UTC).isoformat(timespec="seconds"),
               "cpu": cpu_model(), "sample": args.sample, "sample_fraction": args.sample_fraction,
               "sample_seed": args.sample_seed, "targets": {}}
    deadline = time.monotonic() + args.budget
    for i, name in enumerate(names):
        share = (deadline - time.monotonic()) / (len(names) - i)  # unused time passes on
        if share <= 0:
            break
        print(f"[{datetime.now():%H:%M:%S}] {name}: up to {share:.0f} s", flush=True)
        r = run_target(name, targets[name], args.out, share, args.max_children,
                       (args.sample, args.sample_fraction, args.sample_seed))
        summary["targets"][name] = r
        summary["total"] = totals(summary["targets"])
        print(f"    {r['caught']}/{r['tried']} caught of {r['selected']} selected of "
              f"{r['mutants']} mutants ({r['counts']}) in {r['seconds']} s", flush=True)
        tmp = args.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
        tmp.replace(args.out / "summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
