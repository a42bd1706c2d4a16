"""The numba engine's compiled kernels: CartPole's step, the policy's forward pass, the
advantages, the gradient and Adam, each the same arithmetic as the torch engine's (up to the
order of sums). :mod:`pgbench.training.numba.loop` calls them round after round.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from pgbench.envs import cartpole


# -- the kernels: fastmath stays off (IEEE arithmetic in the order written), so a seed gives
# the same numbers on every run; compiled once, then loaded from Numba's cache ----------------
def jit(function, **options):
    """Compile ``function`` lazily, cached on disk where Numba finds a writable place (beside
    this file, or in the user's cache directory), else compiled anew in each process."""
    try:
        return numba.njit(cache=True, nogil=True, **options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, **options)(function)


#: CartPole's equations (:mod:`pgbench.envs.cartpole`, the one copy), compiled
_accelerations = jit(cartpole.accelerations)
_integrate = jit(cartpole.integrate)
_out_of_bounds = jit(cartpole.out_of_bounds)


@functools.partial(jit, inline="always")
def cartpole_step(state, i, action, phys, euler):
    """Gymnasium's CartPoleEnv.step on ``state[i]`` (float64[4], in place); True if terminated.
    ``phys``: the constants in :data:`pgbench.training.numba.engine.PHYSICS` order. (The
    kernels index their arrays in place: a view per step would count references each time.)"""
    x, x_dot, theta, theta_dot = state[i, 0], state[i, 1], state[i, 2], state[i, 3]
    force = phys[5] if action == 1 else -phys[5]
    xacc, thetaacc = _accelerations(theta_dot, math.cos(theta), math.sin(theta), force, phys[0],
                                    phys[1], phys[2], phys[3], phys[4])
    x, x_dot, theta, theta_dot = _integrate(euler, phys[6], x, x_dot, theta, theta_dot, xacc,
                                            thetaacc)
    state[i, 0], state[i, 1], state[i, 2], state[i, 3] = x, x_dot, theta, theta_dot
    return _out_of_bounds(x, theta, phys[7], phys[8])


@functools.partial(jit, inline="always")
def hidden_layer(W0, b0, obs, act, drop, use_drop, z, h, i, t):
    """``z[i, t] = obs[i, t] @ W0 + b0``; ``h[i, t] = act(z[i, t]) * drop[i, t]`` (no mask
    unless ``use_drop``), float32. Each ``z[i, t, j]`` is summed over the inputs ``k`` in order,
    ``x[0] W0[0, j] + x[1] W0[1, j] + ... + b0[j]``; the loops run over ``j`` innermost, so the
    compiler computes several units at once with the same roundings."""
    H, D = b0.shape[0], obs.shape[2]
    x0 = obs[i, t, 0]
    zero = np.float32(0.0)
    if D == 4 and act == 0:  # CartPole, relu: one pass, the same sums in the same order
        x1, x2, x3 = obs[i, t, 1], obs[i, t, 2], obs[i, t, 3]
        if use_drop:
            for j in range(H):
                zj = x0 * W0[0, j] + x1 * W0[1, j] + x2 * W0[2, j] + x3 * W0[3, j] + b0[j]
                z[i, t, j] = zj
                h[i, t, j] = max(zj, zero) * drop[i, t, j]
        else:
            for j in range(H):
                zj = x0 * W0[0, j] + x1 * W0[1, j] + x2 * W0[2, j] + x3 * W0[3, j] + b0[j]
                z[i, t, j] = zj
                h[i, t, j] = max(zj, zero)
        return
    for j in range(H):
        z[i, t, j] = x0 * W0[0, j]
    for k in range(1, D):
        xk = obs[i, t, k]
        for j in range(H):
            z[i, t, j] += xk * W0[k, j]
    for j in range(H):
        zj = z[i, t, j] + b0[j]
        z[i, t, j] = zj
        a = max(zj, zero) if act == 0 else np.float32(math.tanh(zj))
        h[i, t, j] = a * drop[i, t, j] if use_drop else a


#: the partial sums a logit is split into (see :func:`logits_of`)
LOGIT_LANES = 8


@functools.partial(jit, inline="always")
def logits_of(W1, b1, h, out, i, t):
    """``out[i, t] = h[i, t] @ W1 + b1``, float32. Each output's sum over the hidden units is split into
    :data:`LOGIT_LANES` partial sums: for the ``H - H % 8`` units in whole blocks of 8, sum ``l``
    adds ``h[i, t, j] W1[j, a]`` over the units ``j = l (mod 8)`` in order, from 0; the units past
    the last whole block are summed in order on their own (``tail``); then
    ``out[i, t, a] = ((((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + tail) + b1[a]``.
    One sequential 128-term sum waits on each addition before the next (latency-bound); eight
    independent ones fill a vector register. The order is fixed here, so every machine rounds
    alike (Numba never reassociates without fast-math)."""
    H, A = h.shape[2], b1.shape[0]
    full = H - H % LOGIT_LANES
    zero = np.float32(0.0)
    if A == 2:  # CartPole's two logits advance together: 16 independent partial sums
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
        c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = zero
        for block in range(full // LOGIT_LANES):  # (j from a range of step 1: no index checks)
            j = block * LOGIT_LANES
            h0, h1, h2, h3 = h[i, t, j], h[i, t, j + 1], h[i, t, j + 2], h[i, t, j + 3]
            h4, h5, h6, h7 = h[i, t, j + 4], h[i, t, j + 5], h[i, t, j + 6], h[i, t, j + 7]
            a0 += h0 * W1[j, 0]
            a1 += h1 * W1[j + 1, 0]
            a2 += h2 * W1[j + 2, 0]
            a3 += h3 * W1[j + 3, 0]
            a4 += h4 * W1[j + 4, 0]
            a5 += h5 * W1[j + 5, 0]
            a6 += h6 * W1[j + 6, 0]
            a7 += h7 * W1[j + 7, 0]
            c0 += h0 * W1[j, 1]
            c1 += h1 * W1[j + 1, 1]
            c2 += h2 * W1[j + 2, 1]
            c3 += h3 * W1[j + 3, 1]
            c4 += h4 * W1[j + 4, 1]
            c5 += h5 * W1[j + 5, 1]
            c6 += h6 * W1[j + 6, 1]
            c7 += h7 * W1[j + 7, 1]
        tail0, tail1 = zero, zero
        for j in range(full, H):
            tail0 += h[i, t, j] * W1[j, 0]
            tail1 += h[i, t, j] * W1[j, 1]
        out[i, t, 0] = ((((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + tail0) + b1[0]
        out[i, t, 1] = ((((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))) + tail1) + b1[1]
        return
    for a in range(A):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
        for block in range(full // LOGIT_LANES):
            j = block * LOGIT_LANES
            a0 += h[i, t, j] * W1[j, a]
            a1 += h[i, t, j + 1] * W1[j + 1, a]
            a2 += h[i, t, j + 2] * W1[j + 2, a]
            a3 += h[i, t, j + 3] * W1[j + 3, a]
            a4 += h[i, t, j + 4] * W1[j + 4, a]
            a5 += h[i, t, j + 5] * W1[j + 5, a]
            a6 += h[i, t, j + 6] * W1[j + 6, a]
            a7 += h[i, t, j + 7] * W1[j + 7, a]
        tail = zero
        for j in range(full, H):
            tail += h[i, t, j] * W1[j, a]
        out[i, t, a] = ((((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))) + tail) + b1[a]


@functools.partial(jit, inline="always")
def softmax(logits, i, t, p):
    """``p = softmax(logits[i, t])`` (float32); returns (the largest logit, the sum of the
    exponentials)."""
    A = p.shape[0]
    top = logits[i, t, 0]
    for a in range(1, A):
        top = max(top, logits[i, t, a])
    total = np.float32(0.0)
    for a in range(A):
        p[a] = np.float32(math.exp(logits[i, t, a] - top))
        total += p[a]
    for a in range(A):
        p[a] = p[a] / total
    return top, total


@jit
def rollout(W0, b0, W1, b1, act, state, steps, alive, t, t_end, u, keep, scale, obs, actions,
            drop, z, h, logits, lengths, terminated, truncated, phys, euler, max_steps):
    """Step every live sub-env from step ``t`` (< ``t_end``) until ``t_end`` or until none is
    live; returns (the step reached, whether a sub-env is still live). ``u (t_end - t, n, 1 + H
    or 1)``: the chunk's uniforms (action, dropout). Each step's observation, action, dropout
    mask, hidden pre-activation ``z``, hidden output ``h`` and logits are kept for the update."""
    H, A = b0.shape[0], b1.shape[0]
    n = state.shape[0]
    t_start = t_end - u.shape[0]  # the chunk's first step
    use_drop = keep < np.float32(1.0)
    p = np.empty(A, np.float32)
    live = False
    while t < t_end:
        live = False
        for i in range(n):
            if not alive[i]:
                continue
            for k in range(4):
                obs[i, t, k] = np.float32(state[i, k])
            tu = t - t_start
            if use_drop:
                for j in range(H):
                    drop[i, t, j] = scale if u[tu, i, 1 + j] < keep else np.float32(0.0)
            hidden_layer(W0, b0, obs, act, drop, use_drop, z, h, i, t)
            logits_of(W1, b1, h, logits, i, t)
            softmax(logits, i, t, p)
            noise = u[tu, i, 0]
            cdf = np.float32(0.0)
            a_t = 0
            for a in range(A):
                cdf += p[a]
                if noise >= cdf:
                    a_t += 1
            a_t = min(a_t, A - 1)  # a cdf that rounds to just below 1
            actions[i, t] = a_t
            term = cartpole_step(state, i, a_t, phys, euler)
            steps[i] += 1
            if term or steps[i] >= max_steps:
                alive[i] = False
                lengths[i] = t + 1
                terminated[i] = term
                truncated[i] = not term
            else:
                live = True
        t += 1
        if not live:
            break
    return t, live


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
    sums ``G``, W1 by output, the softmax, dlogit in float64 and float32, dz, a mask of ones,
    the advantages)."""
    return (np.zeros((D + 1 + A, H), np.float32), np.empty((A, H), np.float32),
            np.empty(A, np.float32), np.empty(A), np.empty(A, np.float32),
            np.empty(H, np.float32), np.ones((1, 1, H), np.float32), np.zeros((n, max(T, 1))))


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
    per step). As torch computes it, the network's terms are float32: each step's ``dlogit``
    (from float64 weights ``A_it / N``) is rounded to float32, and every per-unit sum over the
    steps is a float32 sum in step order, from 0 (kept by unit in one local array ``G``: W0's
    rows, b0, then W1 by output, so every loop over hidden units reads and writes contiguous
    rows of one array, 8 units to a vector register); the loss, the entropy and b1's gradient
    are float64 sums. ``grad`` is float64 (Adam rounds it to float32 again: exact)."""
    D, H, A = obs.shape[2], W1.shape[0], W1.shape[1]
    G, W1t, p, dlogit, d32, dz, ones, _ = work  # (see workspace)
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
            if A == 2 and D == 4:  # CartPole: every per-unit term in one pass over the units
                # (indexed in place: a view per step would count references each time)
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
                continue
            # any other shape: the same terms, pass by pass
            for a in range(A):
                da = d32[a]
                for j in range(H):
                    G[D + 1 + a, j] += h[i, t, j] * da
                    dz[j] = W1t[a, j] * da if a == 0 else dz[j] + W1t[a, j] * da
            if use_drop:
                for j in range(H):
                    dz[j] *= drop[i, t, j]
            if act == 0:
                for j in range(H):
                    dz[j] = dz[j] if z[i, t, j] > zero else zero
            else:
                for j in range(H):
                    y = np.float32(math.tanh(z[i, t, j]))
                    dz[j] = dz[j] * (np.float32(1.0) - y * y)
            for k in range(D):
                xk = obs[i, t, k]
                for j in range(H):
                    G[k, j] += xk * dz[j]
            for j in range(H):
                G[D, j] += dz[j]
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
    adv = work[7]
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
