"""TRPO (Schulman et al. 2015), as sb3-contrib's ``TRPO`` runs it.

Per update: an n-step rollout; GAE advantages, standardised over the whole batch; then

1. the gradient g of the surrogate L(theta) = mean(exp(logp - logp_old) A) over the batch;
2. the natural-gradient direction s = F^-1 g by :func:`conjugate_gradient`, where F v is the
   Hessian-vector product of the mean KL(old || new) at the current policy plus ``cg_damping v``;
3. the largest step along s whose quadratic KL model is ``target_kl``:
   beta = sqrt(2 target_kl / s^T F s);
4. :func:`kl_line_search`: try beta s, then shrink it by ``line_search_shrink``, up to
   ``line_search_max_iter`` times; take the first step whose mean KL is below ``target_kl`` and
   whose surrogate improves, or no step at all;
5. the critic, separately: ``n_critic_updates`` epochs of Adam (``lr``) over minibatches of
   ``batch_size`` of the squared error to the GAE returns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pgbench.rl.config import TrainConfig
from pgbench.rl.hyper import hyper_of
from pgbench.runs.log import SeedLog
from pgbench.training.algorithms.common import minibatches, standardize, start_run
from pgbench.training.algorithms.core import Dist

__all__ = ["conjugate_gradient", "fit_critic", "kl_line_search", "policy_step", "train"]


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       iters: int, tol: float = 1e-10) -> torch.Tensor:
    """Approximate solution x of A x = b for a symmetric positive-definite A given as ``matvec``,
    after at most ``iters`` conjugate-gradient steps from x = 0 (exact after n steps for n x n A,
    up to rounding); stops once the squared residual is below ``tol``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def kl_line_search(evaluate: Callable[[float], tuple[float, float]], objective_old: float,
                   max_kl: float, shrink: float, max_iter: int) -> tuple[float, float, float]:
    """Backtracking search of the step coefficient: ``evaluate(c)`` gives (surrogate, mean KL)
    of the policy moved by c times the full step; returns ``(c, surrogate, kl)`` of the first of
    c = 1, shrink, shrink^2, ... (``max_iter`` tries) with KL < ``max_kl`` and surrogate >
    ``objective_old``, or ``(0.0, objective_old, 0.0)`` when none is (the policy stays)."""
    coef = 1.0
    for _ in range(max_iter):
        objective, kl = evaluate(coef)
        if kl < max_kl and objective > objective_old:
            return coef, objective, kl
        coef *= shrink
    return 0.0, objective_old, 0.0


def policy_step(net, batch, adv: torch.Tensor, h) -> tuple[float, float, float]:
    """Steps 1-4 of the module docstring on one rollout; moves ``net``'s policy in place.
    Returns (surrogate before the step, its gradient's norm, mean entropy before the step)."""
    params = net.policy_parameters()
    with torch.no_grad():
        acting = net.dist(batch.obs)
    old = Dist(acting.out.detach(), None if acting.log_std is None else acting.log_std.detach())

    def surrogate() -> tuple[torch.Tensor, Dist]:
        dist = net.dist(batch.obs)
        return (torch.exp(dist.log_prob(batch.actions) - batch.logp) * adv).mean(), dist

    objective, dist = surrogate()
    grad = parameters_to_vector(torch.autograd.grad(objective, params, retain_graph=True))
    kl_grad = parameters_to_vector(
        torch.autograd.grad(dist.kl_from(old).mean(), params, create_graph=True))

    def fisher(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(kl_grad @ v, params, retain_graph=True)
        return parameters_to_vector(hv) + h.cg_damping * v

    direction = conjugate_gradient(fisher, grad, h.cg_max_steps)
    step = direction * torch.sqrt(2 * h.target_kl / (direction @ fisher(direction)))
    theta = parameters_to_vector(params).detach()

    def evaluate(coef: float) -> tuple[float, float]:
        with torch.no_grad():
            vector_to_parameters(theta + coef * step, params)
            new_objective, new_dist = surrogate()
            return new_objective.item(), new_dist.kl_from(old).mean().item()

    coef, _, _ = kl_line_search(evaluate, objective.item(), h.target_kl, h.line_search_shrink,
                                h.line_search_max_iter)
    with torch.no_grad():
        vector_to_parameters(theta + coef * step, params)
    return objective.item(), grad.norm().item(), dist.entropy().mean().item()


def fit_critic(net, batch, h, optimizer, generator) -> float:
    """Step 5: ``n_critic_updates`` epochs of minibatch steps; the mean squared error seen."""
    losses = []
    for _ in range(h.n_critic_updates):
        for idx in minibatches(len(batch), h.batch_size, generator):
            loss = (batch.returns[idx] - net.value(batch.obs[idx])).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return sum(losses) / len(losses)


def train(cfg: TrainConfig, progress=None) -> SeedLog:
    """Train one seed of ``cfg`` (variant ``trpo``); the log for :func:`pgbench.runs.store.write_run`."""
    h = hyper_of(cfg)
    run = start_run(cfg, h, progress)
    critic_opt = torch.optim.Adam(run.net.vf.parameters(), lr=cfg.lr, eps=1e-5)
    stop = False
    while not stop:
        batch = run.runner.collect(h.n_steps)
        adv = standardize(batch.advantages) if cfg.normalize_advantages else batch.advantages
        objective, grad_norm, entropy = policy_step(run.net, batch, adv, h)
        value_loss = fit_critic(run.net, batch, h, critic_opt, run.shuffle_gen)
        # the policy's one line-searched natural-gradient step (the critic's steps do not count)
        stop = run.recorder.end_update(-objective, grad_norm, entropy, value_loss, gradient_steps=1)
    run.runner.close()
    return run.recorder.log
