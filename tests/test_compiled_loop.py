"""engine=numba's compiled training loop against the per-episode driver it replaced
(pgbench.training.numba.reference.EpisodeRun: NumPy and torch draw the random numbers there, Python
records each episode), and its compiled random streams against NumPy's and torch's."""

import math
import re

import numba
import numpy as np
import pytest
import torch

from pgbench.rl.config import make_config
from pgbench.training.numba import engine
from pgbench.training.numba import streams as compiled_random
from pgbench.training.numba.reference import EpisodeRun


def slides(variant="vanilla", **overrides):
    return make_config(variant, {"env_id": "CartPole-v1", "episodes_per_update": 1, "lr": 0.01,
                                 "hidden": [128], "engine": "numba", **overrides})


def state_of(log):
    """Everything a run's log keeps, NaN made comparable, the update rows' wall time left out."""
    return (log.episode_rows, [r[:6] for r in log.update_rows],
            [math.isnan(r[6]) for r in log.update_rows], log.solved, log.solved_last100,
            log.stop_reason, log.env_steps, log.episodes, log.updates, repr(log.ema_state),
            log.running_reward, list(log.last_returns))


def test_reset_states_and_noise_equal_numpy_and_torch():
    compiled_random.check_streams.__wrapped__(count=3000)  # raises on the first difference


def test_noise_continues_across_chunks_as_torch_rand():
    """Chunks of any length drawn one after another are torch.rand's consecutive calls."""
    g = torch.Generator().manual_seed(987654321987)
    state = np.empty(compiled_random.MT_N + 1, np.uint32)
    compiled_random.mt_seed(987654321987, state)
    for size in (1, 623, 624, 625, 1, 1300, 16 * 129):
        mine = np.empty(size, np.float32)
        compiled_random.mt_uniform_float32(state, mine)
        np.testing.assert_array_equal(mine, torch.rand(size, generator=g).numpy())


@pytest.mark.parametrize("variant, overrides", [
    ("vanilla", {"dropout": 0.6, "stop_when_solved": True, "total_steps": 60_000}),
    ("rtg_baseline", {"baseline": "whiten", "stop_when_solved": True, "total_steps": 300_000}),
    ("rtg_baseline", {"baseline": "ema", "dropout": 0.6, "total_steps": 30_000}),
    ("baseline", {"episodes_per_update": 3, "env_id": "CartPole-v0", "total_steps": 20_000}),
    ("rtg", {"activation": "tanh", "normalize_advantages": True, "episodes_per_update": 2,
             "hidden": [16], "dropout": 0.3, "total_steps": 20_000}),
    ("vanilla", {"returns": "total", "baseline": "mean", "episodes_per_update": 4,
                 "total_steps": 20_000})])
def test_the_compiled_loop_gives_the_per_episode_drivers_numbers(variant, overrides, monkeypatch):
    """Every episode row, update row (but its wall time), solve point and the run's final
    state, over several compiled calls (few rounds per call)."""
    monkeypatch.setattr(engine, "ROUNDS_PER_CALL", 37)
    cfg = slides(variant, **overrides)
    ours, theirs = engine.NumbaRun(cfg).run(), EpisodeRun(cfg).run()
    assert state_of(ours) == state_of(theirs)
    if overrides.get("stop_when_solved"):
        assert ours.stop_reason == "solved" or overrides["total_steps"] < 100_000


def test_collapsed_policy_many_short_episodes():
    """A policy that always pushes left (~9-step episodes, as a collapsed seed): thousands of
    one-episode updates, across calls."""
    cfg = slides(dropout=0.6, total_steps=40_000)
    ours, theirs = engine.NumbaRun(cfg), EpisodeRun(cfg)
    for run in (ours, theirs):
        run.b1[:] = (20.0, -20.0)
    a, b = ours.run(), theirs.run()
    assert state_of(a) == state_of(b)
    assert a.episodes > engine.ROUNDS_PER_CALL and max(r[4] for r in a.episode_rows) < 15


def test_no_fused_multiply_add():
    """Numba compiles a * b + c as a multiply and an add (no FMA contraction, no fastmath), so
    the kernels round as written on every machine."""
    f = numba.njit(lambda a, b, c: a * b + c)
    assert f(0.1, 10.0, -1.0) == 0.1 * 10.0 - 1.0
    asm = next(iter(f.inspect_asm().values()))
    assert not re.search(r"\bvfn?m(add|sub)", asm)


_SCALAR_RUN = """
import hashlib, json, os, sys
import numba
import pgbench
from pgbench.training.numba import kernels  # the package turns the SLP vectoriser on ...
os.environ["NUMBA_SLP_VECTORIZE"] = "0"     # ... and this process turns it off again
numba.config.SLP_VECTORIZE = False
from pgbench.rl.config import make_config
from pgbench.training.numba.engine import NumbaRun
out = []
for variant, overrides in json.loads(sys.argv[1]):
    cfg = make_config(variant, {"env_id": "CartPole-v1", "episodes_per_update": 1, "lr": 0.01,
                                "hidden": [128], "engine": "numba", "total_steps": 4000,
                                **overrides})
    log = NumbaRun(cfg).run()
    out.append(repr((log.episode_rows, [r[:6] for r in log.update_rows])))
print(json.dumps({"slp": bool(numba.config.SLP_VECTORIZE), "runs": out}))
"""


def test_vector_width_changes_no_number(tmp_path):
    """The kernels' sums are written out in their order, so how the compiler packs them into
    vector registers (here: with LLVM's SLP vectoriser, and in a process without it, compiled
    afresh) cannot change a number; nor can a wider register on another CPU."""
    import json
    import os
    import subprocess
    import sys

    runs = [("vanilla", {"dropout": 0.6}), ("rtg_baseline", {"baseline": "whiten"}),
            ("rtg", {"activation": "tanh", "normalize_advantages": True})]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}  # compiled afresh, not loaded
    done = subprocess.run([sys.executable, "-c", _SCALAR_RUN, json.dumps(runs)], env=env,
                          capture_output=True, text=True, check=True)
    scalar = json.loads(done.stdout.strip().splitlines()[-1])
    assert scalar["slp"] is False  # the other process compiled without it
    assert numba.config.SLP_VECTORIZE  # and this one packs
    here = []
    for variant, overrides in runs:
        log = engine.NumbaRun(slides(variant, total_steps=4000, **overrides)).run()
        here.append(repr((log.episode_rows, [r[:6] for r in log.update_rows])))
    assert here == scalar["runs"]
