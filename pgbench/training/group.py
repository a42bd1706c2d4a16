"""The group trainer: several runs trained at once on stacked weights and one set of sub-envs,
each seed collecting on its own clock and updating when its own batch is complete (the package
docstring says why each run's numbers are those it gets alone).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import torch

from pgbench.core.errors import UserError
from pgbench.core.seeding import seed_sequences, torch_generator
from pgbench.envs.registry import check_env_id
from pgbench.rl.config import TrainConfig
from pgbench.rl.policies import init_policy, init_value, log_prob_and_entropy, value_forward
from pgbench.runs.log import SeedLog, record_episode, stop_reason
from pgbench.training.optim import StackedAdam
from pgbench.training.rollout import Batch, Collector
from pgbench.training.specs import policy_spec
from pgbench.training.update import (
    UPDATE_BLOCK_ROWS,
    _add_grad,
    _pass_params,
    advantages,
    pad_time,
    policy_loss,
    update_passes,
)

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

    Each seed collects its own rounds (see :mod:`pgbench.training.rollout`) and joins an update as soon as
    its batch is complete: seeds with short episodes do not wait for long ones, and a seed's
    numbers are those it gets alone.
    """

    def __init__(self, cfgs: TrainConfig | list[TrainConfig], seeds: list[int] | None = None):
        if isinstance(cfgs, TrainConfig):
            cfgs = [replace(cfgs, seed=s) for s in (seeds if seeds is not None else [cfgs.seed])]
        if any(c.engine != "torch" for c in cfgs):
            raise UserError("this trainer is engine=torch; accepted here: engine=torch (runs with "
                            "engine=numba train through pgbench.training.numba, as train_runs does)")
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
        self.logs = [SeedLog(seed=s, gradient_steps=0) for s in self.seeds]
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
            from pgbench.rl.gradients import per_episode_grads

            # The batch's own time axis: the scores need no padding (zero weights add nothing).
            grads = per_episode_grads(self.opt.views(self.opt.flat[rows_of]), spec, batch,
                                      torch.from_numpy(batch.mask).float())
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
            log.gradient_steps += cfg.update_epochs  # the policy's steps (the critic's do not count)

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
