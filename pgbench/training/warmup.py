"""``pgbench compile``: compile the numba engine's kernels into Numba's cache, once.

Numba compiles a kernel the first time a process calls it and caches the machine code beside the
package. Jobs started at once on a fresh checkout would each compile the same kernels (what that
cost is in BENCHMARKS.md, "Default pipeline, 2026-11-30"); the workflow runs this command first, so they all load the cache instead.
Compiling changes no number: the same code runs, compiled once rather than in every job.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

#: tiny runs that call every kernel with every argument type the engine passes
WARM_UP_RUNS = (("vanilla", {"dropout": 0.0}), ("rtg_baseline", {"dropout": 0.6}))


def warm_up() -> float:
    """Run each of :data:`WARM_UP_RUNS` for a few hundred steps; returns the seconds it took."""
    from pgbench.rl.config import make_config
    from pgbench.training.numba.engine import NumbaRun

    started = time.perf_counter()
    for variant, settings in WARM_UP_RUNS:
        cfg = make_config(variant, {**settings, "engine": "numba", "total_steps": 500})
        NumbaRun(replace(cfg, seed=0)).run()
    return time.perf_counter() - started


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0].split(": ", 1)[1]


def run(args: argparse.Namespace) -> int:
    print(f"pgbench compile: the numba engine's kernels are ready ({warm_up():.1f} s)")
    return 0
