"""Per-episode policy gradients in batched ``torch.func`` calls, never a backward per episode.

For an episode and a per-step weighting ``w`` this computes ``g = grad_theta sum_t w_t log
pi(a_t | s_t)``: with the valid-step mask as ``w``, the score ``grad log p(tau)``; with an
advantage, one estimator's per-episode gradient. :func:`weighted_episode_grads` is the one
implementation (the gradient study's estimators and the trainer's optimal baseline both use
it); gradients are flat vectors in :func:`parameter_layout` order (sorted by parameter name).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import vjp, vmap

from pgbench.rl.policies import PolicySpec, log_prob_and_entropy

#: Time steps (episodes x padded length) per torch.func call: bounds the activations' memory,
#: and small chunks of length-sorted episodes waste little on padding. Speed only: each
#: episode's gradient is computed alone, whatever chunk it is in.
ROWS_PER_CALL = 1 << 13


def parameter_layout(params: dict[str, torch.Tensor]) -> dict[str, slice]:
    """Where each parameter tensor sits in the flat gradient ``(P,)``: name -> slice.

    The order is sorted by name, as in every flat gradient here; ``params`` are stacked
    ``(S, ...)`` and the seed axis is not part of P.
    """
    out, start = {}, 0
    for name in sorted(params):
        size = int(np.prod(params[name].shape[1:]))
        out[name] = slice(start, start + size)
        start += size
    return out


def weighted_episode_grads(params, spec: PolicySpec, obs, actions, weights, dropout_masks=None,
                           rows_per_call: int = ROWS_PER_CALL) -> torch.Tensor:
    """``G[e, w] = grad_theta sum_t weights[e, w, t] log pi(actions[e, t] | obs[e, t])``, flat.

    Several weightings of the same episode share one forward pass: the episode's
    log-probabilities ``(T,)`` are computed once and ``torch.func.vjp``'s pull-back is applied to
    each weighting; ``vmap`` runs this over all episodes of a chunk at once.

    Shapes: ``params`` stacked with one seed ``(1, ...)``; obs ``(E, T, obs_dim)``; actions
    ``(E, T)`` (discrete) or ``(E, T, act_dim)``; weights ``(E, W, T)`` (zero on padding);
    dropout_masks None or a list of ``(E, T, hidden_l)``. Returns ``(E, W, P)`` float32, P in
    :func:`parameter_layout` order.
    """
    names = sorted(params)
    single = {k: params[k].detach()[0] for k in names}
    masks = [] if dropout_masks is None else list(dropout_masks)

    def log_probs(p, o, a, m):
        # One episode: the stacked MLP wants a seed axis, added back here.
        p1 = {k: v.unsqueeze(0) for k, v in p.items()}
        m1 = [x.unsqueeze(0) for x in m] if m else None
        logp, _ = log_prob_and_entropy(p1, o.unsqueeze(0), a.unsqueeze(0), spec, m1)
        return logp.squeeze(0)

    def one_episode(o, a, w, *m):
        _, pull = vjp(lambda p: log_probs(p, o, a, m), single)
        # A Python loop over the few weightings: faster here than vmap over the pull-back
        # (benchmarks/gradstudy_speed.py times the alternatives).
        flat = []
        for i in range(w.shape[0]):
            (g,) = pull(w[i])
            flat.append(torch.cat([g[k].reshape(-1) for k in names]))
        return torch.stack(flat)

    over_episodes = vmap(one_episode)
    weights = weights.to(obs.dtype)
    E = weights.shape[0]
    # Episodes are processed shortest first, in chunks padded only to their own longest
    # episode: padding costs as much as real steps, and lengths vary tenfold within a pool.
    # An episode's length here is one past its last nonzero weight (steps after it add nothing).
    nonzero = (weights != 0).any(1)  # (E, T)
    length = torch.where(nonzero.any(-1), nonzero.shape[-1] - nonzero.flip(-1).int().argmax(-1), 1)
    order = torch.argsort(length, stable=True)
    sorted_length = length[order]
    out = torch.empty(E, weights.shape[1], sum(v.numel() for v in single.values()))
    start = 0
    while start < E:
        # the longest prefix of the remaining episodes whose padded size fits one call
        fits = torch.arange(1, E - start + 1) * sorted_length[start:] <= rows_per_call
        n = max(1, int(fits.sum()))  # fits is a run of True then False: the product grows
        idx, T = order[start:start + n], int(sorted_length[start + n - 1])
        out[idx] = over_episodes(obs[idx, :T], actions[idx, :T], weights[idx, :, :T],
                                 *(m[idx, :T] for m in masks))
        start += n
    return out


def per_episode_grads(params, spec: PolicySpec, batch, weights: torch.Tensor) -> torch.Tensor:
    """Per-episode weighted score gradients of stacked seeds, flattened: ``(S, E, P)``.

    ``params`` are stacked ``(S, ...)`` weights; ``batch`` a :class:`pgbench.training.rollout.Batch`
    with ``S`` seeds and ``E`` episode slots (tensors); ``weights (S, E, T)`` (zero on padding).
    Each seed's episodes go through :func:`weighted_episode_grads` with one weighting.
    """
    masks = batch.dropout_masks
    out = []
    for s in range(weights.shape[0]):
        seed_params = {k: v[s:s + 1] for k, v in params.items()}
        seed_masks = None if masks is None else [m[s] for m in masks]
        out.append(weighted_episode_grads(seed_params, spec, batch.obs[s], batch.actions[s],
                                          weights[s][:, None, :], seed_masks)[:, 0])
    return torch.stack(out)
