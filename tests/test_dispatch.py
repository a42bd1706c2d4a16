"""Same numbers whatever CPU dispatch the environment asks for (pgbench/dispatch.py).

A machine with other SIMD units (AVX-512, say) makes torch, NumPy and their BLAS pick other
kernels, which round differently. One machine can simulate that: the same libraries read
environment variables that cap or change the kernels they pick (``ATEN_CPU_CAPABILITY``,
``NPY_DISABLE_CPU_FEATURES``, ``MKL_CBWR``, thread counts). pgbench pins every one of them at
process start, so each combination below must give the same bytes. The control runs the same
work with pinning off (``PGBENCH_DISPATCH=native``) under two of those settings, and must see
the numbers differ: the combinations do reach different kernels, so the test can fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from pgbench.dispatch import PINNED_ENV, fingerprint

#: the short trainings every combination runs: each engine, CartPole and InvertedPendulum,
#: a critic, PPO (name -> (variant, settings))
RUNS = {
    "torch-cartpole-vanilla-dropout": ("vanilla", {"dropout": 0.6, "total_steps": 3000}),
    "torch-cartpole-rtg_value": ("rtg_value", {"episodes_per_update": 2, "total_steps": 3000}),
    "torch-cartpole-ppo": ("ppo_fullbatch", {"episodes_per_update": 0, "steps_per_update": 512,
                                   "total_steps": 2048}),
    "torch-pendulum-rtg_value": ("rtg_value", {"env_id": "InvertedPendulum-v5", "num_envs": 4,
                                               "episodes_per_update": 0,
                                               "steps_per_update": 500, "total_steps": 2000}),
    "numba-cartpole-rtg_baseline": ("rtg_baseline", {"engine": "numba", "dropout": 0.6,
                                                     "total_steps": 5000}),
}

WORKER = r"""
import json, sys
from pathlib import Path
import pgbench
from dataclasses import replace
from pgbench.config import make_config
from pgbench.train import RunRequest, train_runs
runs, out = json.loads(sys.argv[1]), Path(sys.argv[2])
train_runs([RunRequest(replace(make_config(v, s), seed=3), out / name)
            for name, (v, s) in runs.items()])
"""

#: the dispatch combinations tried (name -> environment): each capability ATen has here, NumPy
#: with its AVX2 kernels and with its AVX-512 ones disabled, MKL's code paths, 1 and 2 threads
COMBINATIONS = {
    "as-is": {},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-avx512": {"ATEN_CPU_CAPABILITY": "avx512"},  # falls back where the CPU lacks it
    "numpy-no-avx512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F "
                                                    "AVX512CD AVX512_SKX"},
    "numpy-no-avx2": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    "mkl-avx2-2-threads": {"MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "mkl-auto-onednn-on": {"MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "ALL",
                           "OPENBLAS_CORETYPE": "Zen"},
}


def _clean_env(extra: dict, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV and k != "OPENBLAS_CORETYPE"}
    return {**env, **extra, "PGBENCH_DISPATCH": mode}


def _train(out: Path, extra: dict, mode: str = "pinned") -> dict[str, str]:
    """Digest of every run's episodes and updates (without wall times), trained in a fresh
    process under ``extra`` environment settings."""
    subprocess.run([sys.executable, "-c", WORKER, json.dumps(RUNS), str(out)], check=True,
                   env=_clean_env(extra, mode), capture_output=True, text=True, timeout=600)
    digests = {}
    for name in RUNS:
        updates = pd.read_parquet(out / name / "updates.parquet").drop(columns="wall_s")
        digests[name] = hashlib.sha256(
            (out / name / "episodes.parquet").read_bytes()
            + pd.util.hash_pandas_object(updates, index=True).values.tobytes()).hexdigest()[:16]
    return digests


@pytest.mark.slow
def test_every_dispatch_combination_gives_the_same_bytes(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:  # each combination is its own process
        futures = {name: pool.submit(_train, tmp_path / name, env)
                   for name, env in COMBINATIONS.items()}
        results = {name: f.result() for name, f in futures.items()}
    reference = results["as-is"]
    differing = {name: sorted(k for k in RUNS if d[k] != reference[k])
                 for name, d in results.items() if d != reference}
    assert not differing, f"tried {sorted(COMBINATIONS)}; runs that differ: {differing}"


@pytest.mark.slow
def test_without_pinning_the_combinations_do_differ(tmp_path):
    """The control: the dispatch settings above reach kernels that round differently."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        default = pool.submit(_train, tmp_path / "default", {"ATEN_CPU_CAPABILITY": "default"},
                              "native")
        avx2 = pool.submit(_train, tmp_path / "avx2", {"ATEN_CPU_CAPABILITY": "avx2"}, "native")
        default, avx2 = default.result(), avx2.result()
    assert any(default[k] != avx2[k] for k in RUNS if k.startswith("torch")), (default, avx2)


def test_this_process_is_pinned():
    """The tests themselves run on the pinned kernels: pgbench loaded before torch and NumPy."""
    fp = fingerprint()
    assert fp["pinned"] and not fp["pinned_too_late"], fp
    assert fp["aten_cpu_capability"] == "DEFAULT" and fp["torch_threads"] == 1
    assert not any(name.startswith(("X86_V4", "AVX512")) for name in fp["numpy_dispatch"])
    for key, value in PINNED_ENV.items():
        assert fp["env"][key] == value


def test_a_run_records_its_dispatch(tmp_path):
    from pgbench.config import make_config
    from pgbench.train import train_group

    train_group(make_config("vanilla", {"total_steps": 300}), [0], [tmp_path / "run"])
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    dispatch = info["provenance"]["dispatch"]
    assert dispatch["pinned"] and dispatch["aten_cpu_capability"] == "DEFAULT"
    assert dispatch["env"]["MKL_CBWR"] == PINNED_ENV["MKL_CBWR"]
