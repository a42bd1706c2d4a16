"""Batch gradients of K episodes from the per-episode terms, the baselines that depend on past
batches (running mean) or on a reference pool (fixed), and the bootstrap moments over batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pgbench.gradstudy.terms import (
    EMA,
    FIXED,
    EpisodeTerms,
    leave_one_out_mean,
    leave_one_out_optimal_baseline,
)
from pgbench.rl import estimators as est


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
    batch 0 (NaN: none yet; then, as in :func:`pgbench.rl.estimators.ema_baseline`, batch 0's
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
