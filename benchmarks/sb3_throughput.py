"""Training throughput of pgbench's standard algorithms against Stable-Baselines3's, side by side.

For each row of :data:`CASES` (an algorithm on an env, at the same rl-baselines3-zoo
hyperparameters for both), this one process trains pgbench's variant and its SB3 reference
(``sb3_<name>``) for the same env-step budget and seed, through the same entry point
(:func:`pgbench.training.algorithms.trainer_of`), and reports env steps per CPU-second of training ("per
core": both run on one thread, pgbench.core.dispatch pins torch to one) and per wall-second. Each
implementation first trains a short warm-up run (imports, first calls) that is not timed; the
timed repeats are interleaved, pgbench and SB3 alternating first, and the median is reported.

Adding an algorithm is adding rows to ``CASES``: (pgbench variant, SB3 variant, env, settings);
the settings must be valid for both variants. DQN's cost is its gradient steps (128 per 256 env
steps at the zoo's CartPole settings, on 256x256 networks), so give it at least 4,096 steps
(``--steps 4096``: 16 phases of 256 steps; the 13 that end past ``learning_starts`` = 1000 train,
1,664 gradient steps).

Usage::

    python benchmarks/sb3_throughput.py                          # 20k steps, 3 repeats
    python benchmarks/sb3_throughput.py --steps 5000 --repeats 1 --only ppo
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import torch

import pgbench  # noqa: F401, I001  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.core.dispatch import configure_torch
from pgbench.core.provenance import cpu_model
from pgbench.rl.config import make_config
from pgbench.training.algorithms import trainer_of

# rl-baselines3-zoo 2.9.0 hyperparams/ppo.yml, key CartPole-v1 (config/validate.yaml cites each)
PPO_CARTPOLE = {"num_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8,
                "gamma": 0.98, "update_epochs": 20, "entropy_coef": 0.0, "lr": 0.001,
                "anneal_lr": True, "ppo_clip": 0.2, "anneal_clip": True}
# hyperparams/ppo.yml, key InvertedPendulum-v2 (the zoo's only MuJoCo InvertedPendulum entry)
PPO_PENDULUM = {"normalize_obs": True, "normalize_reward": True, "num_envs": 1, "batch_size": 64,
                "n_steps": 32, "gamma": 0.999, "lr": 0.000222425, "entropy_coef": 1.37976e-07,
                "ppo_clip": 0.4, "update_epochs": 5, "gae_lambda": 0.9, "max_grad_norm": 0.3}
# hyperparams/a2c.yml, key CartPole-v1 (n_envs 8, ent_coef 0; the rest SB3's defaults)
A2C_CARTPOLE = {"num_envs": 8, "entropy_coef": 0.0}
# hyperparams/a2c.yml has no InvertedPendulum entry; its &mujoco-defaults (HalfCheetah-v4):
# normalize true, the rest SB3's defaults (n_envs 1)
A2C_PENDULUM = {"normalize_obs": True, "normalize_reward": True, "num_envs": 1}
# rl_zoo3 2.9.2 hyperparams/dqn.yml, key CartPole-v1 (config/validate_dqn.yaml cites each)
DQN_CARTPOLE = {"lr": 0.0023, "batch_size": 64, "buffer_size": 100000, "learning_starts": 1000,
                "gamma": 0.99, "target_update_interval": 10, "train_freq": 256,
                "gradient_steps": 128, "exploration_fraction": 0.16,
                "exploration_final_eps": 0.04, "hidden": [256, 256]}

#: name -> (pgbench variant, SB3 variant, env id, settings)
CASES = {
    "ppo/CartPole-v1": ("ppo", "sb3_ppo", "CartPole-v1", PPO_CARTPOLE),
    "ppo/InvertedPendulum-v5": ("ppo", "sb3_ppo", "InvertedPendulum-v5", PPO_PENDULUM),
    "a2c/CartPole-v1": ("a2c", "sb3_a2c", "CartPole-v1", A2C_CARTPOLE),
    "a2c/InvertedPendulum-v5": ("a2c", "sb3_a2c", "InvertedPendulum-v5", A2C_PENDULUM),
    "dqn/CartPole-v1": ("dqn", "sb3_dqn", "CartPole-v1", DQN_CARTPOLE),
}


def timed(variant: str, cfg) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, env steps) of one training run."""
    train = trainer_of(variant)
    cpu, wall = time.process_time(), time.perf_counter()
    log = train(cfg)
    return time.process_time() - cpu, time.perf_counter() - wall, log.env_steps


def measure(case: str, steps: int, repeats: int) -> dict:
    ours, ref, env, settings = CASES[case]
    cfgs = {v: make_config(v, {**settings, "env_id": env, "total_steps": steps, "seed": 0})
            for v in (ours, ref)}
    for v, cfg in cfgs.items():  # warm-up, not timed
        trainer_of(v)(replace(cfg, total_steps=min(steps, 2048)))
    runs = {ours: [], ref: []}
    for r in range(repeats):
        for v in ((ours, ref) if r % 2 == 0 else (ref, ours)):
            runs[v].append(timed(v, cfgs[v]))
    out = {"case": case, "steps": steps, "repeats": repeats}
    for role, v in (("pgbench", ours), ("sb3", ref)):
        out[f"{role}_steps_per_cpu_s"] = statistics.median(n / c for c, _, n in runs[v])
        out[f"{role}_steps_per_wall_s"] = statistics.median(n / w for _, w, n in runs[v])
    out["ratio_cpu"] = out["pgbench_steps_per_cpu_s"] / out["sb3_steps_per_cpu_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per implementation")
    parser.add_argument("--only", nargs="*", default=None,
                        help="case names or prefixes, e.g. ppo or a2c/CartPole-v1")
    args = parser.parse_args()
    configure_torch(torch)
    cases = [c for c in CASES if not args.only or any(c.startswith(p) for p in args.only)]
    print(f"CPU: {cpu_model()}; torch threads {torch.get_num_threads()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| case | steps | pgbench steps/CPU-s | SB3 steps/CPU-s | pgbench / SB3 (CPU) "
          "| pgbench steps/wall-s | SB3 steps/wall-s |")
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        m = measure(case, args.steps, args.repeats)
        print(f"| {case} | {m['steps']} | {m['pgbench_steps_per_cpu_s']:,.0f} | "
              f"{m['sb3_steps_per_cpu_s']:,.0f} | {m['ratio_cpu']:.2f} | "
              f"{m['pgbench_steps_per_wall_s']:,.0f} | {m['sb3_steps_per_wall_s']:,.0f} |",
              flush=True)
        print("<!-- " + json.dumps(m) + " -->", flush=True)


if __name__ == "__main__":
    main()
