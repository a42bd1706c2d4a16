"""``pgbench gradstudy``: its options, and the sampled study of a Gymnasium env end to end
(``--exact`` hands over to :mod:`pgbench.gradstudy.exactstudy`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from pgbench.core.contracts import GRADSTUDY_COLUMNS, LAYERS_COLUMNS, PAIRS_COLUMNS
from pgbench.core.dispatch import configure_torch
from pgbench.core.errors import UserError
from pgbench.gradstudy.snapshots import parse_snapshots, take_snapshots
from pgbench.gradstudy.study import StudySettings, frame, study_one_snapshot
from pgbench.gradstudy.terms import EMA, ESTIMATORS, FIXED, UNBIASED

DEFAULT_SNAPSHOTS = ("init", "q25", "q75")


DEFAULT_VARIANT = "rtg_baseline"


#: Training overrides of the snapshot run (before --set): 8 episodes per update learns steadily
#: on CartPole and InvertedPendulum alike (one episode per update collapses on the latter).
DEFAULT_TRAIN_SETTINGS = {"episodes_per_update": 8, "total_steps": 300_000}


def configure_parser(parser) -> None:
    d = StudySettings()
    parser.add_argument("--env", required=True,
                        help="Gymnasium env id, e.g. CartPole-v1; with --exact a small MDP of "
                             "pgbench.gradstudy.tinymdp (TwoStateChain)")
    parser.add_argument("--exact", action="store_true",
                        help="exact mode: study a small MDP whose trajectories can all be listed, "
                             "and write each estimator's exact mean and variance beside the "
                             "sampled study's (pgbench/gradstudy/exactstudy.py); --snapshots, --variant, "
                             "--set and --max-steps do not apply")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the training run, the episodes and the bootstrap (default: 0)")
    parser.add_argument("--batches", type=int, default=d.batches, metavar="M",
                        help=f"batches of max(K) episodes per snapshot (default: {d.batches}; "
                             "fewer when --max-steps binds). Smaller K split the same episodes "
                             "into more batches")
    parser.add_argument("--episodes", type=int, nargs="+", default=list(d.episodes), metavar="K",
                        help="episodes per batch, one or more (default: "
                             f"{' '.join(map(str, d.episodes))})")
    parser.add_argument("--reference-batches", type=int, default=d.reference_batches, metavar="R",
                        help="batches of max(K) episodes in the independent reference pool "
                             f"(default: {d.reference_batches}; fewer when --max-steps binds)")
    parser.add_argument("--reference-estimator", default=d.reference_estimator,
                        help="estimator whose mean over the reference pool is the reference "
                             f"gradient (default: {d.reference_estimator}: unbiased, and its "
                             "variance is never far from the lowest; vanilla is the textbook "
                             "choice but needs far more episodes)")
    parser.add_argument("--max-steps", type=int, default=d.max_steps,
                        help="expected env steps per snapshot for both pools together, 0 for no "
                             f"cap (default: {d.max_steps}); M and R shrink in proportion, never "
                             "below 2 batches")
    parser.add_argument("--snapshots", default=",".join(DEFAULT_SNAPSHOTS),
                        help="policies studied: init, and qNN = when the running reward first "
                             "reaches NN%% of the reward threshold (default: init,q25,q75)")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), metavar="NAME",
                        help=f"estimators to compare (default: all: {', '.join(ESTIMATORS)})")
    parser.add_argument("--variant", default=DEFAULT_VARIANT,
                        help="variant trained to reach the snapshots (default: rtg_baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a training setting, e.g. --set lr=0.003 (defaults here: "
                             + ", ".join(f"{k}={v}" for k, v in DEFAULT_TRAIN_SETTINGS.items()) + ")")
    parser.add_argument("--gamma", type=float, default=d.gamma,
                        help="discount of returns and reward-to-go in the estimators (default: 1, "
                             "so every unbiased estimator estimates the same gradient)")
    parser.add_argument("--ema-weight", type=float, default=d.ema_weight,
                        help="weight of the newest batch in the running-mean baselines "
                             f"ema_baseline and rtg_ema_baseline (default: {d.ema_weight}, the "
                             "trainer's)")
    parser.add_argument("--n-resamples", type=int, default=d.n_resamples,
                        help=f"bootstrap resamples per interval (default: {d.n_resamples})")
    parser.add_argument("--confidence", type=float, default=d.confidence,
                        help=f"confidence level of the intervals (default: {d.confidence})")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory to write gradstudy.parquet, gradstudy_layers.parquet, "
                             "gradstudy_pairs.parquet and gradstudy.json into")


def settings_from_args(args) -> StudySettings:
    """Validated study settings; UserError naming the bad value and what is accepted."""
    from pgbench.core.errors import choice_error

    for name in args.estimators:
        if name not in ESTIMATORS:
            raise choice_error("estimator", name, ESTIMATORS)
    if len(set(args.estimators)) != len(args.estimators):
        raise UserError(f"repeated estimator in --estimators {' '.join(args.estimators)}")
    usable = [e for e in UNBIASED if e not in FIXED and e not in EMA]
    if args.reference_estimator not in usable:
        raise UserError(f"bad --reference-estimator {args.reference_estimator!r}; accepted (the "
                        f"unbiased estimators that need no reference): {', '.join(usable)}")
    if args.batches < 2:
        raise UserError(f"bad --batches {args.batches}; accepted: an integer >= 2 (a variance "
                        "needs at least two batches)")
    if args.reference_batches < 2:
        raise UserError(f"bad --reference-batches {args.reference_batches}; accepted: an integer >= 2")
    if any(k < 1 for k in args.episodes) or len(set(args.episodes)) != len(args.episodes):
        raise UserError(f"bad --episodes {' '.join(map(str, args.episodes))}; accepted: distinct "
                        "integers >= 1, e.g. 1 4 16")
    if args.max_steps < 0:
        raise UserError(f"bad --max-steps {args.max_steps}; accepted: an integer >= 0 (0: no cap)")
    if not 0.0 < args.ema_weight <= 1.0:
        raise UserError(f"bad --ema-weight {args.ema_weight}; accepted: a number in (0, 1]")
    if not 0.0 <= args.gamma <= 1.0:
        raise UserError(f"bad --gamma {args.gamma}; accepted: a number in [0, 1]")
    if args.n_resamples < 100:
        raise UserError(f"bad --n-resamples {args.n_resamples}; accepted: an integer >= 100")
    if not 0.0 < args.confidence < 1.0:
        raise UserError(f"bad --confidence {args.confidence}; accepted: a number in (0, 1)")
    if args.seed < 0:
        raise UserError(f"bad --seed {args.seed}; accepted: an integer >= 0")
    return StudySettings(
        episodes=tuple(sorted(args.episodes)), batches=args.batches,
        reference_batches=args.reference_batches, reference_estimator=args.reference_estimator,
        max_steps=args.max_steps, estimators=tuple(e for e in ESTIMATORS if e in args.estimators),
        gamma=args.gamma, ema_weight=args.ema_weight, n_resamples=args.n_resamples,
        confidence=args.confidence)


def run(args) -> int:
    if args.exact:
        from pgbench.gradstudy import exactstudy  # (lazy: no torch training code needed)

        return exactstudy.run(args, settings_from_args(args))
    from pgbench.core.io import write_json_atomic, write_parquet_atomic
    from pgbench.core.provenance import provenance
    from pgbench.envs.registry import check_env_id
    from pgbench.rl.config import make_config, parse_set_options
    from pgbench.training.specs import policy_spec

    settings = settings_from_args(args)
    env_spec = check_env_id(args.env)
    wanted = parse_snapshots(args.snapshots, env_spec.reward_threshold)
    given = parse_set_options(args.set)
    overrides = {**DEFAULT_TRAIN_SETTINGS, **given}
    if "steps_per_update" in given and "episodes_per_update" not in given:
        overrides["episodes_per_update"] = 0  # a step quota replaces the default episode quota
    overrides.update(env_id=args.env, seed=args.seed)
    cfg = make_config(args.variant, overrides)
    if cfg.engine != "torch":
        raise UserError(f"bad value engine={cfg.engine!r}: the gradient study trains its "
                        "snapshots and takes its gradients with torch; accepted: torch")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")

    configure_torch(torch)  # one thread (tiny networks), the pinned kernels (dispatch.py)
    started = time.perf_counter()
    spec = policy_spec(cfg)
    snapshots, training = take_snapshots(cfg, args.seed, wanted)
    for name in training["missing"]:
        print(f"pgbench gradstudy: warning: the running reward never reached "
              f"{wanted[name]:.0%} of the threshold {training['threshold']} within "
              f"{cfg.total_steps} env steps; snapshot {name!r} skipped (raise --set total_steps=...)",
              file=sys.stderr)
    if not snapshots:
        raise UserError(f"no snapshot of {args.snapshots!r} was reached within {cfg.total_steps} "
                        "env steps of training; raise --set total_steps=... or add init")
    print(f"pgbench gradstudy: {args.env}: trained {training['env_steps']} env steps "
          f"({time.perf_counter() - started:.1f}s); snapshots {', '.join(snapshots)}", file=sys.stderr)

    rows, layer_rows, pair_rows, per_snapshot = [], [], [], {}
    for name, snap in snapshots.items():
        r, lr, pr, info = study_one_snapshot(args.env, spec, snap, settings, args.seed)
        ident = {"env": args.env, "snapshot": name}
        rows += [{**ident, **x} for x in r]
        layer_rows += [{**ident, **x} for x in lr]
        pair_rows += [{**ident, **x} for x in pr]
        per_snapshot[name] = info
        print(f"pgbench gradstudy: {args.env} {name}: {info['pool_episodes']} + "
              f"{info['reference_episodes']} episodes (mean length "
              f"{info['pilot_mean_length']:.0f}), {sum(info['seconds'].values()):.1f}s",
              file=sys.stderr)

    # Tables first, the JSON that describes them last; each file is replaced atomically.
    write_parquet_atomic(out / "gradstudy_layers.parquet", frame(layer_rows, LAYERS_COLUMNS))
    write_parquet_atomic(out / "gradstudy_pairs.parquet", frame(pair_rows, PAIRS_COLUMNS))
    write_parquet_atomic(out / "gradstudy.parquet", frame(rows, GRADSTUDY_COLUMNS))
    write_json_atomic(out / "gradstudy.json", {
        "schema": 1, "env": args.env, "seed": args.seed,
        "settings": {**settings.__dict__, "snapshots": list(wanted)},
        "training": {"config": cfg.to_dict(), **training},
        "snapshots": per_snapshot,
        "provenance": provenance(elapsed_s=round(time.perf_counter() - started, 3),
                                 command=" ".join(["pgbench", "gradstudy", *sys.argv[2:]])),
    })
    print(f"pgbench gradstudy: {len(rows)} estimator rows, {len(pair_rows)} pairs -> {out} "
          f"({time.perf_counter() - started:.1f}s)")
    return 0
