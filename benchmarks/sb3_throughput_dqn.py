"""pgbench's DQN against Stable-Baselines3's DQN: env steps per second at the same settings.

Both train CartPole-v1 at rl-baselines3-zoo's DQN settings (config/validate_dqn.yaml, from
rl_zoo3 2.9.2's hyperparams/dqn.yml) for ``--steps`` env steps, alternating pgbench and SB3
``--repeats`` times in this one process, so that both see the same machine load; the figure to
quote is the ratio of their median throughputs. Each run's wall and CPU time are measured around
the trainer alone (no run directory is written). Both run under pgbench's pinned CPU dispatch
(importing pgbench pins it for the whole process), one torch thread::

    nice -n 10 python benchmarks/sb3_throughput_dqn.py --steps 8192 --repeats 3

(issue 19 asks for this in the same script as the PPO comparison: algos18's
benchmarks/sb3_throughput.py was not on its branch when this was written; merge the table.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import torch

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.core.dispatch import configure_torch
from pgbench.core.provenance import cpu_model
from pgbench.rl.config import make_config

# rl_zoo3 2.9.2 hyperparams/dqn.yml, CartPole-v1 (each key as config/validate_dqn.yaml cites it)
ZOO_CARTPOLE = {"lr": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
                "gamma": 0.99, "target_update_interval": 10, "train_freq": 256,
                "gradient_steps": 128, "exploration_fraction": 0.16,
                "exploration_final_eps": 0.04, "hidden": (256, 256)}


def time_one(variant: str, steps: int, seed: int) -> tuple[float, float, int]:
    """(wall s, CPU s, env steps) of one training run of ``variant``."""
    from pgbench.training.algorithms import trainer_of

    cfg = make_config(variant, {"env_id": "CartPole-v1", "total_steps": steps, "seed": seed,
                                **ZOO_CARTPOLE})
    train = trainer_of(variant)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    log = train(cfg)
    return time.perf_counter() - wall0, time.process_time() - cpu0, log.env_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import pgbench.rl.variants  # noqa: F401  (registers `dqn`)

    configure_torch(torch)
    rates: dict[str, list[float]] = {"dqn": [], "sb3_dqn": []}
    print(f"# {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_model()}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for rep in range(args.repeats):
        for variant in rates:
            wall, cpu, steps = time_one(variant, args.steps, seed=rep)
            rates[variant].append(steps / cpu)
            print(f"{variant:8s} repeat {rep}: {steps} env steps, wall {wall:.1f} s, CPU {cpu:.1f} s, "
                  f"{steps / cpu:.0f} env steps per CPU-second", flush=True)
    mine, theirs = statistics.median(rates["dqn"]), statistics.median(rates["sb3_dqn"])
    print(f"median env steps per CPU-second: pgbench dqn {mine:.0f}, sb3 dqn {theirs:.0f}; "
          f"ratio pgbench / sb3 = {mine / theirs:.2f}")


if __name__ == "__main__":
    main()
