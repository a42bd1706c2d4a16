"""The study of one snapshot: every estimator's batch gradients over the pool, their variance,
bias and projection with bootstrap intervals, and the paired comparisons of estimators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pgbench.core.errors import UserError
from pgbench.core.seeding import snapshot_streams
from pgbench.gradstudy.batches import (
    Reference,
    batch_gradients,
    mean_difference_test,
    resampled_moments,
)
from pgbench.gradstudy.snapshots import Snapshot, _collect, pool_sizes
from pgbench.gradstudy.terms import ESTIMATORS, PAIRS, EpisodeTerms, episode_terms
from pgbench.rl.gradients import parameter_layout
from pgbench.rl.policies import PolicySpec
from pgbench.stats.bootstrap import percentile_interval, resample_counts

DEFAULT_EPISODES = (1, 4, 16)


#: Sub-envs per collection round: CartPole's native vector env steps them all in numpy; a
#: SyncVectorEnv steps every sub-env until the round's longest episode ends, so rounds stay small.
NATIVE_ENVS_PER_ROUND = 1024


SYNC_ENVS_PER_ROUND = 16


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


def study_one_snapshot(env_id: str, spec: PolicySpec, snap: Snapshot, settings: "StudySettings",
                       seed: int):
    """Collect the pilot, pool and reference pool at ``snap`` and compute every statistic.

    Returns ``(rows, layer_rows, pair_rows, info)``.
    """
    from pgbench.envs.registry import check_env_id

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
