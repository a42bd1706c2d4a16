"""Train a policy: collect, estimate, update, record. One loop for every variant.

A *group* is several runs trained at once (stacked weights, one set of sub-envs): the seeds of
a config, and the arms that differ from it only in estimator, dropout, budget or stopping rule
(:data:`PER_RUN_FIELDS`). Each seed collects on its own clock and updates when its own batch is
complete, so each run's numbers are those it would get alone; the group only shares the Python
and torch overhead, which dominates networks this small. ``pgbench train --seed 0 1 2`` runs a
group; ``pgbench train-job`` the arms of a suite.
"""

from __future__ import annotations

import json
import math
from collections import deque
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pgbench import estimators as est
from pgbench.algorithms import is_algorithm, trainer_of
from pgbench.dispatch import check_pinned, configure_torch
from pgbench.config import FIELD_NAMES, TrainConfig, make_config, parse_set_options
from pgbench.envs import check_env_id, make_vector_env
from pgbench.errors import UserError
from pgbench.io import replace_dir_atomic, staging_dir, write_json_atomic, write_parquet_atomic
from pgbench.outputs import RUN, check_dir
from pgbench.policies import (PolicySpec, init_policy, init_value, log_prob_and_entropy,
                              value_forward)
from pgbench.provenance import provenance
from pgbench.rollout import Batch, Collector

RUNNING_REWARD_START = 10.0  # the PyTorch examples' reinforce.py starts its running reward here
RUNNING_REWARD_WEIGHT = 0.05  # ... and mixes in each episode's return with this weight
PLAIN_WINDOW = 100  # the plainer rule: mean return of the last 100 episodes >= threshold
PLAIN_GRACE_EPISODES = 200  # with stop_when_solved, episodes a run may go on after the sources'
# rule fired, waiting for the plainer rule to fire too (so both can be reported)


class StackedAdam:
    """Adam on stacked (per-seed) weights, with the arithmetic of ``torch.optim.Adam``.

    The weights live in one ``(S, P)`` tensor, ``flat``; ``params`` are named views of it, in the
    shapes the networks use. Adam is elementwise, so one optimiser over stacked weights updates
    each seed exactly as its own optimiser would, and one flat tensor makes a step a handful of
    ops. ``step(grad)`` takes the gradient as ``(S, P)``; ``keep(idx)`` drops the seeds that
    stopped training, with their state.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.layout = [(k, v.shape[1:]) for k, v in params.items()]
        self.flat = self.flatten(params)
        self.params = self.views(self.flat)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = torch.zeros(self.flat.shape[0], dtype=torch.int64)  # steps taken, per seed
        self._table = None

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{name: (S, ...)}`` in this optimiser's layout -> ``(S, P)``."""
        return torch.cat([tensors[k].reshape(tensors[k].shape[0], -1) for k, _ in self.layout], 1)

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of a ``(B, P)`` tensor in this optimiser's layout."""
        out, start = {}, 0
        for k, shape in self.layout:
            n = math.prod(shape)
            out[k] = flat[:, start:start + n].view(flat.shape[0], *shape)
            start += n
        return out

    @torch.no_grad()
    def step(self, grad: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """One Adam step of the seeds in ``rows`` (default: all), ``grad (len(rows), P)``.

        Each seed counts its own steps: seeds of a group update at different times.
        """
        if rows is None:
            rows = torch.arange(self.flat.shape[0])
        t = self.t[rows] + 1
        self.t[rows] = t
        b1, b2 = self.betas
        corrections = self._corrections(int(t.max()))[t]
        sqrt_bc2, step_size = corrections[:, :1], corrections[:, 1:]
        m = self.m[rows].lerp_(grad, 1 - b1)
        v = self.v[rows].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / sqrt_bc2).add_(self.eps)
        self.flat[rows] = self.flat[rows] + m * step_size / denom
        self.m[rows], self.v[rows] = m, v

    def _corrections(self, t_max: int) -> torch.Tensor:
        """Row k: sqrt(1 - beta2^k) and -lr / (1 - beta1^k), the scalars torch.optim.Adam uses
        at step k, computed as it does in Python floats and rounded to float32 (where they meet
        the float32 state). Extended as seeds take more steps."""
        if self._table is None or len(self._table) <= t_max:
            b1, b2 = self.betas
            n = max(1024, 2 * t_max)
            self._table = torch.tensor([[math.sqrt(1 - b2**k), -self.lr / (1 - b1**k) if k else 0.0]
                                        for k in range(n)])
        return self._table

    def keep(self, idx) -> None:
        self.flat, self.m, self.v = self.flat[idx].clone(), self.m[idx].clone(), self.v[idx].clone()
        self.t = self.t[idx].clone()
        self.params = self.views(self.flat)


def seed_sequences(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent streams of one seed: network init, env resets, action noise."""
    init, env, noise = np.random.SeedSequence(seed).spawn(3)
    return {"init": init, "env": env, "noise": noise}


def torch_generator(ss: np.random.SeedSequence) -> torch.Generator:
    return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))


@dataclass
class SeedLog:
    """What one seed of a group has recorded so far."""

    seed: int
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    running_reward: float = RUNNING_REWARD_START
    solved: dict | None = None
    solved_last100: dict | None = None
    stop_reason: str | None = None
    ema_state: float = float("nan")
    episode_rows: list = field(default_factory=list)
    update_rows: list = field(default_factory=list)
    last_returns: deque = field(default_factory=lambda: deque(maxlen=PLAIN_WINDOW))


def record_episode(log: SeedLog, ret: float, length: int, terminated: bool, truncated: bool,
                   threshold: float | None) -> None:
    """Add one finished episode to ``log``: its row, the running reward, and whether either rule
    of "solved" fired at it (the sources' running reward, or the mean of the last 100)."""
    log.last_returns.append(ret)
    log.env_steps += length
    log.running_reward = (RUNNING_REWARD_WEIGHT * ret
                          + (1 - RUNNING_REWARD_WEIGHT) * log.running_reward)
    log.episode_rows.append((log.updates, log.episodes, log.env_steps, ret, length, terminated,
                             truncated, log.running_reward))
    if threshold is not None:
        here = {"update": log.updates, "episode": log.episodes, "env_steps": log.env_steps}
        if log.solved is None and log.running_reward >= threshold:
            log.solved = here
        if (log.solved_last100 is None and log.episodes + 1 >= PLAIN_WINDOW
                and sum(log.last_returns) >= PLAIN_WINDOW * threshold):
            log.solved_last100 = here
    log.episodes += 1


def stop_reason(cfg: TrainConfig, log: SeedLog) -> str | None:
    """Why the run stops after its last update ("solved", "budget"), or None to go on."""
    if cfg.stop_when_solved and log.solved is not None and (
            log.solved_last100 is not None
            or log.episodes - log.solved["episode"] > PLAIN_GRACE_EPISODES):
        return "solved"
    if log.env_steps >= cfg.total_steps:
        return "budget"
    return None


def policy_spec(cfg: TrainConfig) -> PolicySpec:
    venv = make_vector_env(cfg.env_id, 1)
    try:
        obs_space, act_space = venv.single_observation_space, venv.single_action_space
    finally:
        venv.close()
    discrete = hasattr(act_space, "n")
    return PolicySpec(
        obs_dim=int(obs_space.shape[0]),
        act_dim=int(act_space.n) if discrete else int(act_space.shape[0]),
        discrete=discrete, hidden=tuple(cfg.hidden), activation=cfg.activation,
        dropout=cfg.dropout, log_std_init=cfg.log_std_init,
    )


def advantages(cfg: TrainConfig, batch: Batch, values, final_values, ema_state, score_sqnorm=None):
    """The weight of each log-probability, ``(S, E, T)``, and the critic's targets.

    ``values (S, E, T)`` and ``final_values (S, E)`` are the critic's estimates (None without a
    critic); ``ema_state (S,)`` is the running baseline's state. Returns
    ``(advantage, value_target, new_ema_state)``. Only the batch's NumPy arrays are read.
    """
    mask, rewards = batch.mask, batch.rewards
    bootstrap = None
    if final_values is not None and cfg.bootstrap_truncated:  # a cut episode goes on: V(s_T)
        bootstrap = np.where(batch.truncated, final_values, 0.0)
    target = None
    if cfg.returns == "gae":
        adv = est.gae(rewards, values, mask, batch.terminated, cfg.gamma, cfg.gae_lambda,
                      final_values)
        target = np.where(mask, adv + values, 0.0)
    else:
        weigh = est.total_return if cfg.returns == "total" else est.reward_to_go
        adv = weigh(rewards, mask, cfg.gamma, bootstrap)
        target = adv.copy()
        if cfg.baseline == "mean":
            adv = adv - est.batch_mean_baseline(adv, mask)[:, None, None]
        elif cfg.baseline == "ema":
            b, ema_state = est.ema_baseline(ema_state, adv, mask, cfg.ema_weight)
            adv = adv - b[:, None, None]
        elif cfg.baseline == "whiten":
            adv = est.whiten_per_episode(adv, mask)
        elif cfg.baseline == "time":
            adv = adv - est.time_baseline(adv, mask)[:, None, :]
        elif cfg.baseline == "optimal":
            b = est.optimal_constant_baseline(est.episode_means(adv, mask), score_sqnorm)
            adv = adv - b[:, None, None]
        elif cfg.baseline == "value":
            adv = adv - values
    if cfg.normalize_advantages:
        adv = est.normalize_advantages(adv, mask)
    return np.where(mask, adv, 0.0), target, ema_state


def policy_loss(cfg, logp, adv, valid, n_episodes, logp_old=None, n_valid=None):
    """Per-seed surrogate losses ``(S,)`` to minimise.

    REINFORCE: ``-(1/N) sum_i sum_t A_it log pi(a_it|s_it)``, the slides' estimator (N episodes).
    PPO: the clipped surrogate averaged over valid steps. ``logp, adv, valid`` are ``(S, B)``; when
    they hold one block of a batch's steps, ``n_valid (S,)`` is the batch's count of valid steps
    (PPO's divisor), and the batch's loss is the sum of its blocks' losses.
    """
    if cfg.loss == "ppo":
        ratio = torch.exp(logp - logp_old)
        clipped = torch.clamp(ratio, 1 - cfg.ppo_clip, 1 + cfg.ppo_clip)
        surrogate = torch.minimum(ratio * adv, clipped * adv) * valid
        if n_valid is None:
            n_valid = valid.sum(1).clamp(min=1)
        return -surrogate.sum(1) / n_valid
    return -(logp * adv * valid).sum(1) / n_episodes


#: Rows (steps) per block of the update's forward and backward passes: enough that the fixed
#: cost of a block's passes is small, few enough that its activations stay in cache (1024-2048
#: measured fastest for 64 CartPole episodes). A power of two.
UPDATE_BLOCK_ROWS = 2048
#: The narrowest block: a seed's last block is its remaining steps padded up to a power of two,
#: at least this wide, so that a few widths serve every episode length.
MIN_BLOCK_ROWS = 16


def block_widths(n_steps: int, block_rows: int = UPDATE_BLOCK_ROWS) -> list[int]:
    """The widths of the blocks that hold a seed's ``n_steps`` valid steps in its update.

    Full blocks of ``block_rows``, then the rest padded up to a power of two (at least
    ``MIN_BLOCK_ROWS``). The widths depend on the seed's own steps only, never on the group.

    >>> block_widths(9), block_widths(300), block_widths(5000)
    ([16], [512], [2048, 2048, 1024])
    """
    full, rest = divmod(int(n_steps), block_rows)
    widths = [block_rows] * full
    if rest:
        widths.append(min(block_rows, max(MIN_BLOCK_ROWS, 1 << (rest - 1).bit_length())))
    return widths


@dataclass
class UpdatePass:
    """One forward/backward pass of an update: block ``block`` of each of ``seeds``, which all
    have a block of this width there.

    ``seeds (B,)`` index the group's active seeds; ``index`` holds ``(seed, episode, step)``
    index arrays of shape ``(B, W)`` into the batch's ``(S, E, T, ...)`` tensors, each seed's
    valid steps in their order, padded with the block's first step; ``valid (B, W)`` is 1 on the
    valid steps, 0 on the padding (whose loss terms are therefore exactly zero).
    """

    block: int
    seeds: torch.Tensor
    index: tuple[np.ndarray, np.ndarray, np.ndarray]
    valid: torch.Tensor
    rows: torch.Tensor | None = None  # the seeds' rows in the optimisers (set by the trainer)

    def __post_init__(self):
        self._index_t = tuple(torch.from_numpy(i) for i in self.index)

    def take(self, x):
        """The pass's rows of an ``(S, E, T, ...)`` tensor or array: ``(B, W, ...)``."""
        return x[self._index_t if isinstance(x, torch.Tensor) else self.index]

    def scatter_valid(self, out: np.ndarray, values: np.ndarray) -> None:
        """Write ``values (B, W)`` of the valid steps into ``out (S, E, T)``."""
        keep = self.valid.numpy().astype(bool)
        out[tuple(i[keep] for i in self.index)] = values[keep]


def update_passes(mask: np.ndarray, block_rows: int = UPDATE_BLOCK_ROWS) -> list[UpdatePass]:
    """How an update computes each seed's valid steps, ``mask (S, E, T)``.

    Each seed's valid steps, in (episode, step) order, fill the blocks of
    :func:`block_widths`; seeds whose block ``j`` has the same width share a pass, in the order
    (block, width). A seed therefore computes on tensors of the same shapes, with the same
    numbers, alone and in a group (batched matmuls compute each seed's slice on its own); the
    padding of short episodes to a round's longest costs nothing; and a seed's gradient adds
    its blocks' gradients in block order whichever seeds share the group.

    >>> [(p.block, p.index[2].shape) for p in update_passes(np.arange(20)[None, None] < 18, 16)]
    [(0, (1, 16)), (1, (1, 16))]
    """
    S, E, T = mask.shape
    flat = mask.reshape(S, E * T)
    n_valid = flat.sum(1)
    if E == 1 and n_valid.max(initial=0) <= block_rows:  # one block each (one-episode updates)
        passes = []
        width = np.maximum(MIN_BLOCK_ROWS, 2 ** np.ceil(np.log2(np.maximum(n_valid, 1))).astype(np.int64))
        for w in np.unique(width[n_valid > 0]).tolist():
            seeds = np.flatnonzero((width == w) & (n_valid > 0))
            pos = np.arange(w)
            valid = pos[None, :] < n_valid[seeds, None]  # (B, W)
            index = (np.repeat(seeds[:, None], w, axis=1), np.zeros((len(seeds), w), dtype=np.int64),
                     np.where(valid, pos[None, :], 0))  # padding: the first step
            passes.append(UpdatePass(0, torch.from_numpy(seeds), index,
                                     torch.from_numpy(valid.astype(np.float32))))
        return passes
    # Each seed's flat step indices, valid ones first and in order (one episode: a prefix).
    order = (np.broadcast_to(np.arange(E * T), flat.shape) if E == 1
             else np.argsort(~flat, axis=1, kind="stable"))
    # block_widths of every seed at once: full blocks, then the rest padded to a power of two
    full, rest = np.divmod(n_valid, block_rows)
    rest_width = np.minimum(block_rows, np.maximum(
        MIN_BLOCK_ROWS, 2 ** np.ceil(np.log2(np.maximum(rest, 1))).astype(np.int64)))
    groups: dict[tuple[int, int], np.ndarray] = {}
    for j in range(int((full + (rest > 0)).max(initial=0))):
        width = np.where(j < full, block_rows, np.where((j == full) & (rest > 0), rest_width, 0))
        for w in np.unique(width[width > 0]):
            groups[(j, int(w))] = np.flatnonzero(width == w)
    passes = []
    for (j, w), seeds in sorted(groups.items()):
        start = j * block_rows
        pos = start + np.arange(w)
        valid = pos[None, :] < n_valid[seeds, None]  # (B, W)
        rows = order[seeds[:, None], np.where(valid, pos[None, :], start)]  # padding: 1st step
        index = (np.repeat(seeds[:, None], w, axis=1), rows // T, rows % T)
        passes.append(UpdatePass(j, torch.from_numpy(seeds),
                                 index, torch.from_numpy(valid.astype(np.float32))))
    return passes


def pad_time(batch: Batch, T: int, tensors: bool = False) -> Batch:
    """The batch with the time axis of its NumPy arrays padded (masked, zero reward) to ``T``.

    NumPy's reductions over time (an episode's return, whitening) group their sums by the
    axis's length; padding to a length no other seed sets keeps each seed's numbers the same
    alone and in a group. The torch tensors are padded too only with ``tensors`` (the update
    gathers its rows from them and needs no padding).
    """
    extra = T - batch.mask.shape[-1]
    if extra <= 0:
        return batch
    def pad_np(x):  # (S, E, T) -> (S, E, T + extra), zeros after
        out = np.zeros((*x.shape[:2], T), dtype=x.dtype)
        out[:, :, :x.shape[2]] = x
        return out

    padded = replace(batch, rewards=pad_np(batch.rewards), mask=pad_np(batch.mask))
    if not tensors:
        return padded

    def pad(x):  # (S, E, T, ...) -> (S, E, T + extra, ...)
        return torch.cat([x, x.new_zeros(*x.shape[:2], extra, *x.shape[3:])], dim=2)

    return replace(padded, obs=pad(batch.obs), actions=pad(batch.actions),
                   dropout_masks=None if batch.dropout_masks is None else
                   [pad(m) for m in batch.dropout_masks])


def _pass_params(opt: StackedAdam, p: UpdatePass, grad: bool = False):
    """The pass's seeds' weights: a ``(B, P)`` copy (a leaf that requires grad when ``grad``)
    and its named views."""
    flat = opt.flat[p.rows].requires_grad_(grad)
    return flat, opt.views(flat)


def _add_grad(total: torch.Tensor, p: UpdatePass, grad: torch.Tensor) -> None:
    """Add a pass's ``(B, P)`` gradient to its seeds' rows of ``total``, block after block."""
    if p.block == 0:
        total[p.seeds] = grad
    else:
        total[p.seeds] += grad


#: TrainConfig fields in which the runs of one group may differ: what a seed's estimator, dropout
#: masks, budget and stopping rule are. Everything else (env, network, optimiser, batch size,
#: loss) is shared, so the group's seeds share one forward pass, env step and update.
PER_RUN_FIELDS = ("seed", "variant", "returns", "baseline", "ema_weight", "normalize_advantages",
                  "gamma", "gae_lambda", "dropout", "total_steps", "stop_when_solved")
#: When to update. A seed whose batch is complete waits (stepping nothing) until an update;
#: the waiting seeds update together once READY_SHARE of the group's seeds wait, or one of them
#: has waited WAIT_FRACTION of its last round's length (seeds of ~9-step episodes wait 4 ticks at
#: most, seeds of 500-step episodes 250). Waiting changes no number, only the trade between more
#: ticks and fewer, larger updates (each has a fixed cost). On the slides suite's arms the
#: choices tried are within 10% of each other (benchmarks/group_schedule.py, BENCHMARKS.md).
WAIT_FRACTION = 0.5
READY_SHARE = 0.5


def group_key(cfg: TrainConfig) -> str:
    """Runs with the same key can train in one group (see :data:`PER_RUN_FIELDS`). Step-quota
    runs train alone: their batches' episode counts differ from seed to seed, and the batch
    statistics (advantage normalisation) would then see padding that depends on the group."""
    shared = {k: v for k, v in cfg.to_dict().items() if k not in PER_RUN_FIELDS}
    shared["has_critic"] = cfg.has_critic
    if cfg.episodes_per_update == 0:
        shared["run"] = cfg.hash()  # alone
    return json.dumps(shared, sort_keys=True)


class GroupTrainer:
    """Trains several runs (configs differing only in :data:`PER_RUN_FIELDS`) at once.

    Each seed collects its own rounds (see :mod:`pgbench.rollout`) and joins an update as soon as
    its batch is complete: seeds with short episodes do not wait for long ones, and a seed's
    numbers are those it gets alone.
    """

    def __init__(self, cfgs: TrainConfig | list[TrainConfig], seeds: list[int] | None = None):
        if isinstance(cfgs, TrainConfig):
            cfgs = [replace(cfgs, seed=s) for s in (seeds if seeds is not None else [cfgs.seed])]
        if any(c.engine != "torch" for c in cfgs):
            raise UserError("this trainer is engine=torch; accepted here: engine=torch (runs with "
                            "engine=numba train through pgbench.compiled, as train_runs does)")
        keys = {group_key(c) for c in cfgs}
        if len(keys) != 1:
            raise ValueError("a group's configs may differ only in " + ", ".join(PER_RUN_FIELDS))
        self.cfgs, self.cfg = list(cfgs), cfgs[0]
        self.seeds = [c.seed for c in self.cfgs]
        cfg = self.cfg
        self.spec = replace(policy_spec(cfg), dropout=0.0)  # dropout is per seed, below
        streams = [seed_sequences(s) for s in self.seeds]
        init_gens = [torch_generator(ss["init"]) for ss in streams]
        self.opt = StackedAdam(init_policy(self.spec, init_gens), cfg.lr)
        self.vopt = None
        if cfg.has_critic:
            self.vopt = StackedAdam(init_value(self.spec, init_gens), cfg.value_lr)
        self.collector = Collector(cfg.env_id, self.spec, cfg.envs_per_seed,
                                   {"env": [s["env"] for s in streams],
                                    "noise": [s["noise"] for s in streams]},
                                   dropout=[c.dropout for c in self.cfgs])
        self.logs = [SeedLog(seed=s) for s in self.seeds]
        self.active = np.arange(len(self.seeds))  # seeds still training: the optimisers' rows
        env_spec = check_env_id(cfg.env_id)
        self.threshold = env_spec.reward_threshold
        # Episode-quota groups pad time to the env's step limit for their NumPy estimators (see
        # pad_time); step-quota seeds train alone (see group_key) and need no padding.
        self.time_axis = env_spec.max_episode_steps if cfg.episodes_per_update > 0 else None
        self.t0 = time.perf_counter()

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The policy weights of the seeds still training, in the order of ``active``."""
        return self.opt.params

    def _batch_complete(self, g: int) -> bool:
        episodes, steps = self.collector.finished(g)
        if self.cfg.episodes_per_update > 0:
            return episodes >= self.cfg.episodes_per_update
        return steps >= self.cfg.steps_per_update

    # -- record -----------------------------------------------------------------------------
    def record_episodes(self, batch: Batch, gs) -> None:
        for k, g in enumerate(gs):
            for e in np.flatnonzero(batch.lengths[k] > 0):
                length = int(batch.lengths[k, e])
                record_episode(self.logs[g], float(batch.rewards[k, e, :length].sum()), length,
                               bool(batch.terminated[k, e]), bool(batch.truncated[k, e]),
                               self.threshold)

    # -- update -----------------------------------------------------------------------------
    def _advantages(self, arrays: Batch, gs, values, final_values, score_sqnorm):
        """:func:`advantages` of each seed under its own config, ``(S, E, T)``; updates the
        seeds' running-baseline states."""
        by_estimator: dict[tuple, list[int]] = {}
        for k, g in enumerate(gs):
            c = self.cfgs[g]
            by_estimator.setdefault((c.returns, c.baseline, c.ema_weight, c.normalize_advantages,
                                     c.gamma, c.gae_lambda), []).append(k)
        adv = target = None
        for ks in by_estimator.values():
            cfg, idx = self.cfgs[gs[ks[0]]], np.array(ks)
            part = arrays if len(ks) == len(gs) else replace(
                arrays, rewards=arrays.rewards[idx], mask=arrays.mask[idx],
                terminated=arrays.terminated[idx], truncated=arrays.truncated[idx])
            states = np.array([self.logs[gs[k]].ema_state for k in ks])
            a, tgt, states = advantages(cfg, part, None if values is None else values[idx],
                                        None if final_values is None else final_values[idx],
                                        states, None if score_sqnorm is None else score_sqnorm[idx])
            for k, state in zip(ks, states):
                self.logs[gs[k]].ema_state = float(state)
            if len(ks) == len(gs):
                return a, tgt
            if adv is None:
                adv, target = np.zeros(arrays.mask.shape), np.zeros(arrays.mask.shape)
            adv[idx], target[idx] = a, tgt
        return adv, target

    def update(self, batch: Batch, gs) -> None:
        """One update of seeds ``gs`` (original indices, all still active) on ``batch``."""
        cfg, spec = self.cfg, self.spec
        S = batch.mask.shape[0]
        rows_of = torch.from_numpy(np.searchsorted(self.active, gs))  # their optimiser rows
        passes = update_passes(batch.mask, UPDATE_BLOCK_ROWS)
        for p in passes:
            p.rows = rows_of[p.seeds]
        # NumPy estimators see time padded to a length no other seed sets (see pad_time).
        arrays = pad_time(batch, self.time_axis or batch.mask.shape[-1])
        n_valid = torch.from_numpy(batch.mask.sum((1, 2))).float().clamp(min=1)
        n_episodes = torch.from_numpy((batch.lengths > 0).sum(1)).float().clamp(min=1)
        rows = [(p.take(batch.obs), p.take(batch.actions),
                 None if batch.dropout_masks is None else [p.take(m) for m in batch.dropout_masks])
                for p in passes]

        values = final_values = None
        if cfg.has_critic:
            values = np.zeros(arrays.mask.shape)
            with torch.no_grad():
                for p, (obs, _, _) in zip(passes, rows):
                    v = value_forward(_pass_params(self.vopt, p)[1], obs, spec)
                    p.scatter_valid(values, v.double().numpy())
                vparams = self.vopt.views(self.vopt.flat[rows_of])
                final_values = value_forward(vparams, batch.final_obs, spec).double().numpy()
        score_sqnorm = None
        if any(self.cfgs[g].baseline == "optimal" for g in gs):
            from pgbench.gradients import per_episode_grads

            full = pad_time(batch, arrays.mask.shape[-1], tensors=True)
            grads = per_episode_grads(self.opt.views(self.opt.flat[rows_of]), spec, full,
                                      torch.from_numpy(full.mask).float())
            score_sqnorm = grads.pow(2).sum(-1).double().numpy()
        adv, target = self._advantages(arrays, gs, values, final_values, score_sqnorm)
        adv_rows = [torch.from_numpy(p.take(adv)).float() for p in passes]

        logp_old = [None] * len(passes)
        if cfg.loss == "ppo":
            with torch.no_grad():
                logp_old = [log_prob_and_entropy(_pass_params(self.opt, p)[1], obs, act, spec, masks)[0]
                            for p, (obs, act, masks) in zip(passes, rows)]
        for _ in range(cfg.update_epochs):
            # One backward per pass: its activations stay small, and each seed's gradient adds
            # up its own blocks in a fixed order.
            grad = torch.zeros(S, self.opt.flat.shape[1])
            losses, mean_entropy = torch.zeros(S), torch.zeros(S)
            for p, (obs, act, masks), adv_p, old in zip(passes, rows, adv_rows, logp_old):
                flat, sub = _pass_params(self.opt, p, grad=True)
                logp, entropy = log_prob_and_entropy(sub, obs, act, spec, masks)
                loss = policy_loss(cfg, logp, adv_p, p.valid, n_episodes[p.seeds], old,
                                   n_valid[p.seeds])
                entropy_p = (entropy * p.valid).sum(1) / n_valid[p.seeds]  # this block's share
                # (without an entropy bonus, the backward skips the entropy's branch)
                objective = (loss - cfg.entropy_coef * entropy_p).sum() if cfg.entropy_coef else loss.sum()
                _add_grad(grad, p, torch.autograd.grad(objective, flat)[0])
                losses[p.seeds] += loss.detach()
                mean_entropy[p.seeds] += entropy_p.detach()
            grad_norm = grad.pow(2).sum(1).sqrt()
            self.opt.step(grad, rows_of)

        value_loss = torch.full((S,), float("nan"))
        if cfg.has_critic:
            target_rows = [torch.from_numpy(p.take(target)).float() for p in passes]
            for _ in range(cfg.value_iters):
                vgrad = torch.zeros(S, self.vopt.flat.shape[1])
                value_loss = torch.zeros(S)
                for p, (obs, _, _), target_p in zip(passes, rows, target_rows):
                    flat, sub = _pass_params(self.vopt, p, grad=True)
                    v = value_forward(sub, obs, spec)
                    per_seed = ((v - target_p).pow(2) * p.valid).sum(1) / n_valid[p.seeds]
                    _add_grad(vgrad, p, torch.autograd.grad(per_seed.sum(), flat)[0])
                    value_loss[p.seeds] += per_seed.detach()
                self.vopt.step(vgrad, rows_of)

        wall = time.perf_counter() - self.t0
        per_seed = zip(gs, (batch.lengths > 0).sum(1).tolist(), losses.tolist(),
                       grad_norm.tolist(), mean_entropy.tolist(), value_loss.tolist())
        for g, n_episodes_k, loss_k, norm_k, entropy_k, value_loss_k in per_seed:
            log = self.logs[g]
            log.update_rows.append((log.updates, log.env_steps, n_episodes_k, loss_k, norm_k,
                                    entropy_k, value_loss_k, wall))
            log.updates += 1

    # -- the loop ---------------------------------------------------------------------------
    def run(self, on_finished=None, progress=None) -> list[SeedLog]:
        """Train until every seed has solved (with stop_when_solved) or spent its budget.

        Every tick steps the seeds that are collecting. A seed whose batch is complete waits
        for an update (see :data:`WAIT_FRACTION`). ``on_finished(log)`` is called as soon
        as a seed stops, so its results can be written while the others go on; ``progress(self)``
        after each update.
        """
        collector = self.collector
        try:
            collector.start(self.active)
            deadline: dict[int, int] = {}  # waiting seed -> tick by which it is updated
            tick = 0
            while len(self.active):
                ended = collector.tick(self.params, self.active)
                tick += 1
                for g in ended.tolist():
                    if self._batch_complete(g):
                        deadline[g] = tick + int(WAIT_FRACTION * collector.round_length(g))
                    else:
                        collector.start([g])
                if not deadline or (len(deadline) < READY_SHARE * len(self.active)
                                    and min(deadline.values()) > tick
                                    and collector.running[self.active].any()):
                    continue
                gs = np.array(sorted(deadline), dtype=np.int64)
                deadline.clear()
                batch = collector.take(gs)
                self.record_episodes(batch, gs)
                self.update(batch, gs)
                finished = [g for g in gs.tolist() if self._set_stop(g)]
                if progress is not None:  # (before finished seeds leave: they may be snapshot)
                    progress(self)
                if finished:
                    keep = np.flatnonzero(~np.isin(self.active, finished))
                    self.active = self.active[keep]
                    self.opt.keep(keep)
                    if self.vopt is not None:
                        self.vopt.keep(keep)
                for g in finished:
                    if on_finished is not None:
                        on_finished(self.logs[g])
                collector.start([g for g in gs.tolist() if g not in finished])
        finally:
            collector.close()
        return self.logs

    def _set_stop(self, g: int) -> bool:
        self.logs[g].stop_reason = stop_reason(self.cfgs[g], self.logs[g])
        return self.logs[g].stop_reason is not None


# No wall time here: episodes.parquet is bit-identical across reruns of a config and seed.
# Wall time is per update, in updates.parquet (join on `update`).
EPISODE_COLUMNS = ["update", "episode", "env_steps", "return", "length", "terminated", "truncated",
                   "running_reward"]
UPDATE_COLUMNS = ["update", "env_steps", "episodes", "policy_loss", "grad_norm", "entropy",
                  "value_loss", "wall_s"]


def episodes_frame(log: SeedLog) -> pd.DataFrame:
    df = pd.DataFrame(log.episode_rows, columns=EPISODE_COLUMNS)
    return df.astype({"update": "int64", "episode": "int64", "env_steps": "int64",
                      "return": "float64", "length": "int64", "terminated": "bool",
                      "truncated": "bool", "running_reward": "float64"})


def updates_frame(log: SeedLog) -> pd.DataFrame:
    df = pd.DataFrame(log.update_rows, columns=UPDATE_COLUMNS)
    return df.astype({"update": "int64", "env_steps": "int64", "episodes": "int64"})


def write_run(out_dir: Path, cfg: TrainConfig, log: SeedLog, meta: dict, prov: dict,
              elapsed_s: float, cpu_s: float) -> None:
    """Write one seed's run directory atomically: staged beside it, then renamed into place."""
    run_cfg = replace(cfg, seed=log.seed)
    stage = staging_dir(out_dir)
    try:
        write_parquet_atomic(stage / "episodes.parquet", episodes_frame(log))
        write_parquet_atomic(stage / "updates.parquet", updates_frame(log))
        write_json_atomic(stage / "run.json", {
            "schema": 1,
            "config": run_cfg.to_dict(),
            "config_hash": run_cfg.hash(with_seed=False),
            "run_hash": run_cfg.hash(with_seed=True),
            "meta": meta,
            "status": "complete",
            "stop_reason": log.stop_reason,
            "reward_threshold": check_env_id(cfg.env_id).reward_threshold,
            "solved": log.solved,
            "solved_last100": log.solved_last100,
            "totals": {"env_steps": log.env_steps, "episodes": log.episodes, "updates": log.updates},
            "provenance": {**prov, "elapsed_s": round(elapsed_s, 3), "cpu_s": round(cpu_s, 3)},
        })
        # judged again at the last moment: pgbench never deletes a file it did not write, even
        # one that appeared in the run directory while the run trained
        check_dir(out_dir, RUN, force=True, option="run directory")
        replace_dir_atomic(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def train_group(cfg: TrainConfig, seeds: list[int], out_dirs: list[Path], meta: dict | None = None,
                show_progress: bool = False) -> list[SeedLog]:
    """Train ``cfg`` for each seed and write ``out_dirs[i]`` for ``seeds[i]`` as it finishes."""
    return train_runs([RunRequest(replace(cfg, seed=s), Path(d), meta or {})
                       for s, d in zip(seeds, out_dirs)], show_progress=show_progress)


@dataclass(frozen=True)
class RunRequest:
    """One run to train: its config (``cfg.seed`` is the run's seed), where its run directory
    goes, and the metadata recorded in its run.json (suite, arm, setting, command)."""

    cfg: TrainConfig
    out_dir: Path
    meta: dict = field(default_factory=dict)


def train_runs(requests: list[RunRequest], show_progress: bool = False,
               log_progress=None) -> list[SeedLog]:
    """Train every request; each run directory is written as soon as its run finishes.

    ``show_progress`` draws a bar (for a terminal); ``log_progress``, a text stream, gets
    progress lines instead (:class:`pgbench.progress.ProgressLines`, for a log file).

    The returned logs keep each run's totals and solve points; their episode and update rows
    are freed once written (read them from the run directories).

    Runs that may share a group (same :func:`group_key`: e.g. the arms of a suite that differ
    in estimator or dropout only) train in one :class:`GroupTrainer`; each run's numbers are
    those it gets alone, whatever else the call trains. Returns the logs in request order.
    """
    configure_torch(torch)  # one thread (tiny networks), the pinned kernels (dispatch.py)
    if (warning := check_pinned()) is not None:
        print(f"pgbench: warning: {warning}", file=sys.stderr)
    if len({(r.cfg.hash(), str(r.out_dir)) for r in requests}) != len(requests):
        raise UserError("the same run is requested twice")
    prov = provenance(seed_group=sorted({r.cfg.seed for r in requests}))
    shares = _Shares(len(requests))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(group_key(r.cfg), []).append(i)
    logs: list[SeedLog | None] = [None] * len(requests)
    bar = _ProgressBar(requests) if show_progress else None
    if bar is None and log_progress is not None:
        from pgbench.progress import ProgressLines

        bar = ProgressLines(len(requests), sum(r.cfg.total_steps for r in requests), log_progress)
    try:
        for i, r in enumerate(requests):  # compiled runs: one at a time, each in its own loop
            if r.cfg.engine == "numba":
                from pgbench.compiled import CompiledRun

                shares.start([i])
                logs[i] = CompiledRun(r.cfg).run(progress=bar)
                write_run(r.out_dir, r.cfg, logs[i], r.meta, prov, *shares.stop(i))
                _drop_rows(logs[i])
            elif is_algorithm(r.cfg.variant):  # standard algorithms: their own trainers
                shares.start([i])
                logs[i] = trainer_of(r.cfg.variant)(r.cfg, progress=bar)
                write_run(r.out_dir, r.cfg, logs[i], r.meta, prov, *shares.stop(i))
                _drop_rows(logs[i])
        for members in groups.values():
            members = [i for i in members if requests[i].cfg.engine != "numba"
                       and not is_algorithm(requests[i].cfg.variant)]
            if not members:
                continue
            trainer = GroupTrainer([requests[i].cfg for i in members])
            shares.start(members)

            def finished(log: SeedLog, trainer=trainer, members=members) -> None:
                i = members[next(k for k, x in enumerate(trainer.logs) if x is log)]
                r = requests[i]
                write_run(r.out_dir, r.cfg, log, r.meta, prov, *shares.stop(i))
                _drop_rows(log)
                logs[i] = log

            trainer.run(on_finished=finished, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return logs


def _drop_rows(log: SeedLog) -> None:
    """Free a written run's episode and update rows (they are in its run directory): a job's
    memory then holds its running runs only, not every run it has finished (a collapsed slides
    seed keeps ~320,000 of each)."""
    log.episode_rows, log.update_rows = [], []


class _Shares:
    """Each run's share of the wall and CPU time of a call that trains several runs at once:
    every stretch of time is split equally among the runs training during it (time when none
    is, such as start-up, goes to the next ones). The shares add up to the call's time."""

    def __init__(self, n: int):
        self.wall, self.cpu = [0.0] * n, [0.0] * n
        self.active: set[int] = set()
        self.last = (time.perf_counter(), _cpu_seconds())

    def _split(self) -> None:
        if not self.active:
            return  # carried over to the runs that start next
        now = (time.perf_counter(), _cpu_seconds())
        wall, cpu = ((a - b) / len(self.active) for a, b in zip(now, self.last))
        for i in self.active:
            self.wall[i] += wall
            self.cpu[i] += cpu
        self.last = now

    def start(self, runs) -> None:
        self._split()
        self.active.update(runs)

    def stop(self, i: int) -> tuple[float, float]:
        """Run ``i`` is done: its (wall, CPU) seconds."""
        self._split()
        self.active.discard(i)
        return self.wall[i], self.cpu[i]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _ProgressBar:
    """A tqdm bar over the env steps of every run of a call, shown only on a terminal; called
    after each update, it redraws at most a few times a second."""

    def __init__(self, requests: list[RunRequest]):
        from tqdm import tqdm

        envs = sorted({r.cfg.env_id for r in requests})
        self.bar = tqdm(total=sum(r.cfg.total_steps for r in requests), unit="step",
                        unit_scale=True, desc=" ".join(envs), leave=False, mininterval=0.5)
        self.done, self.before, self.last = 0, 0, 0.0

    def __call__(self, trainer: GroupTrainer) -> None:
        now = time.perf_counter()
        over = all(log.stop_reason for log in trainer.logs)
        if now - self.last < 0.5 and not over:
            return
        self.last = now
        done = sum(c.total_steps if log.stop_reason else min(log.env_steps, c.total_steps)
                   for c, log in zip(trainer.cfgs, trainer.logs))
        if over:  # the group is over: count it for good
            self.before, done = self.before + done, 0
        self.bar.update(self.before + done - self.done)
        self.done = self.before + done

    def close(self):
        self.bar.close()


# -- command line ---------------------------------------------------------------------------
def configure_parser(parser) -> None:
    parser.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    parser.add_argument("--variant", required=True, help="estimator variant (see `pgbench variants`)")
    parser.add_argument("--seed", type=int, nargs="+", required=True,
                        help="seed(s); several seeds train together in one process, each giving "
                             "the numbers it would give alone")
    parser.add_argument("--total-steps", type=int, help="env-step budget per seed")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--episodes-per-update", type=int, help="whole episodes per update")
    group.add_argument("--steps-per-update", type=int, help="env steps per update (whole episodes)")
    parser.add_argument("--stop-when-solved", action="store_true",
                        help="stop once the running reward reaches the env's reward_threshold")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a setting; keys: {', '.join(FIELD_NAMES)}")
    parser.add_argument("--out", required=True,
                        help="run directory; with several seeds, a pattern containing {seed} "
                             "(default: OUT/seed{seed})")
    parser.add_argument("--suite", default="", help="suite name recorded in run.json (metadata)")
    parser.add_argument("--arm", default="", help="arm name recorded in run.json (metadata)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="the settings this arm varies, recorded in run.json (metadata)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing run directory of another config (never files "
                             "pgbench did not write); a complete run of the same config is "
                             "always skipped")
    parser.add_argument("--skip-existing", action="store_true",
                        help="accepted for old scripts: complete runs of the same config are "
                             "always skipped")


def build_config(args) -> TrainConfig:
    overrides = parse_set_options(args.set)
    for name, value in (("total_steps", args.total_steps), ("episodes_per_update", args.episodes_per_update),
                        ("steps_per_update", args.steps_per_update)):
        if value is not None:
            overrides[name] = value
    if args.steps_per_update is not None and "episodes_per_update" not in overrides:
        overrides["episodes_per_update"] = 0
    if args.episodes_per_update is not None and "steps_per_update" not in overrides:
        overrides["steps_per_update"] = 0
    if args.stop_when_solved:
        overrides["stop_when_solved"] = True
    overrides["env_id"] = args.env
    overrides["seed"] = args.seed[0]
    cfg = make_config(args.variant, overrides)
    check_env_id(cfg.env_id)
    policy_spec(cfg)  # fails here, before anything is written, on an unsupported space
    return cfg


def out_dirs_for(pattern: str, seeds: list[int]) -> list[Path]:
    if len(seeds) == 1 and "{seed}" not in pattern:
        return [Path(pattern)]
    if "{seed}" not in pattern:
        pattern = os.path.join(pattern, "seed{seed}")
    return [Path(pattern.format(seed=s)) for s in seeds]


def is_complete(run_dir: Path, cfg: TrainConfig) -> bool:
    import json

    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("status") == "complete" and info.get("run_hash") == cfg.hash()


def run(args) -> int:
    if len(set(args.seed)) != len(args.seed):
        raise UserError(f"repeated seed in --seed {args.seed}; give each seed once")
    if any(s < 0 for s in args.seed):
        raise UserError(f"bad --seed {args.seed}; accepted: integers >= 0")
    cfg = build_config(args)
    from pgbench.trainjob import runs_to_train

    setting = dict(item.split("=", 1) for item in args.setting if "=" in item)
    meta = {"suite": args.suite, "arm": args.arm or cfg.variant, "setting": setting,
            "command": " ".join(["pgbench", "train", *sys.argv[2:]]) if sys.argv else ""}
    requests = runs_to_train([RunRequest(replace(cfg, seed=s), d, meta) for s, d in
                              zip(args.seed, out_dirs_for(args.out, list(args.seed)))],
                             force=args.force, prog="pgbench train", option="--out")
    if not requests:
        return 0
    tty = sys.stderr.isatty()
    logs = train_runs(requests, show_progress=tty, log_progress=None if tty else sys.stderr)
    for log, d in zip(logs, (r.out_dir for r in requests)):
        solved = (f"solved at {log.solved['env_steps']} steps ({log.solved['episode'] + 1} episodes)"
                  if log.solved else "not solved")
        print(f"seed {log.seed}: {log.env_steps} steps, {log.episodes} episodes, {solved} -> {d}")
    return 0
