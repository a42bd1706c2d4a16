"""The numba engine's compiled kernels: CartPole's step, the policy's forward pass, the
advantages, the gradient and Adam, each the same arithmetic as the torch engine's (up to the
order of sums). :mod:`pgbench.training.numba.loop` calls them round after round.
"""

from __future__ import annotations

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


@jit
def cartpole_step(s, action, phys, euler):
    """Gymnasium's CartPoleEnv.step on ``s`` (float64[4], in place); True if terminated.
    ``phys``: the constants in :data:`pgbench.training.numba.engine.PHYSICS` order."""
    x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
    force = phys[5] if action == 1 else -phys[5]
    xacc, thetaacc = _accelerations(theta_dot, math.cos(theta), math.sin(theta), force, phys[0],
                                    phys[1], phys[2], phys[3], phys[4])
    x, x_dot, theta, theta_dot = _integrate(euler, phys[6], x, x_dot, theta, theta_dot, xacc,
                                            thetaacc)
    s[0], s[1], s[2], s[3] = x, x_dot, theta, theta_dot
    return _out_of_bounds(x, theta, phys[7], phys[8])


@jit
def hidden_layer(W0, b0, x, act, drop_row, use_drop, z, h):
    """``z = x @ W0 + b0``; ``h = act(z) * drop``, float32. Each ``z[j]`` is summed over
    ``k`` in order, ``x[0] W0[0, j] + x[1] W0[1, j] + ... + b0[j]``; the loops run over ``j``
    innermost, so the compiler computes several units at once with the same roundings."""
    H, D = b0.shape[0], x.shape[0]
    x0 = x[0]
    for j in range(H):
        z[j] = x0 * W0[0, j]
    for k in range(1, D):
        xk = x[k]
        for j in range(H):
            z[j] += xk * W0[k, j]
    for j in range(H):
        z[j] = z[j] + b0[j]
    zero = np.float32(0.0)
    if act == 0 and use_drop:
        for j in range(H):
            h[j] = max(z[j], zero) * drop_row[j]
    elif act == 0:
        for j in range(H):
            h[j] = max(z[j], zero)
    else:
        for j in range(H):
            a = np.float32(math.tanh(z[j]))
            h[j] = a * drop_row[j] if use_drop else a


@jit
def logits_of(W1, b1, h, out):
    """``out = h @ W1 + b1``, float32, each output summed over ``j`` in order (with two
    outputs, the two sums advance together)."""
    if b1.shape[0] == 2:
        acc0, acc1 = h[0] * W1[0, 0], h[0] * W1[0, 1]
        for j in range(1, h.shape[0]):
            hj = h[j]
            acc0 += hj * W1[j, 0]
            acc1 += hj * W1[j, 1]
        out[0], out[1] = acc0 + b1[0], acc1 + b1[1]
        return
    for a in range(b1.shape[0]):
        acc = h[0] * W1[0, a]
        for j in range(1, h.shape[0]):
            acc += h[j] * W1[j, a]
        out[a] = acc + b1[a]


@jit
def softmax(logits, p):
    top = logits[0]
    for a in range(1, logits.shape[0]):
        top = max(top, logits[a])
    total = np.float32(0.0)
    for a in range(logits.shape[0]):
        p[a] = np.float32(math.exp(logits[a] - top))
        total += p[a]
    for a in range(logits.shape[0]):
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
            x = obs[i, t]
            for k in range(4):
                x[k] = np.float32(state[i, k])
            if use_drop:  # on row views: the loop vectorises
                row, draws = drop[i, t], u[t - t_start, i, 1:]
                for j in range(H):
                    row[j] = scale if draws[j] < keep else np.float32(0.0)
            hidden_layer(W0, b0, x, act, drop[i, t] if use_drop else drop[i, 0], use_drop,
                         z[i, t], h[i, t])
            logits_of(W1, b1, h[i, t], logits[i, t])
            softmax(logits[i, t], p)
            noise = u[t - t_start, i, 0]
            cdf = np.float32(0.0)
            a_t = 0
            for a in range(A):
                cdf += p[a]
                if noise >= cdf:
                    a_t += 1
            a_t = min(a_t, A - 1)  # a cdf that rounds to just below 1
            actions[i, t] = a_t
            term = cartpole_step(state[i], a_t, phys, euler)
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
    n = lengths.shape[0]
    T = max(1, lengths.max())
    adv = np.zeros((n, T))
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
    return adv, ema_next


@jit
def gradient(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths, adv, grad):
    """The gradient of ``-(1/N) sum_i sum_t A_it log pi(a_it|s_it)`` into ``grad`` (float64,
    the flat layout W0, b0, W1, b1), from the activations the rollout kept; returns (loss, mean
    entropy per step). W1 and its gradient are held by output (``(A, H)``, float64) while the
    steps are summed, so every loop over hidden units reads and writes contiguous rows; the
    sums are those of the flat layout, term by term in the same order."""
    D, H, A = obs.shape[2], W1.shape[0], W1.shape[1]
    gW0, gb0 = grad[:D * H].reshape(D, H), grad[D * H:D * H + H]
    grad[:] = 0.0
    gW1t = np.zeros((A, H))  # W1's gradient and W1 itself by output: contiguous over units
    W1t = np.empty((A, H))
    for j in range(H):
        for a in range(A):
            W1t[a, j] = float(W1[j, a])
    gb1 = grad[D * H + H + H * A:]
    p = np.empty(A, np.float32)
    dlogit = np.empty(A)
    dz = np.empty(H)
    n_episodes = 0
    n_steps = 0
    loss, entropy = 0.0, 0.0
    for i in range(lengths.shape[0]):
        if lengths[i] > 0:
            n_episodes += 1
    for i in range(lengths.shape[0]):
        for t in range(lengths[i]):
            x, out, zt, ht = obs[i, t], logits[i, t], z[i, t], h[i, t]
            top, total = softmax(out, p)
            log_total = math.log(total)
            a_t = actions[i, t]
            w = adv[i, t] / n_episodes  # the weight of this log-prob, float64
            loss -= w * (float(out[a_t]) - top - log_total)
            ent = 0.0
            for a in range(A):
                logp = float(out[a]) - top - log_total
                ent -= float(p[a]) * logp
                # d(-w log p_a_t)/d logit_a = -w (1[a == a_t] - p_a)
                dlogit[a] = -w * ((1.0 if a == a_t else 0.0) - float(p[a]))
            entropy += ent
            n_steps += 1
            for a in range(A):
                gb1[a] += dlogit[a]
            # dz = (W1 @ dlogit) * drop * act'(z): loops over j on contiguous rows, which the
            # compiler vectorises; each element's sum over steps keeps its order
            if A == 2:
                d0, d1 = dlogit[0], dlogit[1]
                g0, g1, w0, w1 = gW1t[0], gW1t[1], W1t[0], W1t[1]
                for j in range(H):
                    hj = float(ht[j])
                    g0[j] += hj * d0
                    g1[j] += hj * d1
                    back = 0.0
                    back += w0[j] * d0
                    back += w1[j] * d1
                    dz[j] = back
            else:
                for j in range(H):
                    dz[j] = 0.0
                for a in range(A):
                    ga, wa, da = gW1t[a], W1t[a], dlogit[a]
                    for j in range(H):
                        ga[j] += float(ht[j]) * da
                        dz[j] += wa[j] * da
            if use_drop:
                dr = drop[i, t]
                for j in range(H):
                    dz[j] *= float(dr[j])
            if act == 0:
                for j in range(H):
                    dz[j] = dz[j] if zt[j] > 0 else 0.0
            else:
                for j in range(H):
                    y = math.tanh(zt[j])
                    dz[j] = dz[j] * (1.0 - y * y)
            for k in range(D):
                xk = float(x[k])
                row = gW0[k]
                for j in range(H):
                    row[j] += xk * dz[j]
            for j in range(H):
                gb0[j] += dz[j]
    gW1 = grad[D * H + H:D * H + H + H * A].reshape(H, A)
    for j in range(H):
        for a in range(A):
            gW1[j, a] = gW1t[a, j]
    return loss, entropy / max(n_steps, 1)


def _adam(flat, m, v, grad, one_minus_b1, b2, one_minus_b2, sqrt_bc2, step_size, eps):
    """One step of torch.optim.Adam's arithmetic in float32; returns |grad| (float32 grad).

    Compiled with NumPy's error model: a division is IEEE's, without Python's check for a
    zero divisor (a branch in the loop that kept it from vectorising); the divisors here are
    ``sqrt_bc2 > 0`` and ``sqrt(v) / sqrt_bc2 + eps > 0``, so no result changes."""
    norm = 0.0
    for q in range(flat.shape[0]):  # a sum in order: apart, so the next loop vectorises
        g = np.float32(grad[q])
        norm += float(g) * float(g)
    for q in range(flat.shape[0]):
        g = np.float32(grad[q])
        m[q] = m[q] + one_minus_b1 * (g - m[q])
        v[q] = v[q] * b2 + one_minus_b2 * g * g
        denom = np.float32(math.sqrt(v[q])) / sqrt_bc2 + eps
        flat[q] = flat[q] + m[q] * step_size / denom
    return math.sqrt(norm)


adam = jit(_adam, error_model="numpy")


@jit
def learn(flat, m, v, grad, W1, act, obs, actions, drop, use_drop, z, h, logits, lengths,
          returns, baseline, gamma, ema_prev, ema_weight, normalize, t, lr):
    """One update: :func:`advantages`, :func:`gradient`, then Adam's step ``t`` (a float) with
    torch.optim.Adam's defaults and the scalars it forms at that step (as StackedAdam).
    Returns (loss, grad norm, mean entropy, the new EMA state)."""
    adv, ema_next = advantages(lengths, returns, baseline, gamma, ema_prev, ema_weight, normalize)
    loss, entropy = gradient(W1, act, obs, actions, drop, use_drop, z, h, logits, lengths, adv,
                             grad)
    b1, b2 = 0.9, 0.999
    sqrt_bc2 = np.float32(math.sqrt(1 - math.pow(b2, t)))
    step_size = np.float32(-lr / (1 - math.pow(b1, t)))
    norm = adam(flat, m, v, grad, np.float32(1 - b1), np.float32(b2), np.float32(1 - b2),
                sqrt_bc2, step_size, np.float32(1e-8))
    return loss, norm, entropy, ema_next
