"""The numba engine's update kernels: the advantages, the policy gradient and Adam, each the same
arithmetic as the torch engine's (up to the order of sums and the gradient's float32 sums, which
torch computes too). :func:`learn` is one update; :mod:`pgbench.training.numba.loop` calls it
after each round of episodes.
"""

from __future__ import annotations

import math

import numpy as np

from pgbench.training.numba.kernels import jit, softmax


@jit
def advantages(lengths, returns, baseline, gamma, ema_prev, ema_weight, normalize):
    """The weight of each step's log-probability, float64 ``(n, T)``, for episodes of reward
    1 per step (CartPole's), as :func:`pgbench.training.update.advantages`; and the new EMA state."""
    adv = np.zeros((lengths.shape[0], max(1, lengths.max())))
    ema_next = advantages_into(adv, lengths, returns, baseline, gamma, ema_prev, ema_weight,
                               normalize)
    return adv, ema_next


@jit
def advantages_into(adv, lengths, returns, baseline, gamma, ema_prev, ema_weight, normalize):
    """:func:`advantages` into ``adv`` (``(n, >= the longest episode)``: the steps of each
    episode are written, the rest left alone); returns the new EMA state."""
    n = lengths.shape[0]
    for i in range(n):
        g = 0.0
        for t in range(lengths[i] - 1, -1, -1):
            g = 1.0 + gamma * g
            adv[i, t] = g
        if returns == 0:  # the whole return on every step
            for t in range(lengths[i]):
                adv[i, t] = g
    ema_next = ema_prev
    if baseline == 1 or baseline == 2:  # mean of the batch's episode means
        total, count = 0.0, 0
        for i in range(n):
            if lengths[i] > 0:
                total += adv[i, :lengths[i]].sum() / lengths[i]
                count += 1
        current = total / count
        b = current
        if baseline == 2:  # ema: the past batches' running mean (0 before the first)
            b = 0.0 if math.isnan(ema_prev) else ema_prev
            ema_next = current if math.isnan(ema_prev) else (
                (1 - ema_weight) * ema_prev + ema_weight * current)
        for i in range(n):
            for t in range(lengths[i]):
                adv[i, t] -= b
    elif baseline == 3:  # whiten each episode (std with Bessel's correction)
        for i in range(n):
            L = lengths[i]
            mean = adv[i, :L].sum() / max(L, 1)
            var = 0.0
            for t in range(L):
                var += (adv[i, t] - mean) ** 2
            std = math.sqrt(var / max(L - 1, 1))
            for t in range(L):
                adv[i, t] = (adv[i, t] - mean) / (std + 1e-8)
    if normalize:  # over the batch's steps (population std)
        total, count = 0.0, 0
        for i in range(n):
            total += adv[i, :lengths[i]].sum()
            count += lengths[i]
        mean = total / max(count, 1)
        var = 0.0
        for i in range(n):
            for t in range(lengths[i]):
                var += (adv[i, t] - mean) ** 2
        std = math.sqrt(var / max(count, 1))
        for i in range(n):
            for t in range(lengths[i]):
                adv[i, t] = (adv[i, t] - mean) / (std + 1e-8)
    return ema_next


@jit
def workspace(n, T, D, H, A):
    """The scratch arrays of one update (:func:`learn`), made once per run: (the per-unit
    sums ``G``, W1 by output, the softmax, dlogit in float64 and float32, a mask of ones, the
    advantages)."""
    return (np.zeros((D + 1 + A, H), np.float32), np.empty((A, H), np.float32),
            np.empty(A, np.float32), np.empty(A), np.empty(A, np.float32),
            np.ones((1, 1, H), np.float32), np.zeros((n, max(T, 1))))


@jit
def gradient(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths, adv, grad):
    """:func:`gradient_into` with scratch arrays of its own."""
    n, T, D = obs.shape[0], obs.shape[1], obs.shape[2]
    return gradient_into(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths, adv, grad,
                         workspace(n, T, D, W1.shape[0], W1.shape[1]))


@jit
def gradient_into(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths, adv, grad, work):
    """The gradient of ``-(1/N) sum_i sum_t A_it log pi(a_it|s_it)`` into ``grad`` (the flat
    layout W0, b0, W1, b1), from the activations the rollout kept; returns (loss, mean entropy
    per step), for CartPole's policy (4 inputs, 2 actions: the only env the engine runs). As
    torch computes it, the network's terms are float32: each step's ``dlogit``
    (from float64 weights ``A_it / N``) is rounded to float32, and every per-unit sum over the
    steps is a float32 sum in step order, from 0 (kept by unit in one local array ``G``: W0's
    rows, b0, then W1 by output, so every loop over hidden units reads and writes contiguous
    rows of one array, 8 units to a vector register); the loss, the entropy and b1's gradient
    are float64 sums. ``grad`` is float64 (Adam rounds it to float32 again: exact)."""
    D, H, A = obs.shape[2], W1.shape[0], W1.shape[1]
    if D != 4 or A != 2:
        raise ValueError("engine=numba: the policy maps CartPole's 4 observations to 2 actions")
    G, W1t, p, dlogit, d32, ones, _ = work  # (see workspace)
    grad[:] = 0.0
    G[:] = 0.0
    for j in range(H):  # W1 by output: contiguous over units
        for a in range(A):
            W1t[a, j] = W1[j, a]
    gb1 = grad[D * H + H + H * A:]
    zero = np.float32(0.0)
    n_episodes = 0
    n_steps = 0
    loss, entropy = 0.0, 0.0
    for i in range(lengths.shape[0]):
        if lengths[i] > 0:
            n_episodes += 1
    for i in range(lengths.shape[0]):
        for t in range(lengths[i]):
            top, total = softmax(logits, i, t, p)
            log_total = math.log(total)
            a_t = actions[i, t]
            w = adv[i, t] / n_episodes  # the weight of this log-prob, float64
            loss -= w * (float(logits[i, t, a_t]) - top - log_total)
            ent = 0.0
            for a in range(A):
                logp = float(logits[i, t, a]) - top - log_total
                ent -= float(p[a]) * logp
                # d(-w log p_a_t)/d logit_a = -w (1[a == a_t] - p_a)
                dlogit[a] = -w * ((1.0 if a == a_t else 0.0) - float(p[a]))
                d32[a] = np.float32(dlogit[a])
            entropy += ent
            n_steps += 1
            for a in range(A):
                gb1[a] += dlogit[a]
            # every per-unit term in one pass over the units, indexed in place (a view per
            # step would count references each time)
            d0, d1 = d32[0], d32[1]
            x0, x1, x2, x3 = obs[i, t, 0], obs[i, t, 1], obs[i, t, 2], obs[i, t, 3]
            # the mask, or a row of ones (x * 1 == x: no branch in the loops)
            masks, di, dt = (drop, i, t) if use_drop else (ones, 0, 0)
            if act == 0:  # relu (a loop of its own: tanh would be evaluated in it)
                for j in range(H):
                    hj = h[i, t, j]
                    G[5, j] += hj * d0
                    G[6, j] += hj * d1
                    # dz = (W1 @ dlogit) * drop * act'(z)
                    back = (W1t[0, j] * d0 + W1t[1, j] * d1) * masks[di, dt, j]
                    back = back if z[i, t, j] > zero else zero
                    G[0, j] += x0 * back
                    G[1, j] += x1 * back
                    G[2, j] += x2 * back
                    G[3, j] += x3 * back
                    G[4, j] += back
            else:
                for j in range(H):
                    hj = h[i, t, j]
                    G[5, j] += hj * d0
                    G[6, j] += hj * d1
                    y = np.float32(math.tanh(z[i, t, j]))
                    back = ((W1t[0, j] * d0 + W1t[1, j] * d1) * masks[di, dt, j]
                            * (np.float32(1.0) - y * y))
                    G[0, j] += x0 * back
                    G[1, j] += x1 * back
                    G[2, j] += x2 * back
                    G[3, j] += x3 * back
                    G[4, j] += back
    gW0, gb0 = grad[:D * H].reshape(D, H), grad[D * H:D * H + H]
    gW1 = grad[D * H + H:D * H + H + H * A].reshape(H, A)
    for j in range(H):
        for k in range(D):
            gW0[k, j] = G[k, j]
        gb0[j] = G[D, j]
        for a in range(A):
            gW1[j, a] = G[D + 1 + a, j]
    return loss, entropy / max(n_steps, 1)


def _adam(flat, m, v, grad, one_minus_b1, b2, one_minus_b2, sqrt_bc2, step_size, eps):
    """One step of torch.optim.Adam's arithmetic in float32; returns |grad| (float32 grad).

    Compiled with NumPy's error model: a division is IEEE's, without Python's check for a
    zero divisor (a branch in the loop that kept it from vectorising); the divisors here are
    ``sqrt_bc2 > 0`` and ``sqrt(v) / sqrt_bc2 + eps > 0``, so no result changes. ``sqrt(v)``
    is float32's correctly rounded square root, the same number as float64's rounded to
    float32 (a float64 square root rounded to float32 is always correctly rounded)."""
    # |grad|^2 in 8 partial sums (q = l mod 8, in order), added pairwise: a sequential sum of
    # 898 squares waits on each addition (latency-bound)
    P = flat.shape[0]
    full = P - P % 8
    n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = 0.0
    for block in range(full // 8):
        q = block * 8
        g0, g1 = float(np.float32(grad[q])), float(np.float32(grad[q + 1]))
        g2, g3 = float(np.float32(grad[q + 2])), float(np.float32(grad[q + 3]))
        g4, g5 = float(np.float32(grad[q + 4])), float(np.float32(grad[q + 5]))
        g6, g7 = float(np.float32(grad[q + 6])), float(np.float32(grad[q + 7]))
        n0 += g0 * g0
        n1 += g1 * g1
        n2 += g2 * g2
        n3 += g3 * g3
        n4 += g4 * g4
        n5 += g5 * g5
        n6 += g6 * g6
        n7 += g7 * g7
    tail = 0.0
    for q in range(full, P):
        g = float(np.float32(grad[q]))
        tail += g * g
    norm = (((n0 + n1) + (n2 + n3)) + ((n4 + n5) + (n6 + n7))) + tail
    for q in range(flat.shape[0]):
        g = np.float32(grad[q])
        m[q] = m[q] + one_minus_b1 * (g - m[q])
        v[q] = v[q] * b2 + one_minus_b2 * g * g
        denom = np.sqrt(v[q]) / sqrt_bc2 + eps  # float32 sqrt: 8 to a vector register
        flat[q] = flat[q] + m[q] * step_size / denom
    return math.sqrt(norm)


adam = jit(_adam, error_model="numpy")


@jit
def learn(flat, m, v, grad, W1, act, obs, actions, drop, use_drop, z, h, logits, lengths,
          returns, baseline, gamma, ema_prev, ema_weight, normalize, t, lr, work):
    """One update: :func:`advantages`, :func:`gradient`, then Adam's step ``t`` (a float) with
    torch.optim.Adam's defaults and the scalars it forms at that step (as StackedAdam), in the
    scratch arrays ``work`` (:func:`workspace`). Returns (loss, grad norm, mean entropy, the
    new EMA state)."""
    adv = work[6]
    ema_next = advantages_into(adv, lengths, returns, baseline, gamma, ema_prev, ema_weight,
                               normalize)
    loss, entropy = gradient_into(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths,
                                  adv, grad, work)
    b1, b2 = 0.9, 0.999
    sqrt_bc2 = np.float32(math.sqrt(1 - math.pow(b2, t)))
    step_size = np.float32(-lr / (1 - math.pow(b1, t)))
    norm = adam(flat, m, v, grad, np.float32(1 - b1), np.float32(b2), np.float32(1 - b2),
                sqrt_bc2, step_size, np.float32(1e-8))
    return loss, norm, entropy, ema_next
