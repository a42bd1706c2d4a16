"""What pinning the CPU dispatch costs: the same training work, pinned and native, side by side.

Each measurement is a fresh process (the libraries read their dispatch settings once, when they
load), timed in CPU seconds of that process after its imports. The settings alternate on every
repeat so both see the same machine load. Workloads:

- ``slides-torch``: the slides suite's 8 arms on the torch engine, 2 seeds, 20k steps each;
- ``cs234-ip``: rtg_value on InvertedPendulum-v5 (16 envs, 2,000-step batches), 20k steps;
- ``slides-numba``: the 8 arms on the compiled engine, 2 seeds, 100k steps each.

    python benchmarks/dispatch_cost.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKLOAD = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import pgbench  # pins (or not) before torch and NumPy load
import torch
from dataclasses import replace
from pgbench.rl.config import make_config
from pgbench.training.numba.engine import NumbaRun
from pgbench.core.dispatch import configure_torch
from pgbench.training.group import GroupTrainer
from slides_arms import slides_configs

configure_torch(torch)
name = {name!r}
if name == "slides-numba":
    NumbaRun(slides_configs(1, 1000, engine="numba")[0]).run()  # load kernels first
t = time.process_time()
if name == "slides-torch":
    logs = GroupTrainer(slides_configs(2, 20_000)).run()
elif name == "cs234-ip":
    cfg = make_config("rtg_value", {{"env_id": "InvertedPendulum-v5", "num_envs": 16,
        "steps_per_update": 2000, "episodes_per_update": 0, "total_steps": 20_000,
        "normalize_advantages": True, "gamma": 1.0, "lr": 0.03, "hidden": (64,)}})
    logs = GroupTrainer([replace(cfg, seed=0)]).run()
else:
    logs = [NumbaRun(c).run() for c in slides_configs(2, 100_000, engine="numba")]
cpu = time.process_time() - t
print(json.dumps({{"cpu_s": cpu, "steps": sum(l.env_steps for l in logs),
                  "capability": torch.backends.cpu.get_cpu_capability()}}))
"""


def measure(name: str, mode: str) -> dict:
    env = {**os.environ, "PGBENCH_DISPATCH": mode}
    code = WORKLOAD.format(here=str(HERE), name=name)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+",
                        default=["slides-torch", "cs234-ip", "slides-numba"])
    args = parser.parse_args()
    rows = []
    for name in args.workloads:
        cpu: dict[str, list[float]] = {"native": [], "pinned": []}
        for r in range(args.repeats):
            for mode in (("native", "pinned") if r % 2 == 0 else ("pinned", "native")):
                res = measure(name, mode)
                cpu[mode].append(res["cpu_s"] / res["steps"] * 1e6)
        rows.append((name, statistics.median(cpu["native"]), statistics.median(cpu["pinned"])))
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), platform.machine())
    print(f"# {cpu_model}, {args.repeats} repeats, CPU-us per env step (median)")
    print("| workload | native | pinned | pinned / native |")
    print("|---|---:|---:|---:|")
    for name, native, pinned in rows:
        print(f"| {name} | {native:.2f} | {pinned:.2f} | {pinned / native:.2f} |")


if __name__ == "__main__":
    main()
