"""``pgbench train-job``: train every arm of a (suite, env) for a block of seeds, in one process.

This is the pipeline's training job (workflow/rules/train.smk). ``--spec`` is one JSON object,
given inline or as ``@FILE``::

    {"suite": "slides", "env": "CartPole-v1",
     "arms": [{"arm": "vanilla__dropout=0.6", "variant": "vanilla",
               "overrides": {"lr": 0.01, "dropout": 0.6},
               "setting": {"dropout": 0.6},
               "seeds": [0, 1],
               "out": "results/runs/slides/CartPole-v1/vanilla__dropout=0.6/seed{seed}"}]}

``overrides`` are TrainConfig fields (not env_id, variant or seed: the spec sets those);
``setting`` holds the settings the arm varies, recorded in run.json; in ``out`` every ``{seed}``
is replaced by the seed. ``overrides`` and ``setting`` may be left out. The whole spec is checked
before anything is written. Each run directory is the one ``pgbench train`` writes; its
``meta.command`` is the ``pgbench train`` command that trains the arm's seeds alone (same numbers),
while ``provenance.argv`` records the command actually run.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from pgbench.core.errors import UserError
from pgbench.core.outputs import RUN, WRITE, check_dir
from pgbench.envs.registry import check_env_id
from pgbench.rl.config import FIELD_NAMES, make_config
from pgbench.runs.store import is_complete
from pgbench.training.runner import RunRequest, train_runs
from pgbench.training.specs import policy_spec

SPEC_KEYS = ("suite", "env", "arms")


ARM_KEYS = ("arm", "variant", "overrides", "setting", "seeds", "out")


ARM_REQUIRED = ("arm", "variant", "seeds", "out")


SET_BY_SPEC = ("env_id", "variant", "seed")


def read_spec(text: str) -> Any:
    """The JSON value of ``--spec``: the text itself, or the file named after an ``@``."""
    source = "--spec"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text()
        except OSError as err:
            raise UserError(f"cannot read the spec file {source!r}: {err.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{source} is not valid JSON ({err}); expected an object with keys "
                        f"{', '.join(SPEC_KEYS)}") from None


def _object(value: Any, where: str, accepted=(), required=()) -> dict:
    if not isinstance(value, dict):
        keys = f" with keys {', '.join(accepted)}" if accepted else ""
        raise UserError(f"{where} is a {type(value).__name__}; expected a JSON object{keys}")
    if accepted:
        for key in value:
            if key not in accepted:
                raise UserError(f"unknown key {key!r} in {where}; accepted: {', '.join(accepted)}")
    for key in required:
        if key not in value:
            raise UserError(f"{where} has no {key!r}; required: {', '.join(required)}")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"bad {what} {value!r}; expected a non-empty string")
    return value


def _seeds(value: Any, where: str) -> list[int]:
    if (not isinstance(value, list) or not value
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value)):
        raise UserError(f"bad seeds {value!r} of {where}; expected a non-empty list of integers >= 0")
    if len(set(value)) != len(value):
        raise UserError(f"repeated seed in {value} of {where}; give each seed once")
    return value


def _text(value: Any) -> str:
    """A setting as run.json's ``meta.setting`` and ``--set`` write it (lists comma-joined)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def train_command(suite: str, env: str, arm: str, variant: str, overrides: dict, setting: dict,
                  seeds: list[int], out: str) -> str:
    """The ``pgbench train`` command that trains this arm's seeds alone."""
    args = ["pgbench", "train", "--env", env, "--variant", variant, "--seed", *map(str, seeds),
            "--out", out, "--suite", suite, "--arm", arm]
    for key, value in sorted(overrides.items()):
        args += ["--set", f"{key}={_text(value)}"]
    for key, value in sorted(setting.items()):
        args += ["--setting", f"{key}={_text(value)}"]
    return shlex.join(args)


def build_requests(spec: Any) -> list[RunRequest]:
    """Every run a spec asks for. Raises UserError on the first bad value; trains nothing."""
    _object(spec, "the spec", SPEC_KEYS, SPEC_KEYS)
    suite, env = _name(spec["suite"], "suite"), _name(spec["env"], "env")
    check_env_id(env)
    if not isinstance(spec["arms"], list) or not spec["arms"]:
        raise UserError(f"bad arms {spec['arms']!r}; expected a non-empty list of arm objects "
                        f"with keys {', '.join(ARM_KEYS)}")
    requests, arm_of_config, out_dirs = [], {}, set()
    for i, arm_spec in enumerate(spec["arms"]):
        _object(arm_spec, f"arms[{i}]", ARM_KEYS, ARM_REQUIRED)
        arm = _name(arm_spec["arm"], f"arm name in arms[{i}]")
        where = f"arm {arm!r}"
        if arm in arm_of_config.values():
            raise UserError(f"{where} is given twice; give each arm once (in a suite: list each "
                            "value of a varied setting once)")
        variant = _name(arm_spec["variant"], f"variant of {where}")
        seeds = _seeds(arm_spec["seeds"], where)
        out = _name(arm_spec["out"], f"out of {where}")
        if "{seed}" not in out:
            raise UserError(f"bad out {out!r} of {where}; expected a path containing {{seed}}, "
                            f"e.g. runs/{arm}/seed{{seed}}")
        overrides = _object(arm_spec.get("overrides", {}), f"the overrides of {where}")
        setting = _object(arm_spec.get("setting", {}), f"the setting of {where}")
        for key in overrides:
            if key in SET_BY_SPEC:
                raise UserError(f"the overrides of {where} set {key!r}; the spec's env, variant "
                                f"and seeds set {', '.join(SET_BY_SPEC)}")
        for key in setting:
            if key not in FIELD_NAMES:
                raise UserError(f"unknown setting {key!r} in {where}; accepted: {', '.join(FIELD_NAMES)}")
        try:
            configs = [make_config(variant, {**overrides, "env_id": env, "seed": s}) for s in seeds]
            policy_spec(configs[0])  # an unsupported space fails here, before anything is written
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        same = arm_of_config.setdefault(configs[0].hash(with_seed=False), arm)
        if same != arm:
            raise UserError(f"arms {same!r} and {arm!r} have the same config; give each config once "
                            "(in a suite: list each value of a varied setting once)")
        meta = {"suite": suite, "arm": arm, "setting": {k: _text(v) for k, v in setting.items()},
                "command": train_command(suite, env, arm, variant, overrides, setting, seeds, out)}
        for cfg in configs:
            out_dir = Path(out.replace("{seed}", str(cfg.seed)))
            if out_dir in out_dirs:
                raise UserError(f"two runs would write {out_dir}; give each arm its own out")
            out_dirs.add(out_dir)
            requests.append(RunRequest(cfg, out_dir, meta))
    return requests


# -- command line ---------------------------------------------------------------------------
def configure_parser(parser) -> None:
    parser.add_argument("--spec", required=True, metavar="JSON|@FILE",
                        help='the job as a JSON object, or @FILE to read it from FILE: {"suite": S, '
                             '"env": ENV, "arms": [{"arm": NAME, "variant": V, "overrides": {...}, '
                             '"setting": {...}, "seeds": [0, 1], "out": "DIR/seed{seed}"}]}')
    parser.add_argument("--force", action="store_true",
                        help="replace run directories of another config (never files pgbench did "
                             "not write); complete runs of the same config are always skipped")
    parser.add_argument("--skip-existing", action="store_true",
                        help="accepted for old scripts: complete runs of the same config are "
                             "always skipped")


def runs_to_train(requests: list[RunRequest], *, force: bool, prog: str,
                  option: str = "out") -> list[RunRequest]:
    """The requests whose run directories are to be (re)written, judged all before any is
    trained (:mod:`pgbench.core.outputs`): a complete run of the same config and seed is skipped,
    with a message; another pgbench run is replaced only with ``force``; a directory holding
    anything else is refused (UserError)."""
    judged = [check_dir(r.out_dir, RUN, force=force, option=option,
                        same=lambda d, cfg=r.cfg: is_complete(d, cfg)) for r in requests]
    todo = [r for r, verdict in zip(requests, judged) if verdict == WRITE]
    skipped = [str(r.out_dir) for r, verdict in zip(requests, judged) if verdict != WRITE]
    if skipped:
        listed = ", ".join(skipped[:2]) + (f" and {len(skipped) - 2} more" if len(skipped) > 2 else "")
        print(f"{prog}: skipping {len(skipped)} of {len(requests)} runs, complete with the same "
              f"config ({listed})", file=sys.stderr)
    return todo


def run(args) -> int:
    requests = runs_to_train(build_requests(read_spec(args.spec)), force=args.force,
                             prog="pgbench train-job")
    if not requests:
        return 0
    tty = sys.stderr.isatty()
    logs = train_runs(requests, show_progress=tty, log_progress=None if tty else sys.stderr)
    for request, log in zip(requests, logs):
        solved = (f"solved at {log.solved['env_steps']} steps ({log.solved['episode'] + 1} episodes)"
                  if log.solved else "not solved")
        print(f"{request.meta['arm']} seed {log.seed}: {log.env_steps} steps, {log.episodes} "
              f"episodes, {solved} -> {request.out_dir}")
    return 0
