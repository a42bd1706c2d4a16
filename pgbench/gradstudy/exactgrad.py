"""Exact mean and covariance of every gradient estimator's batch gradient on a listable MDP.

The gradient study's estimators (:mod:`pgbench.gradstudy`) average K per-episode terms. Each one
studied here has the form, for a batch of K independent episodes ``x_1..x_K``::

    X = alpha * mean_i f(x_i)  -  q * sum_{i != j} U(x_i) v(x_j)  -  b * mean_i u(x_i)

with ``f, u`` vectors ``(P,)``, ``U`` a matrix ``(P, d)``, ``v`` a vector ``(d,)`` and ``b`` a
baseline independent of the batch (a constant, or the trainer's running mean of past batches).
The double sum (a U-statistic of order 2) is how a leave-one-out baseline enters
(``q = 1 / (K (K-1))``) and how the slides' batch mean, which includes the episode itself, does
(``alpha = 1 - 1/K``, ``q = 1/K^2``). Its mean and covariance follow from expectations over one
episode alone, computed exactly from the list of trajectories and their probabilities:

- ``E X = alpha E f - q K (K-1) E[U] E[v] - E[b] E[u]``;
- ``Cov X = alpha^2 Cov f / K - alpha q (C + C^T) + q^2 Var Y + (baseline terms)``, where
  ``Y = sum_{i != j} U_i v_j`` and ``C = Cov(mean_i f_i, Y)``; ``Var Y`` sums the covariances of
  ``U_i v_j`` and ``U_k v_l`` over the ways two ordered pairs can share indices (the same pair,
  the swapped pair, one shared index in four positions; disjoint pairs are independent).

The running-mean (``ema``) baseline is taken at its stationary law at fixed parameters: past
batches only, so it is independent of the batch, with mean ``E psi`` and variance
``Var(psi) / K * w / (2 - w)`` (w the weight of the newest batch, psi the per-episode quantity
it averages). ``loo_optimal_baseline`` (a ratio of sums over the other episodes) has no such
form: it is exact only at K = 1, where it equals vanilla, and left out (NaN) otherwise.

The time-dependent baseline needs every episode to run all H steps (it divides by the number of
other episodes still running), which the MDPs of :mod:`pgbench.gradstudy.tinymdp` guarantee.

The per-episode terms come from the gradient study itself (:func:`pgbench.gradstudy.terms.episode_terms`
on the pool of all trajectories), so the exact values test the code that the sampled study runs;
tests/test_exactgrad.py checks these formulas against every K-tuple of trajectories pushed
through :func:`pgbench.gradstudy.batches.batch_gradients`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgbench.gradstudy.terms import EpisodeTerms, weighted_episode_grads
from pgbench.training.rollout import Batch


@dataclass(frozen=True)
class Form:
    """One estimator's batch gradient as ``alpha mean f - q(K) sum U v - b mean u`` (see module).

    f ``(N, P)``; U ``(N, P, d)`` and v ``(N, d)`` or None; pair: "loo" or "batch_mean" (how q
    and alpha depend on K); u ``(N, P)`` or None with ``b_mean`` and ``b_var(K)``.
    """

    f: np.ndarray
    U: np.ndarray | None = None
    v: np.ndarray | None = None
    pair: str | None = None
    u: np.ndarray | None = None
    b_mean: float = 0.0
    psi_var: float = 0.0  # variance of the per-episode quantity a running baseline averages
    ema_weight: float = 0.0  # 0: a constant baseline

    def coefficients(self, k: int) -> tuple[float, float]:
        """(alpha, q) at K = k."""
        if self.pair == "loo":
            return 1.0, (1.0 / (k * (k - 1)) if k > 1 else 0.0)
        if self.pair == "batch_mean":
            return 1.0 - 1.0 / k, 1.0 / k ** 2
        return 1.0, 0.0

    def b_var(self, k: int) -> float:
        w = self.ema_weight
        return self.psi_var / k * w / (2 - w) if w > 0 else 0.0


def _expect(p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``E x`` over trajectories of probability ``p (N,)``; x ``(N, ...)``."""
    return np.tensordot(p, x, axes=1)


def _outer(p, x, y) -> np.ndarray:
    """``E[x y^T]`` for x ``(N, P)``, y ``(N, Q)``."""
    return np.einsum("n,np,nq->pq", p, x, y)


def moments(form: Form, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(E X (P,), Cov X (P, P))`` of the batch gradient at K = k."""
    alpha, q = form.coefficients(k)
    mu_f = _expect(p, form.f)
    mean = alpha * mu_f
    cov = alpha ** 2 * (_outer(p, form.f, form.f) - np.outer(mu_f, mu_f)) / k
    if form.U is not None and q > 0:
        U, v = form.U, form.v
        EU, Ev = _expect(p, U), _expect(p, v)  # (P, d), (d,)
        mu_h = EU @ Ev
        m1 = U @ Ev  # (N, P): E over the partner of U(x) v(y), x fixed
        m2 = v @ EU.T  # (N, P): the same with y fixed
        mm = np.outer(mu_h, mu_h)
        cov_fy = (k - 1) * (_outer(p, form.f, m1) + _outer(p, form.f, m2) - 2 * np.outer(mu_f, mu_h))
        Mv = _outer(p, v, v)  # (d, d)
        same = np.einsum("n,npa,ab,nqb->pq", p, U, Mv, U) - mm
        A = np.einsum("n,npa,nb->pab", p, U, v)  # E[U[:, a] v[b]]
        swap = np.einsum("pab,qba->pq", A, A) - mm
        c11, c22 = _outer(p, m1, m1) - mm, _outer(p, m2, m2) - mm
        c12 = _outer(p, m1, m2) - mm
        var_y = k * (k - 1) * (same + swap + (k - 2) * (c11 + c22 + c12 + c12.T))
        mean = mean - q * k * (k - 1) * mu_h
        cov = cov - alpha * q * (cov_fy + cov_fy.T) + q ** 2 * var_y
    if form.u is not None:
        if form.U is not None:
            raise ValueError("a form has either a pair term or a batch-independent baseline")
        mu_u = _expect(p, form.u)
        b2 = form.b_mean ** 2 + form.b_var(k)
        cov_fu = (_outer(p, form.f, form.u) - np.outer(mu_f, mu_u)) / k  # Cov(mean f, mean u)
        uu = (_outer(p, form.u, form.u) - np.outer(mu_u, mu_u)) / k + np.outer(mu_u, mu_u)
        mean = mean - form.b_mean * mu_u
        cov = cov - alpha * form.b_mean * (cov_fu + cov_fu.T) + b2 * uu \
            - form.b_mean ** 2 * np.outer(mu_u, mu_u)
    return mean, cov


# --------------------------------------------------------------------------- the estimators
def step_scores(params, spec, pool: Batch) -> np.ndarray:
    """``grad log pi(a_t | s_t)`` per episode and step, ``(N, T, P)`` float64 (one vjp per step
    weighting of :func:`pgbench.gradstudy.terms.weighted_episode_grads`)."""
    mask = pool.mask[0]
    T = mask.shape[1]
    weights = np.eye(T)[None] * mask[:, None, :]  # (N, T weightings, T)
    g = weighted_episode_grads(params, spec, pool.obs[0], pool.actions[0],
                                  torch.from_numpy(weights))
    return g.double().numpy()


def estimator_forms(terms: EpisodeTerms, p: np.ndarray, scores_t: np.ndarray,
                    rtg: np.ndarray, mask: np.ndarray, ema_weight: float,
                    constants: dict | None = None) -> dict[str, Form]:
    """Each studied estimator's :class:`Form` from the terms of the pool of all trajectories.

    terms: :func:`pgbench.gradstudy.terms.episode_terms` of that pool; p ``(N,)`` the trajectories'
    probabilities; scores_t ``(N, T, P)`` per-step scores; rtg ``(N, T)`` reward-to-go; mask
    ``(N, T)``. ``constants`` may replace the exact constants of the ``fixed_*`` estimators (e.g.
    with those a sampled study estimated on its reference pool: its variances are conditional
    on them).
    """
    g, R, m = terms.score, terms.ret, terms.rtg_mean
    sq = (g ** 2).sum(-1)
    fixed = {"fixed_baseline": float(p @ R),
             "fixed_optimal_baseline": float((p @ (sq * R)) / (p @ sq)), **(constants or {})}
    gR = g * R[:, None]
    col = g[:, :, None]
    forms = {
        "vanilla": Form(gR),
        "batch_mean_baseline": Form(gR, col, R[:, None], "batch_mean"),
        "loo_baseline": Form(gR, col, R[:, None], "loo"),
        "ema_baseline": Form(gR, u=g, b_mean=float(p @ R), psi_var=float(p @ R ** 2 - (p @ R) ** 2),
                             ema_weight=ema_weight),
        "fixed_baseline": Form(gR, u=g, b_mean=fixed["fixed_baseline"]),
        "loo_optimal_baseline": Form(gR),  # K = 1 only: b = 0 (see the module docstring)
        "fixed_optimal_baseline": Form(gR, u=g, b_mean=fixed["fixed_optimal_baseline"]),
        "rtg": Form(terms.rtg_grad),
        "rtg_loo_baseline": Form(terms.rtg_grad, col, m[:, None], "loo"),
        "rtg_ema_baseline": Form(terms.rtg_grad, u=g, b_mean=float(p @ m),
                                 psi_var=float(p @ m ** 2 - (p @ m) ** 2), ema_weight=ema_weight),
    }
    if mask.all():
        forms["loo_time_baseline"] = Form(terms.rtg_grad, np.swapaxes(scores_t, 1, 2), rtg, "loo")
    return forms


def is_exact(name: str, k: int) -> bool:
    """Whether :func:`moments` gives estimator ``name``'s law at K = k (module docstring)."""
    return not (name == "loo_optimal_baseline" and k > 1)
