"""Speed of the gradient study: batched per-episode gradients against a backward per episode.

Part 1, in this one process, on the same batch: 64 CartPole-v1 episodes of the 4-128-2 ReLU
policy frozen at the study's ``init`` and ``q75`` snapshots (pgbench's trainer, default study
settings, seed 0; episodes of ~20 and a few hundred steps). Per-episode gradients
``grad sum_t w_t log pi_t`` are computed

  (a) loop     a loop over episodes: one forward pass each, one ``torch.autograd.grad`` per
               weighting through it (the plain way);
  (b) vmap     ``pgbench.gradstudy.terms.weighted_episode_grads``: ``torch.func.vjp`` + ``vmap`` over
               episodes and weightings, episodes chunked by length;
  (c) gradients ``pgbench.rl.gradients.per_episode_grads`` (``vmap(grad)``, one weighting, padded
               to the env's step limit as the trainer's batches are).

for 1 weighting (the score) and for the 4 weightings the study uses per pool (score,
reward-to-go, and two time baselines). Arms are interleaved and repeated; the median wall time is
reported, with process CPU time (wall > CPU means the process was descheduled on a shared
machine). All arms agree to float32 rounding; the script checks it.

Part 2: the wall time of ``pgbench gradstudy --env ENV --seed 0 --out DIR`` with the default
settings, for CartPole-v1 and InvertedPendulum-v5 (a subprocess each, imports included).

Usage::

    python benchmarks/gradstudy_speed.py                 # both parts, 3 repeats of part 1
    python benchmarks/gradstudy_speed.py --skip-study    # part 1 only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.core import seeding
from pgbench.gradstudy import cli, snapshots
from pgbench.gradstudy import terms as gterms
from pgbench.rl import estimators
from pgbench.rl.config import make_config
from pgbench.rl.gradients import per_episode_grads, weighted_episode_grads
from pgbench.rl.policies import log_prob_and_entropy
from pgbench.training.rollout import Collector
from pgbench.training.specs import policy_spec

ENV_ID = "CartPole-v1"
EPISODES = 64


def loop_grads(params, spec, obs, actions, weights):
    """(E, W, P): a loop over episodes, each with its own forward pass (on its own length) and
    one ``torch.autograd.grad`` per weighting through it: the plain way, made as fair as it gets."""
    names = sorted(params)
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    out = []
    for e in range(weights.shape[0]):
        T = int((weights[e] != 0).any(0).nonzero().max()) + 1
        logp, _ = log_prob_and_entropy(p, obs[e:e + 1, :T], actions[e:e + 1, :T], spec)
        rows = []
        for w in range(weights.shape[1]):
            grads = torch.autograd.grad(logp[0], [p[k] for k in names], weights[e, w, :T],
                                        retain_graph=w < weights.shape[1] - 1)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        out.append(torch.stack(rows))
    return torch.stack(out)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def part1(repeats: int) -> list[dict]:
    cfg = make_config(cli.DEFAULT_VARIANT, {"env_id": ENV_ID, **cli.DEFAULT_TRAIN_SETTINGS})
    spec = policy_spec(cfg)
    snaps, _ = snapshots.take_snapshots(cfg, 0, {"init": None, "q75": 0.75})
    rows = []
    for name, snap in snaps.items():
        rows += time_snapshot(name, snap.params, spec, repeats)
    return rows


def time_snapshot(name, params, spec, repeats: int) -> list[dict]:
    streams = seeding.snapshot_streams(0, "benchmark")
    collector = Collector(ENV_ID, spec, EPISODES, {"env": [streams["pool_env"]],
                                                        "noise": [streams["pool_noise"]]})
    try:
        full = collector.collect_round(params)  # padded to the step limit
    finally:
        collector.close()
    batch = gterms.trim(full, EPISODES)
    lengths = batch.lengths[0]
    print(f"snapshot {name}: {EPISODES} episodes, lengths {lengths.min()}-{lengths.max()} "
          f"(mean {lengths.mean():.0f}), {lengths.sum()} steps; policy "
          f"{spec.obs_dim}-{'-'.join(map(str, spec.hidden))}-{spec.act_dim}", file=sys.stderr)

    mask = batch.mask[0]
    rtg = estimators.reward_to_go(batch.rewards[0], mask, 1.0)
    four = np.stack([mask.astype(float), rtg, gterms.leave_one_out_time_baseline(rtg, mask, 4),
                     gterms.leave_one_out_time_baseline(rtg, mask, 16)], axis=1)
    weightings = {1: torch.from_numpy(four[:, :1]).float(), 4: torch.from_numpy(four).float()}
    obs, actions = batch.obs[0], batch.actions[0]
    full_mask = torch.from_numpy(full.mask).float()

    arms = {}
    for w in weightings:
        arms[(w, "loop")] = lambda w=w: loop_grads(params, spec, obs, actions, weightings[w])
        arms[(w, "vmap")] = lambda w=w: weighted_episode_grads(params, spec, obs, actions,
                                                                  weightings[w])
    arms[(1, "gradients")] = lambda: per_episode_grads(params, spec, full, full_mask)[0][:, None]
    for fn in arms.values():  # warm-up: torch.func traces on first use
        fn()
    times = {key: [] for key in arms}
    results = {}
    keys = list(arms)
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotate the order each repeat
            results[key], wall, cpu = timed(arms[key])
            times[key].append((wall, cpu))
    rows = []
    for (w, arm), samples in times.items():
        ref = results[(w, "loop")]
        err = float((results[(w, arm)] - ref).abs().max() / ref.abs().max())
        assert err < 1e-4, (w, arm, err)
        rows.append({"snapshot": name, "mean_length": float(lengths.mean()), "weightings": w,
                     "arm": arm, "wall_s": statistics.median(s[0] for s in samples),
                     "cpu_s": statistics.median(s[1] for s in samples), "max_rel_diff": err})
    for r in rows:
        loop = next(x["wall_s"] for x in rows if x["weightings"] == r["weightings"]
                    and x["arm"] == "loop")
        r["speedup"] = loop / r["wall_s"]
        r["episode_grads_per_s"] = EPISODES * r["weightings"] / r["wall_s"]
    return rows


def part2() -> list[dict]:
    rows = []
    for env in ("CartPole-v1", "InvertedPendulum-v5"):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "pgbench.cli", "gradstudy", "--env", env, "--seed", "0",
                   "--out", out]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            with open(os.path.join(out, "gradstudy.json"), encoding="utf-8") as fh:
                info = json.load(fh)
        snaps = info["snapshots"].values()
        rows.append({
            "env": env, "wall_s": wall, "training_steps": info["training"]["env_steps"],
            "episodes": sum(s["pool_episodes"] + s["reference_episodes"] for s in snaps),
            "env_steps": sum(s["pool_env_steps"] + s["reference_env_steps"] for s in snaps),
            "per_snapshot": {k: (s["pool_episodes"], s["reference_episodes"],
                                 round(sum(s["seconds"].values()), 1))
                             for k, s in info["snapshots"].items()},
        })
        print(f"  {env}: {wall:.1f}s", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of part 1 (median)")
    parser.add_argument("--skip-study", action="store_true", help="skip part 2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, torch threads {torch.get_num_threads()}")
    rows = part1(args.repeats)
    print("\n| snapshot (mean length) | weightings | arm | wall s | CPU s | episode-gradients/s "
          "| speed-up vs loop |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['snapshot']} ({r['mean_length']:.0f}) | {r['weightings']} | {r['arm']} | "
              f"{r['wall_s']:.3f} | {r['cpu_s']:.3f} | {r['episode_grads_per_s']:.0f} | "
              f"{r['speedup']:.1f}x |")
    if args.skip_study:
        return
    print("\n| env | wall s | training env steps | study episodes | study env steps | "
          "per snapshot: pool + reference episodes, seconds |")
    print("|---|---:|---:|---:|---:|---|")
    for r in part2():
        per = "; ".join(f"{k}: {p} + {q}, {s}s" for k, (p, q, s) in r["per_snapshot"].items())
        print(f"| {r['env']} | {r['wall_s']:.1f} | {r['training_steps']} | {r['episodes']} | "
              f"{r['env_steps']} | {per} |")


if __name__ == "__main__":
    main()
