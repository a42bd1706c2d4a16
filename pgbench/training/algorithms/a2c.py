"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, synchronous as SB3's ``A2C``).

Per update: an n-step rollout (``n_steps``, 5 by default) from each of ``num_envs`` sub-envs;
advantages by GAE with ``gae_lambda`` (1 by default: the n-step return, bootstrapped from the
critic at the rollout's end and at a truncated episode's end, not at a terminated one's, minus
V(s_t)); one step of RMSprop (alpha 0.99, eps ``rms_prop_eps``) on the whole batch of

    -mean(A * log pi(a|s))  +  vf_coef * mean((R - V(s))^2)  -  entropy_coef * entropy,

with the gradient clipped to ``max_grad_norm``.
"""

from __future__ import annotations

import math

import torch

from pgbench.rl.config import TrainConfig
from pgbench.rl.hyper import hyper_of
from pgbench.runs.log import SeedLog
from pgbench.training.algorithms.common import progress_remaining, set_lr, standardize, start_run

__all__ = ["actor_critic_loss", "train"]


def actor_critic_loss(logp: torch.Tensor, adv: torch.Tensor, values: torch.Tensor,
                      returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(policy_loss, value_loss)``: -mean(A log pi) and mean((R - V)^2). Shapes (B,)."""
    return -(adv * logp).mean(), (returns - values).pow(2).mean()


def train(cfg: TrainConfig, progress=None) -> SeedLog:
    """Train one seed of ``cfg`` (variant ``a2c``); the log for :func:`pgbench.runs.store.write_run`."""
    h = hyper_of(cfg)
    run = start_run(cfg, h, progress)
    net = run.net
    opt = (torch.optim.RMSprop(net.parameters(), lr=cfg.lr, alpha=0.99, eps=h.rms_prop_eps)
           if h.rms_prop else torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=1e-5))
    max_norm = h.max_grad_norm if h.max_grad_norm > 0 else math.inf
    stop = False
    while not stop:
        batch = run.runner.collect(h.n_steps)
        if h.anneal_lr:
            set_lr(opt, cfg.lr * progress_remaining(run.recorder.env_steps, cfg.total_steps))
        dist = net.dist(batch.obs)
        adv = standardize(batch.advantages) if cfg.normalize_advantages else batch.advantages
        pg, vl = actor_critic_loss(dist.log_prob(batch.actions), adv, net.value(batch.obs),
                                   batch.returns)
        ent = dist.entropy().mean()
        loss = pg + h.vf_coef * vl - cfg.entropy_coef * ent
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
        opt.step()
        stop = run.recorder.end_update(pg.item(), norm.item(), ent.item(), vl.item(), gradient_steps=1)
    run.runner.close()
    return run.recorder.log
