"""``engine=numba``'s training loop, compiled: one call plays many rounds of a run.

A round is one episode of each of the seed's ``n`` sub-envs, then one update. :func:`train_rounds`
plays rounds until the run stops (the stop rules of :func:`pgbench.runs.log.stop_reason`), or until
it has made ``max_updates`` updates or used up the reset seeds it was given; Python then stores
the rows and calls again. Inside, each round does what
:class:`pgbench.training.numba.reference.EpisodeRun` does in Python, in the same order and with the
same numbers: the reset of each sub-env from its seed (:func:`pgbench.training.numba.streams.reset_state`),
the action noise and dropout uniforms in the chunks :func:`pgbench.training.rollout.noise_chunk_end`
draws (:func:`pgbench.training.numba.streams.mt_uniform_float32`), the rollout and update kernels of
:mod:`pgbench.training.numba`, and each episode's row, running reward and solve points as
:func:`pgbench.runs.log.record_episode` computes them.

Numba's disk cache keys :func:`train_rounds` on this file's time stamp alone, yet the compiled
loop holds the kernels and streams it calls: :mod:`pgbench.training.numba.cache` therefore keys
the engine's whole cache on all of their sources, and deletes it when one changed.
"""

from __future__ import annotations

from pgbench.training.numba.kernels import rollout
from pgbench.training.numba.streams import jit, mt_uniform_float32, reset_state
from pgbench.training.numba.update import learn
from pgbench.training.rollout import FIRST_NOISE_CHUNK

# ilog: the run's integer state, shared between calls
ENV_STEPS, EPISODES, UPDATES, SOLVED, SOLVED_100, RING, STOP = 0, 1, 2, 3, 6, 9, 10


# SOLVED and SOLVED_100 hold (update, episode, env_steps) of each rule's solve point, -1 before;
# RING: episodes in the ring of the last returns so far (at most its length); STOP: 0 to go on,
# 1 solved, 2 budget
ILOG_SIZE = 11


STOP_REASONS = (None, "solved", "budget")


# flog: running reward, EMA state
RUNNING, EMA = 0, 1


@jit
def train_rounds(net, kernels, mt, seeds, reset_low, reset_width, u, state, steps, alive,
                 buffers, lengths, terminated, truncated, phys, euler, T, ilog, flog, ring,
                 returns, baseline, gamma, ema_weight, normalize, lr, rules, stop_when_solved,
                 total_steps, ep_int, ep_float, up_float, max_updates, work):
    """Play rounds from the run's state until it stops, ``max_updates`` updates are made, or
    fewer than ``n`` reset seeds are left in ``seeds``; returns (rounds played, seeds used).

    ``net``: (flat, W0, b0, W1, b1, m, v, grad); ``kernels``: (act, use_drop, keep, scale,
    uniforms per step); ``buffers``: (obs, actions, drop, z, h, logits) of a round;
    ``rules``: (has threshold, threshold, window * threshold, running-reward weight, 1 - that
    weight, window, grace episodes). Row ``r`` of ``ep_int`` (update, episode, env_steps,
    length, terminated, truncated) and ``ep_float`` (return, running reward) is the call's
    ``r``-th episode; of ``up_float`` (loss, grad norm, entropy) its ``r``-th update.
    ``work``: the update's scratch arrays (:func:`pgbench.training.numba.update.workspace`)."""
    flat, W0, b0, W1, b1, m, v, grad = net
    act, use_drop, keep, scale, U = kernels
    obs, actions, drop, z, h, logits = buffers
    has_threshold, threshold, window_threshold, w_new, w_old, window, grace = rules
    n = state.shape[0]
    used = 0
    rounds = 0
    while ilog[STOP] == 0 and rounds < max_updates and used + n <= seeds.shape[0]:
        for i in range(n):
            reset_state(seeds[used + i], reset_low, reset_width, state[i])
            steps[i] = 0
            alive[i] = True
        used += n
        t, live = 0, True
        while live:
            t_end = min(max(2 * t, FIRST_NOISE_CHUNK), T)
            chunk = u[:(t_end - t) * n * U]
            mt_uniform_float32(mt, chunk)
            t, live = rollout(W0, b0, W1, b1, act, state, steps, alive, t, t_end,
                              chunk.reshape((t_end - t, n, U)), keep, scale, obs, actions,
                              drop, z, h, logits, lengths, terminated, truncated, phys,
                              euler, T)
        for i in range(n):  # pgbench.runs.log.record_episode; reward 1 per step
            length = lengths[i]
            ret = float(length)
            ring[ilog[EPISODES] % window] = ret
            ilog[RING] = min(ilog[RING] + 1, window)
            ilog[ENV_STEPS] += length
            flog[RUNNING] = w_new * ret + w_old * flog[RUNNING]
            r = rounds * n + i
            ep_int[r, 0], ep_int[r, 1] = ilog[UPDATES], ilog[EPISODES]
            ep_int[r, 2] = ilog[ENV_STEPS]
            ep_int[r, 3], ep_int[r, 4], ep_int[r, 5] = length, terminated[i], truncated[i]
            ep_float[r, 0], ep_float[r, 1] = ret, flog[RUNNING]
            if has_threshold:
                if ilog[SOLVED + 1] < 0 and flog[RUNNING] >= threshold:
                    ilog[SOLVED], ilog[SOLVED + 1] = ilog[UPDATES], ilog[EPISODES]
                    ilog[SOLVED + 2] = ilog[ENV_STEPS]
                if ilog[SOLVED_100 + 1] < 0 and ilog[EPISODES] + 1 >= window:
                    total = 0.0  # integer returns: exact in any order
                    for k in range(ilog[RING]):
                        total += ring[k]
                    if total >= window_threshold:
                        ilog[SOLVED_100], ilog[SOLVED_100 + 1] = ilog[UPDATES], ilog[EPISODES]
                        ilog[SOLVED_100 + 2] = ilog[ENV_STEPS]
            ilog[EPISODES] += 1
        loss, norm, entropy, flog[EMA] = learn(
            flat, m, v, grad, W1, act, obs, actions, drop, use_drop, z, h, logits, lengths,
            returns, baseline, gamma, flog[EMA], ema_weight, normalize,
            float(ilog[UPDATES] + 1), lr, work)
        up_float[rounds, 0], up_float[rounds, 1], up_float[rounds, 2] = loss, norm, entropy
        ilog[UPDATES] += 1
        rounds += 1
        # pgbench.runs.log.stop_reason
        if stop_when_solved and ilog[SOLVED + 1] >= 0 and (
                ilog[SOLVED_100 + 1] >= 0 or ilog[EPISODES] - ilog[SOLVED + 1] > grace):
            ilog[STOP] = 1
        elif ilog[ENV_STEPS] >= total_steps:
            ilog[STOP] = 2
    return rounds, used
