"""``pgbench gradstudy``: bias and variance of policy-gradient estimators, measured directly.

The sources claim that a constant baseline leaves the gradient's expectation unchanged and that
a baseline and reward-to-go ("causality") reduce its variance. Learning curves only show these
effects through training; here they are measured at *fixed* policy parameters:

1. Policies: the initial parameters, and snapshots taken while pgbench's own trainer learns (by
   default variant ``rtg_baseline`` with 8 episodes per update), at the first update after which
   the sources' running reward reaches 25% and 75% of the env's reward threshold (snapshots
   ``q25``, ``q75``: a level of performance, not a fraction of the training budget).
2. At each snapshot, a *pool* of ``M * max(K)`` independent episodes is collected (one vector env,
   :class:`pgbench.rollout.Collector`) and split into batches of K episodes for every K of
   ``--episodes`` (so a smaller K gets more batches of the same episodes). Every estimator's batch
   gradient is computed on the *same* batches: common random numbers, so differences between
   estimators are paired and far more precise than between independent samples.
3. An independent *reference* pool of ``R * max(K)`` episodes gives the reference gradient
   that bias and direction are measured against: the grand mean of one unbiased estimator,
   ``loo_time_baseline`` by default. Every unbiased estimator has the gradient as its mean; vanilla,
   the textbook choice, has up to 1000x the variance once episodes reach the time limit, so
   its mean over the same episodes would be a far noisier reference.
4. ``--max-steps`` caps the env steps of both pools (InvertedPendulum's MuJoCo steps cost ~30x
   CartPole's vectorised ones): M and R shrink in proportion, sized from a separate pilot.

Per-episode gradients come from batched ``torch.func`` calls (``vjp`` of each episode's
log-probabilities, ``vmap`` over episodes; the weightings share one forward pass), never a
backward per episode.

Estimators (the batch gradient is the mean of K per-episode terms; ``g_i`` is episode i's score
``sum_t grad log pi(a_t|s_t)``, ``R_i`` its return, ``G_it`` its reward-to-go; ``gamma = 1`` by
default so that every unbiased estimator estimates the gradient of the same objective):

====================== ====================================================================
vanilla                ``g_i R_i``
batch_mean_baseline    ``g_i (R_i - mean_j R_j)``, the slides' baseline, mean *including*
                       episode i. It is biased: its expectation is exactly ``(1 - 1/K)`` times
                       the gradient (a pure rescaling; K=1 gives 0, so it is not reported at
                       K=1). Kept to show the bias and that the equal-means test detects it.
loo_baseline           ``g_i (R_i - mean_{j != i} R_j)``: leave-one-out mean, unbiased for every
                       K (the baseline is independent of episode i). It equals
                       ``K/(K-1)`` times batch_mean_baseline; with K=1 there is no other
                       episode, the baseline is 0 and it equals vanilla.
ema_baseline           ``g_i (R_i - b)``, b the trainer's running mean (weight ``--ema-weight``
                       on the newest batch's mean return, :func:`pgbench.estimators.ema_baseline`)
                       of the batches *before* this one: unbiased at every K, K=1 included
fixed_baseline         ``g_i (R_i - b)``, b the mean return of the reference pool: a constant
                       known in advance, as the textbook derivation assumes
loo_optimal_baseline   ``g_i (R_i - b_i)`` with Levine's variance-minimising constant
                       ``b = E[|g|^2 R] / E[|g|^2]`` (CS285 lecture 5), estimated leave-one-out
                       from the other episodes of the batch (unbiased; K=1: b=0)
fixed_optimal_baseline the same constant estimated on the reference pool: Levine's baseline as
                       derived (a constant), without the noise of estimating it from K episodes
rtg                    ``sum_t G_it grad log pi_t`` (reward-to-go, causality)
rtg_loo_baseline       ``rtg - g_i b_i``: b the leave-one-out mean over the other episodes of
                       their mean reward-to-go
rtg_ema_baseline       ``rtg - g_i b``: b the trainer's running mean of past batches' mean
                       reward-to-go (what variant ``rtg_baseline`` trains with)
loo_time_baseline      ``sum_t (G_it - b_t) grad log pi_t``: b_t the mean reward-to-go at step t
                       of the *other* episodes of the batch still running at t
====================== ====================================================================

The value baseline is not studied: it needs a critic trained alongside, which the snapshots'
trainer does not have.

Statistics (docs/contracts.md, "Gradient study"): per (snapshot, estimator, K) the total
variance ``tr Cov[batch gradient]`` with a percentile bootstrap CI over batches (one explicit
Generator), the per-tensor variance, the mean gradient's distance and cosine to the reference;
per pair of estimators on the same batches, the variance ratio with a *paired* bootstrap CI
(the same resampled batches for both) and a test of equal mean gradients (see
:func:`mean_difference_test`).
"""

from __future__ import annotations

import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.func import vjp, vmap

from pgbench import estimators as est
from pgbench import stats
from pgbench.dispatch import configure_torch
from pgbench.errors import UserError
from pgbench.policies import PolicySpec, log_prob_and_entropy
from pgbench.rollout import Batch

#: name -> one line of description (the order is the order of the tables). Names say where the
#: baseline comes from: ``loo_`` the batch's other episodes (leave-one-out), ``ema_`` the
#: trainer's running mean of past batches (what variants ``baseline`` and ``rtg_baseline`` train
#: with), ``fixed_`` the independent reference pool, ``batch_mean_`` the batch itself.
ESTIMATORS: dict[str, str] = {
    "vanilla": "whole-episode return R(tau), no baseline",
    "batch_mean_baseline": "R(tau) minus the batch's mean return, the episode itself included "
                           "(the slides' b; biased by the factor 1 - 1/K)",
    "loo_baseline": "R(tau) minus the mean return of the batch's other episodes (leave-one-out)",
    "ema_baseline": "R(tau) minus the running mean of past batches' mean returns (the trainer's "
                    "ema baseline, variant baseline)",
    "fixed_baseline": "R(tau) minus the mean return of the independent reference pool",
    "loo_optimal_baseline": "R(tau) minus Levine's E[|g|^2 R] / E[|g|^2] from the batch's other "
                            "episodes (leave-one-out)",
    "fixed_optimal_baseline": "R(tau) minus Levine's E[|g|^2 R] / E[|g|^2] from the reference pool",
    "rtg": "reward-to-go (causality), no baseline",
    "rtg_loo_baseline": "reward-to-go minus the other episodes' mean reward-to-go (leave-one-out)",
    "rtg_ema_baseline": "reward-to-go minus the running mean of past batches' mean reward-to-go "
                        "(the trainer's ema baseline, variant rtg_baseline)",
    "loo_time_baseline": "reward-to-go minus the other episodes' mean reward-to-go at the same step",
}
#: Estimators whose baseline comes from the reference pool (so they cannot be the reference).
FIXED = ("fixed_baseline", "fixed_optimal_baseline")
#: Running-mean baselines: estimator -> the per-episode quantity the running mean averages.
#: Their state is warmed up on the reference pool's batches, then runs through the pool's batches
#: in order (each batch uses the state of the batches before it, as in training).
EMA = {"ema_baseline": "ret", "rtg_ema_baseline": "rtg_mean"}
#: Estimators whose expectation is the policy gradient.
UNBIASED = tuple(e for e in ESTIMATORS if e != "batch_mean_baseline")

#: Paired comparisons written to gradstudy_pairs.parquet: (a, b), ratios are a / b.
PAIRS: tuple[tuple[str, str], ...] = (
    ("loo_baseline", "vanilla"),          # the slides' baseline claims (unbiased, less variance)
    ("batch_mean_baseline", "loo_baseline"),  # the 1/K bias of including the episode in its baseline
    ("ema_baseline", "vanilla"),          # the baseline as trained (any K, K = 1 included)
    ("fixed_baseline", "vanilla"),
    ("loo_baseline", "fixed_baseline"),   # the price of estimating b from the batch
    ("loo_optimal_baseline", "loo_baseline"),  # Levine's baseline in practice (estimated per batch)
    ("fixed_optimal_baseline", "fixed_baseline"),  # ... and as derived (known constants)
    ("rtg", "vanilla"),                   # causality
    ("rtg_loo_baseline", "rtg"),
    ("rtg_loo_baseline", "vanilla"),      # the slides' two modifications together
    ("rtg_ema_baseline", "rtg"),          # ... as trained
    ("rtg_ema_baseline", "vanilla"),
    ("loo_time_baseline", "rtg_loo_baseline"),
)

DEFAULT_EPISODES = (1, 4, 16)
DEFAULT_SNAPSHOTS = ("init", "q25", "q75")
DEFAULT_VARIANT = "rtg_baseline"
#: Training overrides of the snapshot run (before --set): 8 episodes per update learns steadily
#: on CartPole and InvertedPendulum alike (one episode per update collapses on the latter).
DEFAULT_TRAIN_SETTINGS = {"episodes_per_update": 8, "total_steps": 300_000}
#: Sub-envs per collection round: CartPole's native vector env steps them all in numpy; a
#: SyncVectorEnv steps every sub-env until the round's longest episode ends, so rounds stay small.
NATIVE_ENVS_PER_ROUND = 1024
SYNC_ENVS_PER_ROUND = 16
#: Time steps (episodes x padded length) per torch.func call: bounds the activations' memory,
#: and chunks this small of length-sorted episodes waste little on padding (measured on
#: 64 CartPole episodes of ~400 steps, 2^13 beat 2^17 and 2^10).
ROWS_PER_CALL = 1 << 13


# --------------------------------------------------------------------------- per-episode gradients
def parameter_layout(params: dict[str, torch.Tensor]) -> dict[str, slice]:
    """Where each parameter tensor sits in the flat gradient ``(P,)``: name -> slice.

    The order is sorted by name, as :func:`pgbench.gradients.flatten_grads`; ``params`` are
    stacked ``(S, ...)`` and the seed axis is not part of P.
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
        # A Python loop over the few weightings: vmap over the pull-back itself is ~3x slower.
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


# --------------------------------------------------------------------------- collection
def collect_pool(collector, params, n_episodes: int) -> Batch:
    """``n_episodes`` episodes of one seed's policy, ``S = 1``, time trimmed to the longest.

    ``collector`` is a :class:`pgbench.rollout.Collector` for one seed: rounds of
    ``envs_per_seed`` episodes are collected until there are enough, and the surplus of the last
    round is dropped by position (never by content, which would bias the pool). The collector's
    generators make the episodes reproducible.
    """
    rounds, have = [], 0
    while have < n_episodes:
        batch = collector.collect_round(params)
        rounds.append(batch)
        have += batch.lengths.shape[1]
    pool = Batch.concat(rounds)
    return trim(pool, n_episodes)


def trim(batch: Batch, n_episodes: int) -> Batch:
    """The first ``n_episodes`` episodes of a one-seed batch, padded only to the longest of them.

    Padding carries zero weight, so trimming changes no gradient; it only saves work.
    """
    T = max(1, int(batch.lengths[:, :n_episodes].max()))
    e = slice(0, n_episodes)
    return Batch(
        obs=batch.obs[:, e, :T].contiguous(), actions=batch.actions[:, e, :T].contiguous(),
        rewards=batch.rewards[:, e, :T].copy(), mask=batch.mask[:, e, :T].copy(),
        terminated=batch.terminated[:, e].copy(), truncated=batch.truncated[:, e].copy(),
        lengths=batch.lengths[:, e].copy(), final_obs=batch.final_obs[:, e].contiguous(),
        dropout_masks=(None if batch.dropout_masks is None
                       else [m[:, e, :T].contiguous() for m in batch.dropout_masks]),
    )


# --------------------------------------------------------------------------- estimators
@dataclass
class EpisodeTerms:
    """What every estimator is built from, for the N episodes of one pool (float64, NumPy).

    score ``(N, P)``: ``g_i``; rtg_grad ``(N, P)``: ``sum_t G_it grad log pi_t``; ret ``(N,)``:
    ``R_i``; rtg_mean ``(N,)``: episode i's mean reward-to-go over its steps; time_grad: K ->
    ``(N, P)``, ``sum_t b_t grad log pi_t`` with b_t episode i's leave-one-out time baseline in
    its batch of K (pool split in order into batches of K).
    """

    score: np.ndarray
    rtg_grad: np.ndarray
    ret: np.ndarray
    rtg_mean: np.ndarray
    time_grad: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        return int(self.ret.shape[0])


def leave_one_out_time_baseline(psi, mask, k: int) -> np.ndarray:
    """For episodes split in order into batches of ``k``: episode i's time baseline from the
    other episodes of its batch, ``b_it = mean_{j != i, j running at t} psi_jt`` (0 where none).

    Shapes: psi, mask ``(N, T)`` with N a multiple of k. Returns ``(N, T)``, zero where episode i
    is not running. Uses :func:`pgbench.estimators.time_baseline` on each episode's batch with the
    episode itself masked out.
    """
    N, T = psi.shape
    nb = N // k
    psi_b = np.asarray(psi, dtype=np.float64).reshape(nb, 1, k, T)
    others = mask.reshape(nb, 1, k, T) & ~np.eye(k, dtype=bool)[None, :, :, None]  # (nb, i, j, T)
    b = est.time_baseline(np.broadcast_to(psi_b, others.shape), others)  # (nb, k, T)
    return np.where(mask.reshape(nb, k, T), b, 0.0).reshape(N, T)


def episode_terms(params, spec: PolicySpec, pool: Batch, ks, gamma: float = 1.0,
                  with_time_baseline: bool = True) -> EpisodeTerms:
    """Compute :class:`EpisodeTerms` of a one-seed pool in one torch.func call per chunk.

    Weightings per episode: the mask (score), the reward-to-go, and per K > 1 the leave-one-out
    time baseline (K = 1 has no other episode: its time baseline is 0). Truncated episodes are
    not bootstrapped: the objective is the expected return of the time-limited episode, which
    every unbiased estimator here estimates.
    """
    mask = pool.mask[0]
    rewards = pool.rewards[0]
    rtg = est.reward_to_go(rewards, mask, gamma)
    weights = [mask.astype(np.float64), rtg]
    time_ks = [k for k in sorted(set(ks)) if k > 1] if with_time_baseline else []
    for k in time_ks:  # episodes past the last full batch of k get no weight (they are unused)
        n = (mask.shape[0] // k) * k
        b = np.zeros_like(rtg)
        b[:n] = leave_one_out_time_baseline(rtg[:n], mask[:n], k)
        weights.append(b)
    w = torch.from_numpy(np.stack(weights, axis=1))  # (N, W, T)
    masks = None if pool.dropout_masks is None else [m[0] for m in pool.dropout_masks]
    grads = weighted_episode_grads(params, spec, pool.obs[0], pool.actions[0], w, masks)
    grads = grads.double().numpy()
    P = grads.shape[-1]
    time_grad = {k: grads[:, 2 + n] for n, k in enumerate(time_ks)}
    if with_time_baseline and 1 in ks:
        time_grad[1] = np.zeros((grads.shape[0], P))
    return EpisodeTerms(
        score=grads[:, 0], rtg_grad=grads[:, 1],
        ret=est.episode_means(est.total_return(rewards, mask, gamma), mask),
        rtg_mean=est.episode_means(rtg, mask), time_grad=time_grad,
    )


def leave_one_out_mean(x: np.ndarray) -> np.ndarray:
    """``out[..., i] = mean_{j != i} x[..., j]`` over the last axis; 0 when it has one entry.

    >>> leave_one_out_mean(np.array([1.0, 2.0, 6.0]))
    array([4. , 3.5, 1.5])
    """
    k = x.shape[-1]
    if k == 1:
        return np.zeros_like(x, dtype=np.float64)
    return (x.sum(-1, keepdims=True) - x) / (k - 1)


def leave_one_out_optimal_baseline(ret: np.ndarray, score_sqnorm: np.ndarray) -> np.ndarray:
    """Levine's constant ``sum_{j != i} |g_j|^2 R_j / sum_{j != i} |g_j|^2`` per episode i.

    Shapes ``(..., K) -> (..., K)``; 0 when there is no other episode (K = 1). Calls
    :func:`pgbench.estimators.optimal_constant_baseline` with episode i marked empty (NaN).
    """
    k = ret.shape[-1]
    weights = np.broadcast_to(ret[..., None, :], ret.shape + (k,)).copy()
    weights[..., np.arange(k), np.arange(k)] = np.nan
    sq = np.broadcast_to(score_sqnorm[..., None, :], weights.shape)
    return est.optimal_constant_baseline(weights, sq)


def batch_gradients(terms: EpisodeTerms, k: int, estimators,
                    constants: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Each estimator's batch gradient on the pool split in order into batches of ``k``.

    Returns name -> ``(N // k, P)``: row b is the mean over batch b's k episodes of the
    estimator's per-episode term (module docstring). Episodes past the last full batch are unused.
    ``constants`` holds the baselines of the ``fixed_*`` estimators (see :func:`fixed_baselines`)
    and, for the running-mean ones, ``ema_weight`` and ``ema_start[k][name]``, the running mean's
    state before the first batch (see :func:`ema_starts`).
    """
    nb = terms.n_episodes // k
    n = nb * k
    P = terms.score.shape[1]
    g = terms.score[:n].reshape(nb, k, P)
    R = terms.ret[:n].reshape(nb, k)

    def weighted(coef):  # (nb, k) -> mean_k coef * g: (nb, P)
        return np.einsum("bk,bkp->bp", coef, g) / k

    out = {}
    for name in estimators:
        if name == "vanilla":
            out[name] = weighted(R)
        elif name == "batch_mean_baseline":
            out[name] = weighted(R - R.mean(-1, keepdims=True))
        elif name == "loo_baseline":
            out[name] = weighted(R - leave_one_out_mean(R))
        elif name in FIXED:
            out[name] = weighted(R - constants[name])
        elif name == "ema_baseline":
            b, _ = ema_batch_baselines(R, constants["ema_start"][k][name], constants["ema_weight"])
            out[name] = weighted(R - b[:, None])
        elif name == "loo_optimal_baseline":
            b = leave_one_out_optimal_baseline(R, (g ** 2).sum(-1))
            out[name] = weighted(R - b)
        elif name == "rtg":
            out[name] = terms.rtg_grad[:n].reshape(nb, k, P).mean(1)
        elif name == "rtg_loo_baseline":
            b = leave_one_out_mean(terms.rtg_mean[:n].reshape(nb, k))
            out[name] = terms.rtg_grad[:n].reshape(nb, k, P).mean(1) - weighted(b)
        elif name == "rtg_ema_baseline":
            b, _ = ema_batch_baselines(terms.rtg_mean[:n].reshape(nb, k),
                                    constants["ema_start"][k][name], constants["ema_weight"])
            out[name] = (terms.rtg_grad[:n].reshape(nb, k, P).mean(1)
                         - weighted(np.repeat(b[:, None], k, axis=1)))
        elif name == "loo_time_baseline":
            corr = terms.time_grad[k][:n].reshape(nb, k, P)
            out[name] = (terms.rtg_grad[:n].reshape(nb, k, P) - corr).mean(1)
        else:
            raise KeyError(name)
    return out


def ema_batch_baselines(psi: np.ndarray, start: float, weight: float) -> tuple[np.ndarray, float]:
    """The trainer's running-mean baseline of each batch, in order, and the final state.

    ``psi (nb, k)``: per-episode values (return or mean reward-to-go); ``start``: the state before
    batch 0 (NaN: none yet; then, as in :func:`pgbench.estimators.ema_baseline`, batch 0's
    baseline is 0 and the state starts at its mean). Batch b's baseline is the state after
    batches < b: ``state_b = (1 - w) state_{b-1} + w mean(psi_b)``, one linear filter
    (tests/test_gradstudy.py checks it against the trainer's function step by step).
    Returns ``((nb,), state after the last batch)``.
    """
    from scipy.signal import lfilter

    means = np.asarray(psi, dtype=np.float64).mean(-1)
    if means.size == 0:
        return np.empty(0), float(start)
    head = np.isnan(start)
    first = means[0] if head else (1 - weight) * start + weight * means[0]
    states = np.concatenate([[first], lfilter([weight], [1.0, weight - 1.0], means[1:],
                                              zi=[(1 - weight) * first])[0]])
    baselines = np.concatenate([[0.0 if head else start], states[:-1]])
    return baselines, float(states[-1])


def ema_starts(reference: EpisodeTerms, ks, weight: float) -> dict[int, dict[str, float]]:
    """The running means' state after the reference pool's batches of k, for each k: a warm-up
    on independent episodes, so the pool's batches see a running mean near its steady state
    (after n batches the first one's weight is ``(1 - weight)^n``)."""
    out = {}
    for k in sorted(set(ks)):
        nb = reference.n_episodes // k
        out[k] = {name: ema_batch_baselines(getattr(reference, field_name)[:nb * k].reshape(nb, k),
                                            np.nan, weight)[1]
                  for name, field_name in EMA.items()}
    return out


def fixed_baselines(reference: EpisodeTerms) -> dict[str, float]:
    """The constants of the ``fixed_*`` estimators, from the reference pool's episodes.

    The reference pool is independent of the pool the estimators are measured on, so for that
    pool these are constants known in advance, as in the textbook derivations.
    """
    sq = (reference.score ** 2).sum(-1)
    return {"fixed_baseline": float(reference.ret.mean()),
            "fixed_optimal_baseline": float(est.optimal_constant_baseline(reference.ret, sq))}


# --------------------------------------------------------------------------- statistics
def total_variance(x: np.ndarray) -> float:
    """``tr Cov[x]``: the sum over coordinates of the sample variance (ddof 1) of rows ``(n, P)``."""
    return float(x.var(axis=0, ddof=1).sum())


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n rows is drawn in each bootstrap resample, ``(n_resamples, n)``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def resampled_moments(x: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(B, P)`` and total variance ``(B,)`` of rows ``x (n, P)`` in each resample.

    With counts c (rows of ``counts (B, n)``): ``mean* = c x / n`` and
    ``tr S* = (c |x|^2 - n |mean*|^2) / (n - 1)``, one matrix product for all resamples.
    """
    n = x.shape[0]
    means = counts @ x / n
    sq = counts @ np.einsum("np,np->n", x, x)
    traces = (sq - n * np.einsum("bp,bp->b", means, means)) / (n - 1)
    return means, np.maximum(traces, 0.0)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """:func:`pgbench.stats.percentile_interval` of the values that are not NaN (inf is kept)."""
    values = np.asarray(values, dtype=float)
    return stats.percentile_interval(values[~np.isnan(values)], confidence)


@dataclass(frozen=True)
class MeanDifference:
    """Result of :func:`mean_difference_test` (norms in gradient units)."""

    norm: float  # ||mean(d)||
    null_high: float  # the `confidence` quantile of ||mean(d)|| under equal means
    pvalue: float
    sq_unbiased: float  # ||mean(d)||^2 - tr S_d / n: unbiased for ||E d||^2
    sq_unbiased_resampled: np.ndarray  # (B,) the same in each bootstrap resample


def mean_difference_test(d: np.ndarray, counts: np.ndarray, confidence: float) -> MeanDifference:
    """Test ``E[d] = 0`` for paired batch differences ``d (n, P)`` (estimator a minus b).

    P (hundreds of parameters) exceeds n (batches), so Hotelling's T^2 (which inverts the
    sample covariance) is not defined. The statistic is the squared norm ``T = |mean(d)|^2``
    (Bai and Saranadasa's high-dimensional two-sample idea, paired); its null distribution is
    bootstrapped by resampling the *centred* rows ``d - mean(d)``, which obey the null while
    keeping d's covariance (rescaled by ``n / (n - 1)``). ``pvalue = (1 + #{T* >= T}) / (1 + B)``;
    ``null_high`` is the ``confidence`` quantile of ``sqrt(T*)``, the largest ``|mean(d)|`` that
    noise alone explains. Identical estimators (d = 0) give p = 1. ``sq_unbiased`` (and its value
    in each resample ``counts`` draws, for a CI) estimates ``|E d|^2`` without the noise's share.

    Calibration at the 5% level (true nulls): 1.5% rejected on Gaussian rows (32 batches, 40
    coordinates; tests/test_gradstudy.py), 6-7% on resamples of real InvertedPendulum
    differences (14 and 64 batches, 770 parameters, heavy-tailed): close, slightly liberal there.
    """
    n = d.shape[0]
    mean = d.mean(0)
    t_obs = float(mean @ mean)
    means, traces = resampled_moments(d, counts)
    # The mean of resampled centred rows is mean* - mean. Resampling spreads rows with the
    # plug-in covariance (divisor n); n / (n - 1) restores the unbiased one.
    centred = means - mean
    t_null = np.einsum("bp,bp->b", centred, centred) * (n / (n - 1))
    scale = max(t_obs, float(t_null.max(initial=0.0)))
    if scale == 0.0:
        return MeanDifference(0.0, 0.0, 1.0, 0.0, np.zeros(counts.shape[0]))
    # Ties at rounding level count as ">=" (an exact zero difference is not significant).
    exceed = int(np.sum(t_null >= t_obs * (1 - 1e-12)))
    pvalue = (1 + exceed) / (1 + len(t_null))
    null_high = float(np.sqrt(np.quantile(t_null, confidence, method="higher")))
    sq_unbiased = t_obs - total_variance(d) / n
    sq_resampled = np.einsum("bp,bp->b", means, means) - traces / n
    return MeanDifference(float(np.sqrt(t_obs)), null_high, pvalue, float(sq_unbiased), sq_resampled)


@dataclass(frozen=True)
class Reference:
    """What the independent reference pool provides: the reference gradient, the grand mean of
    ``batches (R, P)`` (one estimator's batch gradients there), and the fixed baselines."""

    batches: np.ndarray
    estimator: str
    constants: dict

    @staticmethod
    def from_terms(terms: EpisodeTerms, k: int, estimator: str, ks=(),
                   ema_weight: float = 0.05) -> "Reference":
        """The reference of a pool split into batches of ``k`` (``estimator`` neither a fixed nor
        a running-mean one), with the running means warmed up for every K of ``ks``."""
        batches = batch_gradients(terms, k, [estimator])[estimator]
        constants = {**fixed_baselines(terms), "ema_weight": ema_weight,
                     "ema_start": ema_starts(terms, ks, ema_weight)}
        return Reference(batches, estimator, constants)

    @property
    def mean(self) -> np.ndarray:
        return self.batches.mean(0)

    @property
    def noise_sq(self) -> float:
        """``tr Cov[mean]``: the expected squared distance of the mean from the true gradient."""
        return total_variance(self.batches) / self.batches.shape[0]


def study_snapshot(terms: EpisodeTerms, reference: Reference, ks, estimators,
                   layout: dict[str, slice], rng: np.random.Generator, n_resamples: int = 1000,
                   confidence: float = 0.95):
    """All statistics of one snapshot: ``(rows, layer_rows, pair_rows)``, lists of dicts whose
    keys are the contract's columns without env and snapshot (docs/contracts.md).

    For each K, one set of bootstrap counts over that K's batches is shared by every estimator
    and pair (the paired bootstrap); the reference pool is resampled independently of the pool.
    """
    ref_mean = reference.mean
    ref_norm = float(np.linalg.norm(ref_mean))
    ref_counts = resample_counts(reference.batches.shape[0], n_resamples, rng)
    ref_means, ref_traces = resampled_moments(reference.batches, ref_counts)
    n_ref = reference.batches.shape[0]
    # ||true gradient||^2, unbiased: the squared norm of the mean minus its noise
    ref_sq = ref_norm ** 2 - reference.noise_sq
    ref_sq_resampled = np.einsum("bp,bp->b", ref_means, ref_means) - ref_traces / n_ref

    rows, layer_rows, pair_rows = [], [], []
    for k in sorted(set(ks)):
        # With one episode the slides' batch mean is the episode's own return: the estimator is
        # identically 0, a degenerate row (a zero variance on the report's log axes) left out.
        names = [e for e in estimators if not (e == "batch_mean_baseline" and k == 1)]
        grads = batch_gradients(terms, k, names, reference.constants)
        nb = next(iter(grads.values())).shape[0]
        if nb < 2:
            raise UserError(f"only {nb} batch of {k} episodes in a pool of {terms.n_episodes}; "
                            "accepted: at least 2 batches per K (raise --batches)")
        counts = resample_counts(nb, n_resamples, rng)
        boot_traces = {}
        for name, x in grads.items():
            mean = x.mean(0)
            var = x.var(axis=0, ddof=1)
            boot_means, boot_traces[name] = resampled_moments(x, counts)
            lo, hi = percentile_interval(boot_traces[name], confidence)
            bias = float(np.linalg.norm(mean - ref_mean))
            norm = float(np.linalg.norm(mean))
            noise_sq = float(var.sum() / nb + reference.noise_sq)
            shares = bias_and_projection(mean, var.sum() / nb, ref_mean, reference.noise_sq, ref_sq)
            boot = bias_and_projection(boot_means, boot_traces[name] / nb, ref_means,
                                       ref_traces / n_ref, ref_sq_resampled)
            rows.append({
                "estimator": name, "episodes_per_batch": k, "n_batches": nb,
                "total_variance": float(var.sum()), "total_variance_ci_low": lo,
                "total_variance_ci_high": hi, "bias_norm": bias,
                "relative_bias_corrected": float(shares[0]),
                "relative_bias_corrected_ci_low": percentile_interval(boot[0], confidence)[0],
                "relative_bias_corrected_ci_high": percentile_interval(boot[0], confidence)[1],
                "bias_over_noise": bias / np.sqrt(noise_sq) if noise_sq > 0 else np.nan,
                "projection": float(shares[1]),
                "projection_ci_low": percentile_interval(boot[1], confidence)[0],
                "projection_ci_high": percentile_interval(boot[1], confidence)[1],
                "cosine_to_reference": (float(mean @ ref_mean) / (norm * ref_norm)
                                        if norm > 0 and ref_norm > 0 else np.nan),
                "mean_grad_norm": norm,
                "bias_noise_norm": float(np.sqrt(noise_sq)),
                "reference_norm": ref_norm,
            })
            for layer, sl in layout.items():
                layer_rows.append({"estimator": name, "episodes_per_batch": k, "layer": layer,
                                   "variance": float(var[sl].sum())})
        for a, b in PAIRS:
            if a not in grads or b not in grads:
                continue
            va, vb = rows_variance(rows, a, k), rows_variance(rows, b, k)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = boot_traces[a] / boot_traces[b]
            lo, hi = percentile_interval(ratios, confidence)
            test = mean_difference_test(grads[a] - grads[b], counts, confidence)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.sqrt(np.maximum(test.sq_unbiased_resampled, 0.0)
                              / np.where(ref_sq_resampled > 0, ref_sq_resampled, np.nan))
            rel = np.where(np.isnan(rel), np.inf, rel)
            rel_lo, rel_hi = percentile_interval(rel, confidence)
            pair_rows.append({
                "episodes_per_batch": k, "estimator_a": a, "estimator_b": b, "n_batches": nb,
                "variance_ratio": va / vb if vb > 0 else np.nan,
                "variance_ratio_ci_low": lo, "variance_ratio_ci_high": hi,
                "mean_diff_norm": test.norm, "mean_diff_ci_high": test.null_high,
                "mean_diff_pvalue": test.pvalue,
                "mean_diff_relative": (float(np.sqrt(max(test.sq_unbiased, 0.0) / ref_sq))
                                       if ref_sq > 0 else np.nan),
                "mean_diff_relative_ci_low": rel_lo, "mean_diff_relative_ci_high": rel_hi,
            })
    return rows, layer_rows, pair_rows


def bias_and_projection(mean, mean_noise_sq, ref, ref_noise_sq, ref_sq):
    """Noise-corrected relative bias and projection of a mean gradient on the reference.

    ``relative bias = sqrt(max(0, |mean - ref|^2 - noise)) / sqrt(|grad|^2)``: the squared
    distance minus what the two means' noise adds to it in expectation (``mean_noise_sq +
    ref_noise_sq``, each ``tr Cov / n``), over the unbiased ``|grad|^2 = ref_sq``.
    ``projection = mean . ref / ref_sq``: the share of the gradient the estimator's mean points
    along (1 unbiased, ``1 - 1/K`` for the slides' batch mean); numerator and denominator are
    unbiased as the pools are independent. Works row-wise on bootstrap resamples: mean, ref
    ``(..., P)``, the rest ``(...)``. Returns ``(relative_bias, projection)`` (NaN where
    ``ref_sq <= 0``: the reference cannot tell the gradient from 0).
    """
    mean, ref = np.asarray(mean), np.asarray(ref)
    ref_sq = np.asarray(ref_sq, dtype=float)
    dist_sq = ((mean - ref) ** 2).sum(-1) - mean_noise_sq - ref_noise_sq
    valid = ref_sq > 0
    safe = np.where(valid, ref_sq, 1.0)
    bias = np.where(valid, np.sqrt(np.maximum(dist_sq, 0.0) / safe), np.nan)
    projection = np.where(valid, (mean * ref).sum(-1) / safe, np.nan)
    return bias, projection


def rows_variance(rows: list[dict], estimator: str, k: int) -> float:
    return next(r["total_variance"] for r in rows
                if r["estimator"] == estimator and r["episodes_per_batch"] == k)


# --------------------------------------------------------------------------- snapshots
@dataclass(frozen=True)
class Snapshot:
    """Policy parameters frozen at one point of the training run, and where that point was."""

    name: str
    params: dict[str, torch.Tensor]  # stacked, one seed: (1, ...)
    update: int  # updates done before the snapshot
    env_steps: int
    running_reward: float


class _AllSnapshotsTaken(Exception):
    """Raised from the trainer's progress callback to end training early."""


def parse_snapshots(text: str, threshold: float | None) -> dict[str, float | None]:
    """``"init,q25,q75"`` -> ``{"init": None, "q25": 0.25, "q75": 0.75}`` (fraction of threshold).

    ``qNN`` (NN in 1..99) is the first update after which the running reward reaches NN% of the
    env's reward threshold. UserError on anything else, or on ``qNN`` for an env without one.
    """
    out: dict[str, float | None] = {}
    for name in (s.strip() for s in text.split(",")):
        if name == "init":
            out[name] = None
            continue
        digits = name[1:]
        if not (name.startswith("q") and digits.isdigit() and 1 <= int(digits) <= 99
                and digits == str(int(digits))):
            raise UserError(f"unknown snapshot {name!r}; accepted: init, or qNN with NN in 1..99 "
                            "(running reward first at NN% of the reward threshold), e.g. init,q25,q75")
        if threshold is None:
            raise UserError(f"snapshot {name!r} needs the env's reward threshold, which it does not "
                            "have; accepted: --snapshots init")
        out[name] = int(digits) / 100
    if len(out) != len(text.split(",")):
        raise UserError(f"repeated snapshot in --snapshots {text!r}; give each once")
    return out


def _frozen(params) -> dict[str, torch.Tensor]:
    """A copy of the trainer's parameters that its later updates do not touch."""
    return {k: v.detach().clone() for k, v in params.items()}


def take_snapshots(cfg, seed: int, wanted: dict[str, float | None]) -> tuple[dict[str, Snapshot], dict]:
    """Train ``cfg`` with pgbench's trainer and freeze the policy at each wanted snapshot.

    Training stops as soon as every snapshot is taken (or at ``cfg.total_steps``). Returns the
    snapshots reached, in training order, and what the run did (for gradstudy.json).
    """
    from pgbench.train import GroupTrainer

    trainer = GroupTrainer(cfg, [seed])
    taken = {}
    if "init" in wanted:
        taken["init"] = Snapshot("init", _frozen(trainer.params), 0, 0, trainer.logs[0].running_reward)
    pending = sorted((q, name) for name, q in wanted.items() if q is not None)

    def progress(t) -> None:
        log = t.logs[0]
        while pending and log.running_reward >= pending[0][0] * t.threshold:
            _, name = pending.pop(0)
            taken[name] = Snapshot(name, _frozen(t.params), log.updates, log.env_steps,
                                   log.running_reward)
        if not pending:
            raise _AllSnapshotsTaken

    if pending:
        try:
            trainer.run(progress=progress)  # closes its vector env however it ends
        except _AllSnapshotsTaken:
            pass
    log = trainer.logs[0]
    info = {"updates": log.updates, "env_steps": log.env_steps, "episodes": log.episodes,
            "running_reward": log.running_reward, "threshold": trainer.threshold,
            "missing": [name for _, name in pending]}
    return taken, info


# --------------------------------------------------------------------------- one snapshot
def snapshot_streams(seed: int, snapshot: str) -> dict[str, np.random.SeedSequence]:
    """Independent streams of one snapshot's study, from the seed and the snapshot's *name*
    (not its position), so adding a snapshot changes no other snapshot's numbers."""
    root = np.random.SeedSequence([int(seed), 0x67726164, zlib.crc32(snapshot.encode())])
    names = ("pilot_env", "pilot_noise", "pool_env", "pool_noise", "ref_env", "ref_noise", "bootstrap")
    return dict(zip(names, root.spawn(len(names))))


def _collector(env_id, spec, streams, prefix, envs_per_round):
    from pgbench.rollout import Collector

    return Collector(env_id, spec, envs_per_round,
                          {"env": [streams[f"{prefix}_env"]], "noise": [streams[f"{prefix}_noise"]]})


def _collect(env_id, spec, params, streams, prefix, n_episodes, envs_per_round) -> Batch:
    collector = _collector(env_id, spec, streams, prefix, min(envs_per_round, n_episodes))
    try:
        return collect_pool(collector, params, n_episodes)
    finally:
        collector.close()


def pool_sizes(mean_length: float, batches: int, reference_batches: int, k_max: int,
               max_steps: int) -> tuple[int, int]:
    """Batches (of ``k_max`` episodes) in the pool and in the reference pool.

    ``max_steps`` caps the expected env steps of both pools together (0: no cap); when it binds,
    both shrink in proportion, never below 2 batches. The expected length comes from a separate
    pilot, so the pool's size does not depend on its own episodes (a size chosen from them would
    be a stopping rule, which biases means at O(1/N)).

    >>> pool_sizes(100.0, 64, 128, 16, 0), pool_sizes(100.0, 64, 128, 16, 96_000)
    ((64, 128), (20, 40))
    """
    if max_steps <= 0:
        return batches, reference_batches
    affordable = max_steps / (max(mean_length, 1.0) * k_max)  # batches of both pools together
    scale = min(1.0, affordable / (batches + reference_batches))
    return (max(2, int(batches * scale)), max(2, int(reference_batches * scale)))


def study_one_snapshot(env_id: str, spec: PolicySpec, snap: Snapshot, settings: "StudySettings",
                       seed: int):
    """Collect the pilot, pool and reference pool at ``snap`` and compute every statistic.

    Returns ``(rows, layer_rows, pair_rows, info)``.
    """
    from pgbench.envs import check_env_id

    streams = snapshot_streams(seed, snap.name)
    # make_vector_env uses the env's native vector env when it has one (as here), else a Sync one
    native = check_env_id(env_id).vector_entry_point is not None
    per_round = NATIVE_ENVS_PER_ROUND if native else SYNC_ENVS_PER_ROUND
    k_max = max(settings.episodes)
    t0 = time.perf_counter()
    pilot = _collect(env_id, spec, snap.params, streams, "pilot", PILOT_EPISODES, per_round)
    mean_length = float(pilot.lengths.mean())
    m, r = pool_sizes(mean_length, settings.batches, settings.reference_batches, k_max,
                      settings.max_steps)
    pool = _collect(env_id, spec, snap.params, streams, "pool", m * k_max, per_round)
    reference_pool = _collect(env_id, spec, snap.params, streams, "ref", r * k_max, per_round)
    t1 = time.perf_counter()
    terms = episode_terms(snap.params, spec, pool, settings.episodes, settings.gamma,
                          with_time_baseline="loo_time_baseline" in settings.estimators)
    ref_terms = episode_terms(snap.params, spec, reference_pool, (k_max,), settings.gamma,
                              with_time_baseline=settings.reference_estimator == "loo_time_baseline")
    reference = Reference.from_terms(ref_terms, k_max, settings.reference_estimator,
                                     settings.episodes, settings.ema_weight)
    t2 = time.perf_counter()
    rng = np.random.default_rng(streams["bootstrap"])
    rows, layer_rows, pair_rows = study_snapshot(
        terms, reference, settings.episodes, settings.estimators, parameter_layout(snap.params),
        rng, settings.n_resamples, settings.confidence)
    t3 = time.perf_counter()
    extra = {"snapshot_env_steps": snap.env_steps, "snapshot_running_reward": snap.running_reward,
             "mean_episode_length": float(pool.lengths.mean()),
             "reference_estimator": settings.reference_estimator,
             "confidence": settings.confidence}
    rows = [{**r, **extra} for r in rows]
    pair_rows = [{**r, "confidence": settings.confidence} for r in pair_rows]
    info = {"update": snap.update, "env_steps": snap.env_steps,
            "running_reward": snap.running_reward, "pilot_mean_length": mean_length,
            "pool_episodes": int(m * k_max), "pool_env_steps": int(pool.lengths.sum()),
            "reference_episodes": int(r * k_max),
            "reference_env_steps": int(reference_pool.lengths.sum()),
            "seconds": {"collect": round(t1 - t0, 3), "gradients": round(t2 - t1, 3),
                        "statistics": round(t3 - t2, 3)}}
    return rows, layer_rows, pair_rows, info


# --------------------------------------------------------------------------- tables
ROW_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "estimator": "str", "episodes_per_batch": "int64",
    "n_batches": "int64", "total_variance": "float64", "total_variance_ci_low": "float64",
    "total_variance_ci_high": "float64", "bias_norm": "float64",
    "relative_bias_corrected": "float64", "relative_bias_corrected_ci_low": "float64",
    "relative_bias_corrected_ci_high": "float64", "bias_over_noise": "float64",
    "projection": "float64", "projection_ci_low": "float64", "projection_ci_high": "float64",
    "cosine_to_reference": "float64", "mean_grad_norm": "float64", "bias_noise_norm": "float64",
    "reference_norm": "float64", "reference_estimator": "str", "snapshot_env_steps": "int64",
    "snapshot_running_reward": "float64", "mean_episode_length": "float64", "confidence": "float64",
    # exact values (pgbench gradstudy --exact on a small MDP; NaN on the Gymnasium envs)
    "exact_projection": "float64", "exact_relative_bias": "float64",
    "exact_total_variance": "float64",
}
LAYER_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "estimator": "str", "episodes_per_batch": "int64",
    "layer": "str", "variance": "float64",
}
PAIR_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "episodes_per_batch": "int64", "estimator_a": "str",
    "estimator_b": "str", "n_batches": "int64", "variance_ratio": "float64",
    "variance_ratio_ci_low": "float64", "variance_ratio_ci_high": "float64",
    "mean_diff_norm": "float64", "mean_diff_ci_high": "float64", "mean_diff_pvalue": "float64",
    "mean_diff_relative": "float64", "mean_diff_relative_ci_low": "float64",
    "mean_diff_relative_ci_high": "float64", "confidence": "float64",
    "exact_variance_ratio": "float64", "exact_mean_diff_relative": "float64",
}


def frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Rows as a table with exactly ``columns`` (in that order and with those dtypes)."""
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


# --------------------------------------------------------------------------- command line
PILOT_EPISODES = 16  # episodes that estimate the mean length before the pools are sized


@dataclass(frozen=True)
class StudySettings:
    """What the study measures at each snapshot (training settings are a TrainConfig)."""

    episodes: tuple[int, ...] = DEFAULT_EPISODES
    """Episodes per batch K; the pool has ``batches * max(K)`` episodes, split for each K."""
    batches: int = 64
    """Batches of max(K) episodes in the pool (fewer when --max-steps binds)."""
    reference_batches: int = 64
    """Batches of max(K) episodes in the independent reference pool (fewer when --max-steps binds)."""
    reference_estimator: str = "loo_time_baseline"
    """Estimator whose grand mean over the reference pool is the reference gradient."""
    max_steps: int = 400_000
    """Expected env steps per snapshot, pool and reference together (0: no cap)."""
    estimators: tuple[str, ...] = tuple(ESTIMATORS)
    gamma: float = 1.0
    ema_weight: float = 0.05
    """Weight of the newest batch in the running-mean baselines (the trainer's default)."""
    n_resamples: int = 1000
    confidence: float = 0.95


def configure_parser(parser) -> None:
    d = StudySettings()
    parser.add_argument("--env", required=True,
                        help="Gymnasium env id, e.g. CartPole-v1; with --exact a small MDP of "
                             "pgbench.tinymdp (TwoStateChain)")
    parser.add_argument("--exact", action="store_true",
                        help="exact mode: study a small MDP whose trajectories can all be listed, "
                             "and write each estimator's exact mean and variance beside the "
                             "sampled study's (pgbench/exactstudy.py); --snapshots, --variant, "
                             "--set and --max-steps do not apply")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the training run, the episodes and the bootstrap (default: 0)")
    parser.add_argument("--batches", type=int, default=d.batches, metavar="M",
                        help=f"batches of max(K) episodes per snapshot (default: {d.batches}; "
                             "fewer when --max-steps binds). Smaller K split the same episodes "
                             "into more batches")
    parser.add_argument("--episodes", type=int, nargs="+", default=list(d.episodes), metavar="K",
                        help="episodes per batch, one or more (default: "
                             f"{' '.join(map(str, d.episodes))})")
    parser.add_argument("--reference-batches", type=int, default=d.reference_batches, metavar="R",
                        help="batches of max(K) episodes in the independent reference pool "
                             f"(default: {d.reference_batches}; fewer when --max-steps binds)")
    parser.add_argument("--reference-estimator", default=d.reference_estimator,
                        help="estimator whose mean over the reference pool is the reference "
                             f"gradient (default: {d.reference_estimator}: unbiased, and its "
                             "variance is never far from the lowest; vanilla is the textbook "
                             "choice but needs far more episodes)")
    parser.add_argument("--max-steps", type=int, default=d.max_steps,
                        help="expected env steps per snapshot for both pools together, 0 for no "
                             f"cap (default: {d.max_steps}); M and R shrink in proportion, never "
                             "below 2 batches")
    parser.add_argument("--snapshots", default=",".join(DEFAULT_SNAPSHOTS),
                        help="policies studied: init, and qNN = when the running reward first "
                             "reaches NN%% of the reward threshold (default: init,q25,q75)")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS), metavar="NAME",
                        help=f"estimators to compare (default: all: {', '.join(ESTIMATORS)})")
    parser.add_argument("--variant", default=DEFAULT_VARIANT,
                        help="variant trained to reach the snapshots (default: rtg_baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a training setting, e.g. --set lr=0.003 (defaults here: "
                             + ", ".join(f"{k}={v}" for k, v in DEFAULT_TRAIN_SETTINGS.items()) + ")")
    parser.add_argument("--gamma", type=float, default=d.gamma,
                        help="discount of returns and reward-to-go in the estimators (default: 1, "
                             "so every unbiased estimator estimates the same gradient)")
    parser.add_argument("--ema-weight", type=float, default=d.ema_weight,
                        help="weight of the newest batch in the running-mean baselines "
                             f"ema_baseline and rtg_ema_baseline (default: {d.ema_weight}, the "
                             "trainer's)")
    parser.add_argument("--n-resamples", type=int, default=d.n_resamples,
                        help=f"bootstrap resamples per interval (default: {d.n_resamples})")
    parser.add_argument("--confidence", type=float, default=d.confidence,
                        help=f"confidence level of the intervals (default: {d.confidence})")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory to write gradstudy.parquet, gradstudy_layers.parquet, "
                             "gradstudy_pairs.parquet and gradstudy.json into")


def settings_from_args(args) -> StudySettings:
    """Validated study settings; UserError naming the bad value and what is accepted."""
    from pgbench.errors import choice_error

    for name in args.estimators:
        if name not in ESTIMATORS:
            raise choice_error("estimator", name, ESTIMATORS)
    if len(set(args.estimators)) != len(args.estimators):
        raise UserError(f"repeated estimator in --estimators {' '.join(args.estimators)}")
    usable = [e for e in UNBIASED if e not in FIXED and e not in EMA]
    if args.reference_estimator not in usable:
        raise UserError(f"bad --reference-estimator {args.reference_estimator!r}; accepted (the "
                        f"unbiased estimators that need no reference): {', '.join(usable)}")
    if args.batches < 2:
        raise UserError(f"bad --batches {args.batches}; accepted: an integer >= 2 (a variance "
                        "needs at least two batches)")
    if args.reference_batches < 2:
        raise UserError(f"bad --reference-batches {args.reference_batches}; accepted: an integer >= 2")
    if any(k < 1 for k in args.episodes) or len(set(args.episodes)) != len(args.episodes):
        raise UserError(f"bad --episodes {' '.join(map(str, args.episodes))}; accepted: distinct "
                        "integers >= 1, e.g. 1 4 16")
    if args.max_steps < 0:
        raise UserError(f"bad --max-steps {args.max_steps}; accepted: an integer >= 0 (0: no cap)")
    if not 0.0 < args.ema_weight <= 1.0:
        raise UserError(f"bad --ema-weight {args.ema_weight}; accepted: a number in (0, 1]")
    if not 0.0 <= args.gamma <= 1.0:
        raise UserError(f"bad --gamma {args.gamma}; accepted: a number in [0, 1]")
    if args.n_resamples < 100:
        raise UserError(f"bad --n-resamples {args.n_resamples}; accepted: an integer >= 100")
    if not 0.0 < args.confidence < 1.0:
        raise UserError(f"bad --confidence {args.confidence}; accepted: a number in (0, 1)")
    if args.seed < 0:
        raise UserError(f"bad --seed {args.seed}; accepted: an integer >= 0")
    return StudySettings(
        episodes=tuple(sorted(args.episodes)), batches=args.batches,
        reference_batches=args.reference_batches, reference_estimator=args.reference_estimator,
        max_steps=args.max_steps, estimators=tuple(e for e in ESTIMATORS if e in args.estimators),
        gamma=args.gamma, ema_weight=args.ema_weight, n_resamples=args.n_resamples,
        confidence=args.confidence)


def run(args) -> int:
    if args.exact:
        from pgbench import exactstudy

        return exactstudy.run(args)
    from pgbench.config import make_config, parse_set_options
    from pgbench.envs import check_env_id
    from pgbench.io import write_json_atomic, write_parquet_atomic
    from pgbench.provenance import provenance
    from pgbench.train import policy_spec

    settings = settings_from_args(args)
    env_spec = check_env_id(args.env)
    wanted = parse_snapshots(args.snapshots, env_spec.reward_threshold)
    given = parse_set_options(args.set)
    overrides = {**DEFAULT_TRAIN_SETTINGS, **given}
    if "steps_per_update" in given and "episodes_per_update" not in given:
        overrides["episodes_per_update"] = 0  # a step quota replaces the default episode quota
    overrides.update(env_id=args.env, seed=args.seed)
    cfg = make_config(args.variant, overrides)
    if cfg.engine != "torch":
        raise UserError(f"bad value engine={cfg.engine!r}: the gradient study trains its "
                        "snapshots and takes its gradients with torch; accepted: torch")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")

    configure_torch(torch)  # one thread (tiny networks), the pinned kernels (dispatch.py)
    started = time.perf_counter()
    spec = policy_spec(cfg)
    snapshots, training = take_snapshots(cfg, args.seed, wanted)
    for name in training["missing"]:
        print(f"pgbench gradstudy: warning: the running reward never reached "
              f"{wanted[name]:.0%} of the threshold {training['threshold']} within "
              f"{cfg.total_steps} env steps; snapshot {name!r} skipped (raise --set total_steps=...)",
              file=sys.stderr)
    if not snapshots:
        raise UserError(f"no snapshot of {args.snapshots!r} was reached within {cfg.total_steps} "
                        "env steps of training; raise --set total_steps=... or add init")
    print(f"pgbench gradstudy: {args.env}: trained {training['env_steps']} env steps "
          f"({time.perf_counter() - started:.1f}s); snapshots {', '.join(snapshots)}", file=sys.stderr)

    rows, layer_rows, pair_rows, per_snapshot = [], [], [], {}
    for name, snap in snapshots.items():
        r, lr, pr, info = study_one_snapshot(args.env, spec, snap, settings, args.seed)
        ident = {"env": args.env, "snapshot": name}
        rows += [{**ident, **x} for x in r]
        layer_rows += [{**ident, **x} for x in lr]
        pair_rows += [{**ident, **x} for x in pr]
        per_snapshot[name] = info
        print(f"pgbench gradstudy: {args.env} {name}: {info['pool_episodes']} + "
              f"{info['reference_episodes']} episodes (mean length "
              f"{info['pilot_mean_length']:.0f}), {sum(info['seconds'].values()):.1f}s",
              file=sys.stderr)

    # Tables first, the JSON that describes them last; each file is replaced atomically.
    write_parquet_atomic(out / "gradstudy_layers.parquet", frame(layer_rows, LAYER_COLUMNS))
    write_parquet_atomic(out / "gradstudy_pairs.parquet", frame(pair_rows, PAIR_COLUMNS))
    write_parquet_atomic(out / "gradstudy.parquet", frame(rows, ROW_COLUMNS))
    write_json_atomic(out / "gradstudy.json", {
        "schema": 1, "env": args.env, "seed": args.seed,
        "settings": {**settings.__dict__, "snapshots": list(wanted)},
        "training": {"config": cfg.to_dict(), **training},
        "snapshots": per_snapshot,
        "provenance": provenance(elapsed_s=round(time.perf_counter() - started, 3),
                                 command=" ".join(["pgbench", "gradstudy", *sys.argv[2:]])),
    })
    print(f"pgbench gradstudy: {len(rows)} estimator rows, {len(pair_rows)} pairs -> {out} "
          f"({time.perf_counter() - started:.1f}s)")
    return 0
