"""PPO as the literature runs it (Schulman et al. 2017; SB3's and CleanRL's defaults).

Per update: an n-step rollout from ``num_envs`` sub-envs; GAE advantages; ``update_epochs``
passes over the batch in shuffled minibatches of ``batch_size``; on each minibatch one Adam step
(eps 1e-5) of the joint loss

    clipped surrogate  +  vf_coef * critic MSE (optionally clipped)  -  entropy_coef * entropy,

with the gradient clipped to ``max_grad_norm``; advantages standardised per minibatch; optional
linear annealing of the learning rate and clip range, early stop once a minibatch's approximate
KL exceeds 1.5 ``target_kl`` (before its step, as SB3), and
observation/reward normalisation (:mod:`pgbench.training.algorithms.normalize`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pgbench.rl.config import TrainConfig
from pgbench.rl.hyper import hyper_of
from pgbench.runs.log import SeedLog
from pgbench.training.algorithms.common import (
    minibatches,
    progress_remaining,
    set_lr,
    standardize,
    start_run,
)

__all__ = ["clipped_surrogate", "train", "value_loss"]


def clipped_surrogate(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                      clip: float) -> torch.Tensor:
    """PPO's loss to minimise: -mean(min(r A, clip(r, 1 - clip, 1 + clip) A)), r = exp(logp -
    logp_old). Shapes (B,). Where the clipped term is the smaller one, its gradient is zero."""
    ratio = torch.exp(logp - logp_old)
    return -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()


def value_loss(values: torch.Tensor, values_old: torch.Tensor, returns: torch.Tensor,
               clip_vf: float) -> torch.Tensor:
    """Critic MSE; with ``clip_vf`` > 0 the new value is first clipped to old +- clip_vf (SB3's
    ``clip_range_vf``: the clipped prediction replaces the new one)."""
    if clip_vf > 0:
        values = values_old + (values - values_old).clamp(-clip_vf, clip_vf)
    return (returns - values).pow(2).mean()


def train(cfg: TrainConfig, progress=None) -> SeedLog:
    """Train one seed of ``cfg`` (variant ``ppo``); the log for :func:`pgbench.runs.store.write_run`."""
    h = hyper_of(cfg)
    run = start_run(cfg, h, progress)
    net = run.net
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5)
    max_norm = h.max_grad_norm if h.max_grad_norm > 0 else math.inf
    stop = False
    while not stop:
        batch = run.runner.collect(h.n_steps)
        left = progress_remaining(run.recorder.env_steps, cfg.total_steps)
        set_lr(opt, cfg.lr * (left if h.anneal_lr else 1.0))
        clip = cfg.ppo_clip * (left if h.anneal_clip else 1.0)
        stats, kl_stop = [], False
        for _ in range(cfg.update_epochs):
            for idx in minibatches(len(batch), h.batch_size, run.shuffle_gen):
                dist = net.dist(batch.obs[idx])
                logp = dist.log_prob(batch.actions[idx])
                adv = batch.advantages[idx]
                if cfg.normalize_advantages and len(idx) > 1:
                    adv = standardize(adv)
                pg = clipped_surrogate(logp, batch.logp[idx], adv, clip)
                vl = value_loss(net.value(batch.obs[idx]), batch.values[idx], batch.returns[idx],
                                h.clip_range_vf)
                ent = dist.entropy().mean()
                with torch.no_grad():  # as SB3: judged before this minibatch's step
                    log_ratio = logp - batch.logp[idx]
                    kl_stop = h.target_kl > 0 and float(
                        ((log_ratio.exp() - 1) - log_ratio).mean()) > 1.5 * h.target_kl
                if kl_stop:
                    break
                loss = pg + h.vf_coef * vl - cfg.entropy_coef * ent
                opt.zero_grad()
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
                opt.step()
                stats.append((pg.item(), norm.item(), ent.item(), vl.item()))
            if kl_stop:
                break
        steps_taken = len(stats)  # one optimiser step per minibatch (fewer if target_kl stopped)
        if not stats:
            stats = [(math.nan,) * 4]
        stop = run.recorder.end_update(*np.mean(stats, axis=0), gradient_steps=steps_taken)
    run.runner.close()
    return run.recorder.log
