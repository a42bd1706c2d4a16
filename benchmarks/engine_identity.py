"""Fingerprints of engine=numba runs, to check that a change of the compiled engine keeps every
number: each sample config is trained through ``pgbench.training.runner.train_runs`` (as ``pgbench
train-job`` does) and its ``episodes.parquet`` hashed byte for byte, with its update rows
(every column but the wall time). Run it on two versions of the code and compare the files::

    PYTHONPATH=<old checkout> python benchmarks/engine_identity.py --out before.json
    PYTHONPATH=<new checkout> python benchmarks/engine_identity.py --out after.json
    python benchmarks/engine_identity.py --compare before.json after.json

The sample: every arm of the default slides suite (CartPole-v1, 500-step limit, the suite's
3M-step budget and stop rule) for seeds 0-2, vanilla without dropout for seeds 3-7 as well
(most of them collapse to ~9-step episodes and play out the budget), every arm on CartPole-v0
(200-step limit) for seed 0, and a few settings the suite does not use (several episodes per
update, tanh, normalised advantages, the batch-mean baseline, total returns). ``--sample
quick`` cuts every budget to 100k steps (seeds 1, 5, 6 and 7 of vanilla without dropout have
collapsed by then); ``--sample long`` trains two collapsing seeds to the 3M budget (~320,000
episodes each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from slides_arms import slides_configs  # noqa: E402

from pgbench.rl.config import make_config  # noqa: E402
from pgbench.training.runner import RunRequest, train_runs  # noqa: E402


def sample(which: str = "full"):
    suite = {"engine": "numba", "stop_when_solved": True}
    if which == "long":  # two seeds that collapse, to the 3M budget; two that solve or not
        vanilla = slides_configs(1, 3_000_000, **suite)
        return ([replace(vanilla[0], seed=s) for s in (1, 5)] + [replace(vanilla[1], seed=0)]
                + [replace(slides_configs(1, 3_000_000, **suite)[6], seed=0)])
    cfgs = slides_configs(3, 3_000_000, **suite)
    cfgs += [replace(c, seed=s) for c in slides_configs(1, 3_000_000, **suite)[:1]
             for s in range(3, 8)]
    cfgs += slides_configs(1, 300_000, env_id="CartPole-v0", **suite)
    base = {"env_id": "CartPole-v1", "lr": 0.01, "hidden": (128,), "engine": "numba",
            "total_steps": 200_000}
    cfgs += [
        make_config("rtg_baseline", {**base, "episodes_per_update": 4, "dropout": 0.6,
                                     "baseline": "ema"}),
        make_config("rtg", {**base, "episodes_per_update": 3, "activation": "tanh",
                            "normalize_advantages": True}),
        make_config("baseline", {**base, "episodes_per_update": 2, "baseline": "mean",
                                 "hidden": (32,)}),
        make_config("vanilla", {**base, "episodes_per_update": 5, "returns": "total",
                                "env_id": "CartPole-v0", "dropout": 0.3}),
    ]
    if which == "quick":
        cfgs = [replace(c, total_steps=min(c.total_steps, 100_000)) for c in cfgs]
    return cfgs


def fingerprint(run_dir: Path) -> dict:
    episodes = (run_dir / "episodes.parquet").read_bytes()
    updates = pd.read_parquet(run_dir / "updates.parquet").drop(columns=["wall_s"])
    run = json.loads((run_dir / "run.json").read_text())
    return {"episodes_sha256": hashlib.sha256(episodes).hexdigest(),
            "updates_sha256": hashlib.sha256(
                pd.util.hash_pandas_object(updates, index=True).values.tobytes()).hexdigest(),
            "stop_reason": run["stop_reason"], "totals": run["totals"],
            "mean_length_last_100": float(
                pd.read_parquet(run_dir / "episodes.parquet")["length"].tail(100).mean()),
            "cpu_s": run["provenance"]["cpu_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the fingerprints here (JSON)")
    parser.add_argument("--sample", choices=("full", "quick", "long"), default="full",
                        help="full: as above; quick: its budgets cut to 100k steps; long: two "
                        "collapsing vanilla seeds, vanilla with dropout and rtg_baseline with "
                        "whitening, to the 3M budget")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        a, b = (json.loads(Path(p).read_text()) for p in args.compare)
        same = 0
        for key in a:
            fa, fb = a[key], b.get(key)
            ok = fb is not None and all(fa[k] == fb[k] for k in
                                        ("episodes_sha256", "updates_sha256", "totals"))
            same += ok
            print(f"{'same' if ok else 'DIFFERENT'}  {key}  {fa['totals']}  "
                  f"stop={fa['stop_reason']} len100={fa['mean_length_last_100']:.1f}  "
                  f"cpu {fa['cpu_s']:.2f} -> {fb['cpu_s'] if fb else float('nan'):.2f}")
        print(f"{same} of {len(a)} runs identical")
        sys.exit(0 if same == len(a) else 1)
    out = {}
    t0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = sample(args.sample)
        requests = [RunRequest(c, Path(tmp) / f"run{i}") for i, c in enumerate(cfgs)]
        train_runs(requests)
        for c, r in zip(cfgs, requests):
            key = (f"{c.env_id} {c.returns}/{c.baseline} drop={c.dropout} act={c.activation} "
                   f"epu={c.episodes_per_update} H={c.hidden[0]} seed={c.seed} {c.hash()}")
            out[key] = fingerprint(r.out_dir)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"{len(out)} runs, {time.process_time() - t0:.1f} CPU-s")


if __name__ == "__main__":
    main()
