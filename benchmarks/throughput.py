"""Training throughput on CartPole-v1: a textbook per-step REINFORCE loop against pgbench.

Four ways to train the same 4-128-2 ReLU policy (Adam, lr 1e-2, reward-to-go with gamma 0.99
minus a running-mean baseline) for the same number of env steps per seed, in this one process:

  (a) textbook  the PyTorch examples' ``reinforce.py`` way: one ``gym.make`` env, a forward pass
                per step that keeps its autograd graph, one update per episode;
  (b) pgbench   ``GroupTrainer`` with one seed, one episode per update;
  (c) pgbench   one seed, 64 episodes stepped together per update (``episodes_per_update=64``);
  (d) pgbench   one episode per update for a group of 20 seeds batched in one process, which is
                how the pipeline runs a setting of one episode per update.

Each arm counts the env steps it took (the last episode or batch may overshoot the budget) and
divides by wall time; CPU time of the process is shown too, since on a shared machine a run that
was descheduled shows up as wall time > CPU time. Arms are interleaved, each repeat in a rotated
order, and the median of the repeats is reported. Every repeat of an arm does exactly the same
work (fixed seeds), so the spread between repeats is timing noise only.

Usage::

    python benchmarks/throughput.py                       # 100k steps per seed, 3 repeats
    python benchmarks/throughput.py --steps 20000 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass

import gymnasium as gym
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)
from pgbench.rl.config import make_config
from pgbench.training.group import GroupTrainer

ENV_ID = "CartPole-v1"
HIDDEN = 128
LR = 1e-2
GAMMA = 0.99
EMA_WEIGHT = 0.05  # pgbench's rtg_baseline: running mean of past episodes' mean reward-to-go


@dataclass
class Work:
    """What an arm did: env steps and episodes."""

    env_steps: int
    episodes: int


@dataclass
class Timing:
    work: Work
    wall_s: float
    cpu_s: float

    @property
    def steps_per_s(self) -> float:
        return self.work.env_steps / self.wall_s

    @property
    def steps_per_cpu_s(self) -> float:
        return self.work.env_steps / self.cpu_s


def timed(fn) -> Timing:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    work = fn()
    return Timing(work, time.perf_counter() - wall0, time.process_time() - cpu0)


# -- (a) the textbook loop --------------------------------------------------------------------
def textbook_reinforce(total_steps: int, seed: int = 0) -> Work:
    """REINFORCE as the slides' code writes it, for at least ``total_steps`` env steps.

    The estimator is pgbench's ``rtg_baseline`` (reward-to-go minus the running mean of past
    episodes' mean reward-to-go, 0 for the first episode), so both sides do the same learning.
    """
    torch.manual_seed(seed)
    env = gym.make(ENV_ID)
    policy = nn.Sequential(nn.Linear(4, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))
    optimizer = torch.optim.Adam(policy.parameters(), lr=LR)
    steps, episode, running_baseline = 0, 0, None
    state, _ = env.reset(seed=seed)
    while steps < total_steps:
        if episode > 0:
            state, _ = env.reset()
        log_probs, rewards = [], []
        done = False
        while not done:
            probs = F.softmax(policy(torch.from_numpy(state).float().unsqueeze(0)), dim=1)
            dist = Categorical(probs)
            action = dist.sample()
            log_probs.append(dist.log_prob(action))  # keeps this step's graph until the update
            state, reward, terminated, truncated, _ = env.step(action.item())
            rewards.append(reward)
            done = terminated or truncated

        returns, g = [], 0.0
        for r in reversed(rewards):
            g = r + GAMMA * g
            returns.insert(0, g)
        returns = torch.tensor(returns)
        baseline = 0.0 if running_baseline is None else running_baseline
        mean_return = returns.mean().item()
        running_baseline = (mean_return if running_baseline is None
                            else (1 - EMA_WEIGHT) * running_baseline + EMA_WEIGHT * mean_return)
        policy_loss = [-log_prob * (r - baseline) for log_prob, r in zip(log_probs, returns)]
        optimizer.zero_grad()
        torch.cat(policy_loss).sum().backward()
        optimizer.step()
        steps += len(rewards)
        episode += 1
    env.close()
    return Work(steps, episode)


# -- (b), (c), (d): pgbench ---------------------------------------------------------------------
def pgbench_group(total_steps: int, episodes_per_update: int, seeds: list[int]) -> Work:
    """Train ``rtg_baseline`` with pgbench's trainer for each seed (at least ``total_steps`` env
    steps each)."""
    cfg = make_config("rtg_baseline", {
        "env_id": ENV_ID, "total_steps": total_steps, "episodes_per_update": episodes_per_update,
        "hidden": (HIDDEN,), "activation": "relu", "lr": LR, "gamma": GAMMA,
        "ema_weight": EMA_WEIGHT,
    })
    logs = GroupTrainer(cfg, seeds).run()
    return Work(sum(log.env_steps for log in logs), sum(log.episodes for log in logs))


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per seed (default 100000)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each arm")
    parser.add_argument("--group-seeds", type=int, default=20, help="seeds in arm (d)")
    parser.add_argument("--arms", default="abcd", help="which arms to run, e.g. bcd")
    args = parser.parse_args()

    torch.set_num_threads(1)  # every arm: one thread, tiny networks
    arms = {
        "a": ("textbook per-step REINFORCE, 1 episode/update", lambda: textbook_reinforce(args.steps)),
        "b": ("pgbench, 1 seed, 1 episode/update", lambda: pgbench_group(args.steps, 1, [0])),
        "c": ("pgbench, 1 seed, 64 episodes/update", lambda: pgbench_group(args.steps, 64, [0])),
        "d": (f"pgbench, {args.group_seeds} seeds x 1 episode/update",
              lambda: pgbench_group(args.steps, 1, list(range(args.group_seeds)))),
    }
    chosen = [k for k in arms if k in args.arms]
    print(f"{machine()}; torch {torch.__version__}, gymnasium {gym.__version__}; "
          f"{args.steps} env steps per seed, {args.repeats} repeats")
    load0 = os.getloadavg()
    results: dict[str, list[Timing]] = {k: [] for k in chosen}
    for rep in range(args.repeats):
        order = chosen[rep % len(chosen):] + chosen[:rep % len(chosen)]  # rotate against drift
        for k in order:
            t = timed(arms[k][1])
            results[k].append(t)
            print(f"  repeat {rep + 1} ({k}) {t.work.env_steps:>9} steps  {t.wall_s:7.2f} s wall  "
                  f"{t.cpu_s:7.2f} s cpu  {t.steps_per_s:>9.0f} steps/s", flush=True)
    load1 = os.getloadavg()

    med = {k: statistics.median(t.steps_per_s for t in results[k]) for k in chosen}
    med_cpu = {k: statistics.median(t.steps_per_cpu_s for t in results[k]) for k in chosen}
    print(f"\nload average (1, 5, 15 min) before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}\n")
    print("| arm | what | env steps | mean episode | steps/s (median, wall) | "
          "range | steps per CPU-s | vs (a) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for k in chosen:
        first = results[k][0].work  # every repeat does the same work
        rates = [t.steps_per_s for t in results[k]]
        ratio = f"{med[k] / med['a']:.1f}x" if "a" in med else ""
        print(f"| ({k}) | {arms[k][0]} | {first.env_steps} | {first.env_steps / first.episodes:.0f} | "
              f"{med[k]:,.0f} | "
              f"{min(rates):,.0f}-{max(rates):,.0f} | {med_cpu[k]:,.0f} | {ratio} |")
    if "a" in med:
        print("\nratios (median wall steps/s): " + ", ".join(
            f"{k}/a = {med[k] / med['a']:.1f}" for k in chosen if k != "a"))
        print("ratios (steps per CPU-second): " + ", ".join(
            f"{k}/a = {med_cpu[k] / med_cpu['a']:.1f}" for k in chosen if k != "a"))


if __name__ == "__main__":
    main()
