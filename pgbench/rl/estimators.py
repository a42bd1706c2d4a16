"""Policy-gradient estimators as pure functions on padded episode batches.

Layout: a batch holds episodes padded to a common length ``T`` along the last axis, with any
number of leading axes (``(E, T)`` for one run, ``(S, E, T)`` for a group of seeds):

* ``rewards``: float, shape ``(..., T)``; zero past an episode's end.
* ``mask``: bool, shape ``(..., T)``; True on the steps that belong to the episode. An episode
  is a prefix: ``mask[..., t]`` implies ``mask[..., t-1]``. An all-False row is an empty slot.
* ``bootstrap``: float, shape ``(...,)``; the value to add after the last step, ``V(s_T)`` for an
  episode cut by a time limit (truncated) and 0 for one that terminated. Without a critic: 0.

All functions compute in float64 with NumPy/SciPy and return new arrays; none keeps state.
The "running" (EMA) baseline's state is passed in and returned explicitly.

Worked example (one episode of three rewards of 1, gamma = 0.5)::

    >>> reward_to_go(np.array([[1., 1., 1.]]), np.array([[True, True, True]]), gamma=0.5)
    array([[1.75, 1.5 , 1.  ]])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "discounted_cumsum",
    "total_return",
    "reward_to_go",
    "gae",
    "batch_mean_baseline",
    "ema_baseline",
    "time_baseline",
    "optimal_constant_baseline",
    "whiten_per_episode",
    "normalize_advantages",
    "episode_means",
]


def discounted_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """``y[..., t] = sum_{k >= t} discount**(k - t) * x[..., k]`` along the last axis.

    A linear filter run backwards in time: exact and stable for any length (no powers of the
    discount are formed, so nothing underflows).

    >>> discounted_cumsum(np.array([1., 2., 3.]), 0.5)
    array([2.75, 3.5 , 3.  ])
    """
    from scipy.signal import lfilter  # here: importing scipy.signal costs ~1.5 s of start-up

    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] == 0:
        return x.copy()
    return lfilter([1.0], [1.0, -float(discount)], x[..., ::-1], axis=-1)[..., ::-1].copy()


def _last_step_onehot(mask: np.ndarray) -> np.ndarray:
    """One-hot of each episode's last valid step, shape ``(..., T)`` (all zero for empty rows)."""
    mask = np.asarray(mask, dtype=bool)
    lengths = mask.sum(-1)
    onehot = np.zeros(mask.shape, dtype=np.float64)
    idx = np.clip(lengths - 1, 0, None)
    np.put_along_axis(onehot, idx[..., None], (lengths > 0)[..., None].astype(np.float64), axis=-1)
    return onehot


def reward_to_go(rewards, mask, gamma: float, bootstrap=None) -> np.ndarray:
    """Discounted reward-to-go ``G_t = sum_{t' >= t} gamma^(t'-t) r_t' + gamma^(T-t) V(s_T)``.

    The bootstrap term enters as an extra reward ``gamma * V(s_T)`` on the last step, which is
    what a critic adds when the episode was truncated rather than terminated.

    Shapes: rewards, mask ``(..., T)``; bootstrap ``(...,)`` or None. Returns ``(..., T)``, zero on
    padding.
    """
    mask = np.asarray(mask, dtype=bool)
    r = np.where(mask, np.asarray(rewards, dtype=np.float64), 0.0)
    if bootstrap is not None:
        r = r + gamma * np.asarray(bootstrap, dtype=np.float64)[..., None] * _last_step_onehot(mask)
    return np.where(mask, discounted_cumsum(r, gamma), 0.0)


def total_return(rewards, mask, gamma: float = 1.0, bootstrap=None) -> np.ndarray:
    """The whole episode's (discounted) return ``R(tau)``, repeated on every step: ``(..., T)``.

    This is the weight of every log-probability in vanilla REINFORCE. With ``gamma = 1`` it is
    the plain sum of rewards, as in the slides.
    """
    mask = np.asarray(mask, dtype=bool)
    g0 = reward_to_go(rewards, mask, gamma, bootstrap)[..., :1]
    return np.where(mask, g0, 0.0)


def gae(rewards, values, mask, terminated, gamma: float, lam: float, bootstrap) -> np.ndarray:
    """Generalised advantage estimation, ``A_t = sum_k (gamma*lam)^k delta_{t+k}``.

    ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)``, where on the last step ``V(s_{t+1})`` is
    ``bootstrap`` (the critic's value of the final observation) for a truncated episode and 0 for
    a terminated one.

    Shapes: rewards, values, mask ``(..., T)``; terminated, bootstrap ``(...,)``. Returns
    ``(..., T)``, zero on padding. ``lam = 1`` gives reward-to-go minus V; ``lam = 0`` gives the
    one-step TD error.
    """
    mask = np.asarray(mask, dtype=bool)
    r = np.where(mask, np.asarray(rewards, dtype=np.float64), 0.0)
    v = np.where(mask, np.asarray(values, dtype=np.float64), 0.0)
    last = _last_step_onehot(mask)
    tail = np.where(np.asarray(terminated, dtype=bool), 0.0, np.asarray(bootstrap, dtype=np.float64))
    v_next = np.concatenate([v[..., 1:], np.zeros_like(v[..., :1])], axis=-1)
    v_next = v_next * (1.0 - last) + tail[..., None] * last
    delta = np.where(mask, r + gamma * v_next - v, 0.0)
    return np.where(mask, discounted_cumsum(delta, gamma * lam), 0.0)


def episode_means(psi, mask) -> np.ndarray:
    """Per-episode mean of ``psi`` over its valid steps: ``(..., E, T) -> (..., E)`` (NaN if empty).

    For the total return this is ``R(tau)`` itself.
    """
    mask = np.asarray(mask, dtype=bool)
    n = mask.sum(-1)
    s = np.where(mask, psi, 0.0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def batch_mean_baseline(psi, mask) -> np.ndarray:
    """The slides' baseline ``b = (1/N) sum_i r(tau_i)``, generalised to any weight ``psi``.

    ``b`` is the mean over the batch's (non-empty) episodes of each episode's mean ``psi``, so for
    the total return it is exactly the mean return. Shapes ``(..., E, T) -> (...,)``: one constant
    per batch (per seed).
    """
    return np.nanmean(episode_means(psi, mask), axis=-1)


def ema_baseline(previous: np.ndarray | float, psi, mask, weight: float):
    """Running-mean baseline: the batch uses ``previous``; returns ``(baseline, updated)``.

    Only past batches enter the baseline applied to this batch, so it is a constant with respect
    to this batch's actions and adds no bias. ``previous`` is NaN before the first batch (then the
    baseline is 0). Shapes: previous ``(...,)``; psi, mask ``(..., E, T)``.
    """
    previous = np.asarray(previous, dtype=np.float64)
    current = batch_mean_baseline(psi, mask)
    baseline = np.where(np.isnan(previous), 0.0, previous)
    updated = np.where(np.isnan(previous), current, (1 - weight) * previous + weight * current)
    return baseline, updated


def time_baseline(psi, mask) -> np.ndarray:
    """Time-dependent baseline ``b_t``: the mean of ``psi[..., e, t]`` over the batch's episodes
    that are still running at step ``t``. Shapes ``(..., E, T) -> (..., T)`` (0 where none run).
    """
    mask = np.asarray(mask, dtype=bool)
    n = mask.sum(-2)
    s = np.where(mask, psi, 0.0).sum(-2)
    return np.where(n > 0, s / np.maximum(n, 1), 0.0)


def optimal_constant_baseline(episode_weight, grad_sqnorm) -> np.ndarray:
    """Levine's variance-minimising constant baseline ``b = E[|g|^2 R] / E[|g|^2]``.

    ``g_i = grad log p(tau_i)`` is episode i's score (the gradient of the sum of its
    log-probabilities) and ``R`` its weight (the return). Shapes: episode_weight, grad_sqnorm
    ``(..., E)`` (NaN weights mark empty slots). Returns ``(...,)``.
    """
    w = np.asarray(episode_weight, dtype=np.float64)
    g2 = np.where(np.isnan(w), 0.0, np.asarray(grad_sqnorm, dtype=np.float64))
    w = np.nan_to_num(w)
    den = g2.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (g2 * w).sum(-1) / np.where(den > 0, den, 1.0), 0.0)


def whiten_per_episode(psi, mask, eps: float = 1e-8) -> np.ndarray:
    """Subtract each episode's mean of ``psi`` over its steps and divide by its std.

    What the PyTorch examples' ``reinforce.py`` does to its discounted returns (std with
    Bessel's correction, as ``torch.std``). A one-step episode becomes 0.
    """
    mask = np.asarray(mask, dtype=bool)
    psi = np.where(mask, np.asarray(psi, dtype=np.float64), 0.0)
    n = mask.sum(-1, keepdims=True)
    mean = psi.sum(-1, keepdims=True) / np.maximum(n, 1)
    var = (np.where(mask, psi - mean, 0.0) ** 2).sum(-1, keepdims=True) / np.maximum(n - 1, 1)
    return np.where(mask, (psi - mean) / (np.sqrt(var) + eps), 0.0)


def normalize_advantages(adv, mask, eps: float = 1e-8, axes=(-2, -1)) -> np.ndarray:
    """Zero-mean, unit-std advantages over all valid steps of a batch (population std).

    ``axes`` are the batch axes that are pooled: by default episodes and time, so each leading
    index (each seed) is normalised on its own.
    """
    mask = np.asarray(mask, dtype=bool)
    adv = np.where(mask, np.asarray(adv, dtype=np.float64), 0.0)
    n = np.maximum(mask.sum(axis=axes, keepdims=True), 1)
    mean = adv.sum(axis=axes, keepdims=True) / n
    var = (np.where(mask, adv - mean, 0.0) ** 2).sum(axis=axes, keepdims=True) / n
    return np.where(mask, (adv - mean) / (np.sqrt(var) + eps), 0.0)
