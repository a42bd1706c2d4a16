"""The numba engine's compiled kernels for playing episodes: CartPole's step and the policy's
forward pass, the same arithmetic as the torch engine's (up to the order of sums), and the
rollout that strings them together; the update's kernels are in
:mod:`pgbench.training.numba.update`. :mod:`pgbench.training.numba.loop` calls them round after
round.
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
    """``out[i, t] = h[i, t] @ W1 + b1`` for CartPole's two actions (the only env the engine
    runs: pgbench.rl.engines.check_supported), float32. Each output's sum over the hidden units
    is split into :data:`LOGIT_LANES` partial sums: for the ``H - H % 8`` units in whole blocks
    of 8, sum ``l`` adds ``h[i, t, j] W1[j, a]`` over the units ``j = l (mod 8)`` in order, from
    0; the units past the last whole block are summed in order on their own (``tail``); then
    ``out[i, t, a] = ((((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + tail) + b1[a]``.
    One sequential 128-term sum waits on each addition before the next (latency-bound); eight
    independent ones fill a vector register. The order is fixed here, so every machine rounds
    alike (Numba never reassociates without fast-math)."""
    H = h.shape[2]
    if b1.shape[0] != 2:
        raise ValueError("engine=numba: the policy has 2 outputs (CartPole's actions)")
    full = H - H % LOGIT_LANES
    zero = np.float32(0.0)
    # the two logits advance together: 16 independent partial sums
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
