"""Per-episode terms of every estimator at fixed parameters: score functions, reward-to-go
gradients and leave-one-out baselines, from batched ``torch.func`` calls (never a backward per
episode). The estimators' names are listed in :data:`ESTIMATORS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pgbench.rl import estimators as est
from pgbench.rl.gradients import weighted_episode_grads
from pgbench.rl.policies import PolicySpec
from pgbench.training.rollout import Batch

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


# --------------------------------------------------------------------------- collection
def collect_pool(collector, params, n_episodes: int) -> Batch:
    """``n_episodes`` episodes of one seed's policy, ``S = 1``, time trimmed to the longest.

    ``collector`` is a :class:`pgbench.training.rollout.Collector` for one seed: rounds of
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
    is not running. Uses :func:`pgbench.rl.estimators.time_baseline` on each episode's batch with the
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
    :func:`pgbench.rl.estimators.optimal_constant_baseline` with episode i marked empty (NaN).
    """
    k = ret.shape[-1]
    weights = np.broadcast_to(ret[..., None, :], ret.shape + (k,)).copy()
    weights[..., np.arange(k), np.arange(k)] = np.nan
    sq = np.broadcast_to(score_sqnorm[..., None, :], weights.shape)
    return est.optimal_constant_baseline(weights, sq)
