"""``pgbench train``: train one (env, variant) for one or more seeds, each into its run directory.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from pgbench.core.errors import UserError
from pgbench.envs.registry import check_env_id
from pgbench.rl.config import FIELD_NAMES, TrainConfig, make_config, parse_set_options
from pgbench.training.runner import RunRequest, train_runs
from pgbench.training.specs import policy_spec


# -- command line ---------------------------------------------------------------------------
def configure_parser(parser) -> None:
    parser.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    parser.add_argument("--variant", required=True, help="estimator variant (see `pgbench variants`)")
    parser.add_argument("--seed", type=int, nargs="+", required=True,
                        help="seed(s); several seeds train together in one process, each giving "
                             "the numbers it would give alone")
    parser.add_argument("--total-steps", type=int, help="env-step budget per seed")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--episodes-per-update", type=int, help="whole episodes per update")
    group.add_argument("--steps-per-update", type=int, help="env steps per update (whole episodes)")
    parser.add_argument("--stop-when-solved", action="store_true",
                        help="stop once the running reward reaches the env's reward_threshold")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a setting; keys: {', '.join(FIELD_NAMES)}")
    parser.add_argument("--out", required=True,
                        help="run directory; with several seeds, a pattern containing {seed} "
                             "(default: OUT/seed{seed})")
    parser.add_argument("--suite", default="", help="suite name recorded in run.json (metadata)")
    parser.add_argument("--arm", default="", help="arm name recorded in run.json (metadata)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="the settings this arm varies, recorded in run.json (metadata)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing run directory of another config (never files "
                             "pgbench did not write); a complete run of the same config is "
                             "always skipped")
    parser.add_argument("--skip-existing", action="store_true",
                        help="accepted for old scripts: complete runs of the same config are "
                             "always skipped")


def build_config(args) -> TrainConfig:
    overrides = parse_set_options(args.set)
    for name, value in (("total_steps", args.total_steps), ("episodes_per_update", args.episodes_per_update),
                        ("steps_per_update", args.steps_per_update)):
        if value is not None:
            overrides[name] = value
    if args.steps_per_update is not None and "episodes_per_update" not in overrides:
        overrides["episodes_per_update"] = 0
    if args.episodes_per_update is not None and "steps_per_update" not in overrides:
        overrides["steps_per_update"] = 0
    if args.stop_when_solved:
        overrides["stop_when_solved"] = True
    overrides["env_id"] = args.env
    overrides["seed"] = args.seed[0]
    cfg = make_config(args.variant, overrides)
    check_env_id(cfg.env_id)
    policy_spec(cfg)  # fails here, before anything is written, on an unsupported space
    return cfg


def out_dirs_for(pattern: str, seeds: list[int]) -> list[Path]:
    if len(seeds) == 1 and "{seed}" not in pattern:
        return [Path(pattern)]
    if "{seed}" not in pattern:
        pattern = os.path.join(pattern, "seed{seed}")
    return [Path(pattern.format(seed=s)) for s in seeds]


def run(args) -> int:
    if len(set(args.seed)) != len(args.seed):
        raise UserError(f"repeated seed in --seed {args.seed}; give each seed once")
    if any(s < 0 for s in args.seed):
        raise UserError(f"bad --seed {args.seed}; accepted: integers >= 0")
    cfg = build_config(args)
    from pgbench.training.job import runs_to_train

    setting = dict(item.split("=", 1) for item in args.setting if "=" in item)
    meta = {"suite": args.suite, "arm": args.arm or cfg.variant, "setting": setting,
            "command": " ".join(["pgbench", "train", *sys.argv[2:]]) if sys.argv else ""}
    requests = runs_to_train([RunRequest(replace(cfg, seed=s), d, meta) for s, d in
                              zip(args.seed, out_dirs_for(args.out, list(args.seed)))],
                             force=args.force, prog="pgbench train", option="--out")
    if not requests:
        return 0
    tty = sys.stderr.isatty()
    logs = train_runs(requests, show_progress=tty, log_progress=None if tty else sys.stderr)
    for log, d in zip(logs, (r.out_dir for r in requests)):
        solved = (f"solved at {log.solved['env_steps']} steps ({log.solved['episode'] + 1} episodes)"
                  if log.solved else "not solved")
        print(f"seed {log.seed}: {log.env_steps} steps, {log.episodes} episodes, {solved} -> {d}")
    return 0
