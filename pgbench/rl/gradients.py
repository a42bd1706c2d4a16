"""Per-episode policy gradients in one batched call (``torch.func``), no backward per episode.

For episode ``e`` of seed ``s`` this computes ``g_se = grad_theta sum_t w_set log pi(a_set | s_set)``
where ``w`` is a per-step weight: the valid-step mask for the score ``grad log p(tau)``, or an
advantage for one estimator's per-episode gradient.
"""

from __future__ import annotations

import torch
from torch.func import grad, vmap

from pgbench.rl.policies import PolicySpec, log_prob_and_entropy


def flatten_grads(grads: dict[str, torch.Tensor], lead: int) -> torch.Tensor:
    """Concatenate a dict of gradients with ``lead`` leading axes into ``(*lead_shape, P)``."""
    keys = sorted(grads)
    lead_shape = grads[keys[0]].shape[:lead]
    return torch.cat([grads[k].reshape(*lead_shape, -1) for k in keys], dim=-1)


def per_episode_grads(params, spec: PolicySpec, batch, weights: torch.Tensor) -> torch.Tensor:
    """Per-episode weighted score gradients, flattened: ``(S, E, P)``.

    ``params`` are stacked ``(S, ...)`` weights; ``batch`` a :class:`pgbench.training.rollout.Batch` with
    ``S`` seeds and ``E`` episode slots; ``weights (S, E, T)`` (zero on padding). Parameter order
    in ``P`` is sorted by parameter name (see :func:`flatten_grads`).
    """
    masks = batch.dropout_masks

    def episode_objective(p, obs, actions, w, *m):
        # One seed, one episode: add back the singleton seed axis the stacked MLP expects.
        p1 = {k: v.unsqueeze(0) for k, v in p.items()}
        m1 = [x.unsqueeze(0) for x in m] if m else None
        logp, _ = log_prob_and_entropy(p1, obs.unsqueeze(0), actions.unsqueeze(0), spec, m1)
        return (logp.squeeze(0) * w).sum()

    g = grad(episode_objective)
    n_masks = 0 if masks is None else len(masks)
    over_episodes = vmap(g, in_dims=(None, 0, 0, 0) + (0,) * n_masks)
    over_seeds = vmap(over_episodes, in_dims=(0, 0, 0, 0) + (0,) * n_masks)
    detached = {k: v.detach() for k, v in params.items()}
    extra = [] if masks is None else list(masks)
    grads = over_seeds(detached, batch.obs, batch.actions, weights.to(batch.obs.dtype), *extra)
    return flatten_grads(grads, lead=2)
