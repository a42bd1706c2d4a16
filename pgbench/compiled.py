"""``engine=numba``: REINFORCE on CartPole as compiled loops, one run at a time.

The slides' suite trains a 4-128-2 policy one episode at a time for millions of steps. With
torch, each env step and each update is a few dozen framework calls on arrays of a few hundred
numbers, and their fixed cost is the run time. Here a run's rounds (reset, episode, update, the
episode's row and the stop rules) are played inside Numba-compiled loops
(:mod:`pgbench.compiled_loop`), with the random numbers drawn there too
(:mod:`pgbench.compiled_random`); Python is left with one call per up to
:data:`ROUNDS_PER_CALL` rounds.

What is covered: discrete CartPole (v0, v1), a policy with one hidden layer (relu or tanh,
dropout or none), REINFORCE's loss without a critic (``returns`` total or rtg; ``baseline``
none, mean, ema or whiten; ``normalize_advantages`` either way), whole episodes per update, no
entropy bonus, Adam. :func:`unsupported` names what else a config asks for.

Same algorithm, same random streams: the weights are initialised by
:func:`pgbench.policies.init_policy`, the env resets, action noise and dropout masks are drawn
from the seed's streams in the chunks :class:`pgbench.rollout.Collector` draws (the same
numbers NumPy and torch draw, checked once per process), and CartPole
is stepped with Gymnasium's equations (checked bit for bit against Gymnasium once per process).
Only the network's floating-point arithmetic differs from ``engine=torch`` (the order of its
sums; the gradient is accumulated in float64), so a run follows the torch run's episodes until a
rounding difference first flips an action, and then differs as runs on two machines would. The
engine is a config field, so it is part of each run's hash.
"""

from __future__ import annotations

import functools
import math
import time

import numba
import numpy as np
import torch

from pgbench.errors import UserError

CARTPOLES = ("CartPole-v0", "CartPole-v1")
RETURNS = ("total", "rtg")  # codes 0, 1 in the kernels
BASELINES = ("none", "mean", "ema", "whiten")  # codes 0..3
ACTIVATIONS = ("relu", "tanh")  # codes 0, 1
# CartPole's constants, in the order the kernels read them
PHYSICS = ("gravity", "masspole", "total_mass", "length", "polemass_length", "force_mag", "tau",
           "x_threshold", "theta_threshold_radians")


def unsupported(cfg) -> list[str]:
    """What ``cfg`` asks for that ``engine=numba`` does not cover (empty if nothing)."""
    out = []
    if cfg.env_id not in CARTPOLES:
        out.append(f"env_id={cfg.env_id} (accepted: {', '.join(CARTPOLES)})")
    if cfg.loss != "pg":
        out.append(f"loss={cfg.loss} (accepted: pg)")
    if cfg.returns not in RETURNS:
        out.append(f"returns={cfg.returns} (accepted: {', '.join(RETURNS)})")
    if cfg.baseline not in BASELINES:
        out.append(f"baseline={cfg.baseline} (accepted: {', '.join(BASELINES)})")
    if cfg.episodes_per_update < 1:
        out.append(f"steps_per_update={cfg.steps_per_update} (accepted: whole episodes per "
                   "update, episodes_per_update >= 1)")
    elif cfg.num_envs not in (0, cfg.episodes_per_update):
        out.append(f"num_envs={cfg.num_envs} (accepted: 0 or {cfg.episodes_per_update}, the "
                   "episodes per update)")
    if len(cfg.hidden) != 1:
        out.append(f"hidden={','.join(map(str, cfg.hidden))} (accepted: one hidden layer)")
    if cfg.entropy_coef != 0:
        out.append(f"entropy_coef={cfg.entropy_coef} (accepted: 0)")
    if cfg.update_epochs != 1:
        out.append(f"update_epochs={cfg.update_epochs} (accepted: 1)")
    return out


def check_supported(cfg) -> None:
    """Raise UserError if ``cfg`` has ``engine=numba`` and asks for what it does not cover."""
    if cfg.engine == "numba" and (bad := unsupported(cfg)):
        raise UserError("engine=numba does not cover " + "; ".join(bad)
                        + ". Use engine=torch (the default) for this config.")


# -- the kernels: fastmath stays off (IEEE arithmetic in the order written), so a seed gives
# the same numbers on every run; compiled once, then loaded from Numba's cache ----------------
def jit(function):
    """Compile ``function`` lazily, cached on disk where Numba finds a writable place (beside
    this file, or in the user's cache directory), else compiled anew in each process."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)



@jit
def cartpole_step(s, action, phys, euler):
    """Gymnasium's CartPoleEnv.step on ``s`` (float64[4], in place); True if terminated."""
    gravity, masspole, total_mass, length = phys[0], phys[1], phys[2], phys[3]
    polemass_length, force_mag, tau = phys[4], phys[5], phys[6]
    x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
    force = force_mag if action == 1 else -force_mag
    costheta = math.cos(theta)
    sintheta = math.sin(theta)
    temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * (costheta * costheta) / total_mass))
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    if euler:
        x = x + tau * x_dot
        x_dot = x_dot + tau * xacc
        theta = theta + tau * theta_dot
        theta_dot = theta_dot + tau * thetaacc
    else:
        x_dot = x_dot + tau * xacc
        x = x + tau * x_dot
        theta_dot = theta_dot + tau * thetaacc
        theta = theta + tau * theta_dot
    s[0], s[1], s[2], s[3] = x, x_dot, theta, theta_dot
    return x < -phys[7] or x > phys[7] or theta < -phys[8] or theta > phys[8]

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
            if use_drop:
                for j in range(H):
                    drop[i, t, j] = scale if u[t - t_start, i, 1 + j] < keep else np.float32(0.0)
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
    1 per step (CartPole's), as :func:`pgbench.train.advantages`; and the new EMA state."""
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
    entropy per step)."""
    D, H, A = obs.shape[2], W1.shape[0], W1.shape[1]
    gW0, gb0 = grad[:D * H].reshape(D, H), grad[D * H:D * H + H]
    gW1 = grad[D * H + H:D * H + H + H * A].reshape(H, A)
    gb1 = grad[D * H + H + H * A:]
    grad[:] = 0.0
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
            # dz = (W1 @ dlogit) * drop * act'(z), in loops over j that the compiler vectorises
            if A == 2:
                d0, d1 = dlogit[0], dlogit[1]
                for j in range(H):
                    hj = float(ht[j])
                    gW1[j, 0] += hj * d0
                    gW1[j, 1] += hj * d1
                    back = 0.0
                    back += float(W1[j, 0]) * d0
                    back += float(W1[j, 1]) * d1
                    dz[j] = back
            else:
                for j in range(H):
                    hj = float(ht[j])
                    back = 0.0
                    for a in range(A):
                        gW1[j, a] += hj * dlogit[a]
                        back += float(W1[j, a]) * dlogit[a]
                    dz[j] = back
            if use_drop:
                for j in range(H):
                    dz[j] *= float(drop[i, t, j])
            if act == 0:
                for j in range(H):
                    dz[j] = dz[j] if zt[j] > 0 else 0.0
            else:
                for j in range(H):
                    y = math.tanh(zt[j])
                    dz[j] = dz[j] * (1.0 - y * y)
            for k in range(D):
                xk = float(x[k])
                for j in range(H):
                    gW0[k, j] += xk * dz[j]
            for j in range(H):
                gb0[j] += dz[j]
    return loss, entropy / max(n_steps, 1)


@jit
def adam(flat, m, v, grad, one_minus_b1, b2, one_minus_b2, sqrt_bc2, step_size, eps):
    """One step of torch.optim.Adam's arithmetic in float32; returns |grad| (float32 grad)."""
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


def cartpole_physics(env_id: str) -> tuple[np.ndarray, bool, int]:
    """CartPole's constants (in :data:`PHYSICS` order), whether it integrates by Euler, and
    its step limit."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        cp = env.unwrapped
        if getattr(cp, "_sutton_barto_reward", False):
            raise UserError(f"engine=numba needs CartPole's reward of 1 per step; {env_id} has "
                            "sutton_barto_reward. Use engine=torch.")
        phys = np.array([float(getattr(cp, k)) for k in PHYSICS])
        return phys, cp.kinematics_integrator == "euler", int(env.spec.max_episode_steps)
    finally:
        env.close()


@functools.cache
def check_cartpole(episodes: int = 64) -> None:
    """Step the compiled CartPole beside Gymnasium's CartPoleEnv under random actions, through
    terminations, and raise unless every state matches bit for bit (once per process)."""
    import gymnasium as gym

    step = cartpole_step
    phys, euler, _ = cartpole_physics("CartPole-v1")
    env = gym.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        theirs = env.reset(seed=1000 + episode)[0]
        mine = np.array(env.state, dtype=np.float64)
        for _ in range(500):
            a = int(rng.integers(2))
            obs, _, term, _, _ = env.step(a)
            my_term = step(mine, a, phys, euler)
            if not (np.array_equal(mine, env.state) and bool(my_term) == term):
                raise UserError(
                    "engine=numba: the compiled CartPole does not reproduce Gymnasium's on this "
                    f"machine (episode {episode} of the check differs); accepted here: "
                    "engine=torch")
            if term:
                break
    env.close()


ROUNDS_PER_CALL = 1024  # rounds (episodes and updates) per compiled call at most


class CompiledRun:
    """One run of a config with ``engine=numba``; ``run(progress)`` trains it and returns its
    :class:`pgbench.train.SeedLog` (the same record the torch trainer keeps)."""

    def __init__(self, cfg):
        from pgbench.policies import init_policy
        from pgbench.train import SeedLog, policy_spec, seed_sequences, torch_generator

        check_supported(cfg)
        check_cartpole()
        self.cfg, self.cfgs = cfg, [cfg]
        spec = policy_spec(cfg)
        self.phys, self.euler, self.T = cartpole_physics(cfg.env_id)
        streams = seed_sequences(cfg.seed)
        params = init_policy(spec, [torch_generator(streams["init"])])  # as engine=torch
        D, (H,), A = spec.obs_dim, spec.hidden, spec.act_dim
        # the weights, flat in StackedAdam's layout, and views of them in the network's shapes
        self.flat = f = torch.cat([params[k].reshape(-1)
                                   for k in ("pi.W0", "pi.b0", "pi.W1", "pi.b1")]).numpy().copy()
        self.W0, self.b0 = f[:D * H].reshape(D, H), f[D * H:D * H + H]
        self.W1, self.b1 = f[D * H + H:D * H + H + H * A].reshape(H, A), f[D * H + H + H * A:]
        self.m, self.v, self.grad = np.zeros_like(f), np.zeros_like(f), np.zeros(len(f))
        self.reset_rng = np.random.default_rng(streams["env"])
        self.noise_gen = torch_generator(streams["noise"])
        self.n = n = cfg.envs_per_seed
        self.act = ACTIVATIONS.index(cfg.activation)
        self.use_drop = cfg.dropout > 0
        self.keep = np.float32(1.0 - cfg.dropout)
        # a kept unit's mask value, as torch computes (u < keep).float() / keep
        self.scale = np.float32((torch.ones(1) / (1.0 - cfg.dropout)).item())
        self.uniforms = 1 + (H if self.use_drop else 0)  # per step: the action's, dropout's
        # the round's steps, sub-env by sub-env (a round is one episode of each sub-env)
        self.obs = np.zeros((n, self.T, D), dtype=np.float32)
        self.actions = np.zeros((n, self.T), dtype=np.int64)
        self.drop = np.ones((n, self.T if self.use_drop else 1, H), dtype=np.float32)
        self.z = np.zeros((n, self.T, H), dtype=np.float32)
        self.h = np.zeros((n, self.T, H), dtype=np.float32)
        self.logits = np.zeros((n, self.T, A), dtype=np.float32)
        self.state = np.zeros((n, 4))
        self.steps = np.zeros(n, dtype=np.int64)
        self.alive = np.zeros(n, dtype=bool)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)
        self.log = SeedLog(seed=cfg.seed)
        self.logs = [self.log]
        self.returns = RETURNS.index(cfg.returns)
        self.baseline = BASELINES.index(cfg.baseline)
        self.t0 = time.perf_counter()

    def run(self, progress=None):
        """Train the run to its stop and return its log; ``progress(self)`` is called after each
        compiled call (every :data:`ROUNDS_PER_CALL` rounds at most)."""
        from pgbench import compiled_loop as L
        from pgbench.compiled_random import MT_N, check_streams, mt_seed
        from pgbench.envs import check_env_id
        from pgbench.train import PLAIN_GRACE_EPISODES, PLAIN_WINDOW, RUNNING_REWARD_START
        from pgbench.train import RUNNING_REWARD_WEIGHT as W

        check_streams()
        threshold = check_env_id(self.cfg.env_id).reward_threshold
        cfg, log, n, R = self.cfg, self.log, self.n, ROUNDS_PER_CALL
        ilog = np.zeros(L.ILOG_SIZE, dtype=np.int64)
        ilog[L.SOLVED:L.SOLVED + 3] = ilog[L.SOLVED_100:L.SOLVED_100 + 3] = -1
        flog = np.array([RUNNING_REWARD_START, math.nan])
        ring = np.zeros(PLAIN_WINDOW)
        mt = np.empty(MT_N + 1, dtype=np.uint32)
        mt_seed(self.noise_gen.initial_seed(), mt)  # the stream torch.rand draws from
        u = np.empty(self.T * n * self.uniforms, dtype=np.float32)
        net = (self.flat, self.W0, self.b0, self.W1, self.b1, self.m, self.v, self.grad)
        kernels = (self.act, self.use_drop, self.keep, self.scale, self.uniforms)
        buffers = (self.obs, self.actions, self.drop, self.z, self.h, self.logits)
        rules = (threshold is not None, float(threshold or 0.0), PLAIN_WINDOW * (threshold or 0.0),
                 W, 1 - W, PLAIN_WINDOW, PLAIN_GRACE_EPISODES)
        ep_int, ep_float = np.empty((R * n, 6), np.int64), np.empty((R * n, 2))
        up_float = np.empty((R, 3))
        episodes, updates = [], []
        while ilog[L.STOP] == 0:
            # the seeds of the next R rounds at once: the stream of R calls drawing n each
            seeds = self.reset_rng.integers(0, 2**31 - 1, size=R * n)
            rounds, _ = L.train_rounds(
                net, kernels, mt, seeds, -0.05, 0.05 - (-0.05), u, self.state, self.steps,
                self.alive, buffers, self.lengths, self.terminated, self.truncated, self.phys,
                self.euler, self.T, ilog, flog, ring, self.returns, self.baseline, cfg.gamma,
                cfg.ema_weight, cfg.normalize_advantages, cfg.lr, rules, cfg.stop_when_solved,
                cfg.total_steps, ep_int, ep_float, up_float, R)
            wall = time.perf_counter() - self.t0
            episodes.append((ep_int[:rounds * n].copy(), ep_float[:rounds * n].copy()))
            updates.append((up_float[:rounds].copy(), wall))
            log.env_steps, log.episodes = int(ilog[L.ENV_STEPS]), int(ilog[L.EPISODES])
            log.updates = int(ilog[L.UPDATES])
            log.stop_reason = L.STOP_REASONS[int(ilog[L.STOP])]
            if progress is not None:
                progress(self)
        self._finish(ilog, flog, ring, episodes, updates)
        return log

    def _finish(self, ilog, flog, ring, episodes, updates) -> None:
        """Fill the log's rows and state (as pgbench.train.record_episode keeps them)."""
        from pgbench import compiled_loop as L

        log, n = self.log, self.n
        e_int = np.concatenate([e for e, _ in episodes])
        e_float = np.concatenate([f for _, f in episodes])
        log.episode_rows = list(zip(
            e_int[:, 0].tolist(), e_int[:, 1].tolist(), e_int[:, 2].tolist(),
            e_float[:, 0].tolist(), e_int[:, 3].tolist(), e_int[:, 4].astype(bool).tolist(),
            e_int[:, 5].astype(bool).tolist(), e_float[:, 1].tolist()))
        rows, first = [], 0
        for values, wall in updates:  # each update's env steps: its round's last episode's
            for r, (loss, norm, entropy) in enumerate(values.tolist()):
                k = first + r
                rows.append((k, int(e_int[k * n + n - 1, 2]), n, loss, norm, entropy,
                             math.nan, wall))
            first += len(values)
        log.update_rows = rows
        log.env_steps, log.episodes = int(ilog[L.ENV_STEPS]), int(ilog[L.EPISODES])
        log.updates = int(ilog[L.UPDATES])
        log.running_reward, log.ema_state = float(flog[L.RUNNING]), float(flog[L.EMA])
        for attr, at in (("solved", L.SOLVED), ("solved_last100", L.SOLVED_100)):
            if ilog[at + 1] >= 0:
                setattr(log, attr, {"update": int(ilog[at]), "episode": int(ilog[at + 1]),
                                    "env_steps": int(ilog[at + 2])})
        window = len(ring)
        last = [e_float[k, 0] for k in range(max(0, len(e_float) - window), len(e_float))]
        log.last_returns.clear()
        log.last_returns.extend(float(x) for x in last)
        log.stop_reason = L.STOP_REASONS[int(ilog[L.STOP])]
