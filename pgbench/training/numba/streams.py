"""The random streams of a run, compiled: bit for bit the numbers NumPy and torch draw.

:mod:`pgbench.training.numba.loop` plays a run's episodes without returning to Python, so the draws
that :class:`pgbench.training.numba.reference.EpisodeRun` makes through NumPy and torch are made here:

- ``torch.rand`` on a generator seeded by ``manual_seed``: torch's CPU generator is MT19937,
  seeded from the low 32 bits of the seed (``mt19937::init_with_uint32``), and a float32
  uniform is ``(x & (2**24 - 1)) * 2**-24`` of one 32-bit output (``uniform_real``);
  consecutive calls continue one stream, so chunks drawn here in a row are those of
  consecutive ``torch.rand`` calls.
- CartPoleEnv.reset(seed=s): ``Generator(PCG64(s)).uniform(-0.05, 0.05, 4)``, i.e. NumPy's
  SeedSequence(s) hashed to PCG64's 128-bit state and increment, then four doubles
  ``low + width * (next_uint64 >> 11) * 2**-53``.

:func:`check_streams` compares both with NumPy and torch once per process and refuses to train
if any number differs. IEEE arithmetic only (no fastmath), integer arithmetic wraps as C's.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import torch

from pgbench.core.errors import UserError


def jit(function):
    """As :func:`pgbench.training.numba.kernels.jit` (cached on disk where possible, never fastmath)."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


U32 = np.uint64(0xFFFFFFFF)


MT_N, MT_M = 624, 397


# -- MT19937, as torch's at::mt19937 -------------------------------------------------------
@jit
def mt_seed(seed, state):
    """Seed ``state`` (uint32[625]: 624 words, then the index of the next one) as
    ``torch.Generator().manual_seed(seed)``."""
    x = np.uint64(seed) & U32
    state[0] = np.uint32(x)
    for j in range(1, MT_N):
        x = (np.uint64(1812433253) * (x ^ (x >> np.uint64(30))) + np.uint64(j)) & U32
        state[j] = np.uint32(x)
    state[MT_N] = np.uint32(MT_N)  # the next draw twists first


@jit
def _twist(u, v):
    y = (u & np.uint64(0x80000000)) | (v & np.uint64(0x7FFFFFFF))
    return (y >> np.uint64(1)) ^ (np.uint64(0x9908B0DF) if v & np.uint64(1) else np.uint64(0))


@jit
def _next_state(state):
    for j in range(MT_N - MT_M):
        state[j] = np.uint32(np.uint64(state[j + MT_M])
                             ^ _twist(np.uint64(state[j]), np.uint64(state[j + 1])))
    for j in range(MT_N - MT_M, MT_N - 1):
        state[j] = np.uint32(np.uint64(state[j + MT_M - MT_N])
                             ^ _twist(np.uint64(state[j]), np.uint64(state[j + 1])))
    state[MT_N - 1] = np.uint32(np.uint64(state[MT_M - 1])
                                ^ _twist(np.uint64(state[MT_N - 1]), np.uint64(state[0])))


@jit
def mt_uniform_float32(state, out):
    """Fill ``out`` (float32, any length) as ``torch.rand(out.size, generator=g)`` would.

    The words left in the state are tempered in one block (a loop over two contiguous views,
    in uint32, which the compiler vectorises), then the state twists and the next block
    follows: the same outputs, in the same order, as one word at a time."""
    i = int(state[MT_N])
    scale = np.float32(1.0 / 16777216.0)  # 2**-24, exact
    k, size = 0, out.shape[0]
    while k < size:
        if i >= MT_N:
            _next_state(state)
            i = 0
        m = min(MT_N - i, size - k)
        src, dst = state[i:i + m], out[k:k + m]
        for q in range(m):
            y = src[q]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
            y ^= y >> np.uint32(18)
            dst[q] = np.float32(np.int32(y & np.uint32(0xFFFFFF))) * scale
        i += m
        k += m
    state[MT_N] = np.uint32(i)


# -- SeedSequence(s) -> PCG64 -> uniform(low, low + width, 4), as CartPoleEnv.reset(seed=s) --
@jit
def _hashmix(value, hash_const):
    value = (value ^ hash_const) & U32
    hash_const = (hash_const * np.uint64(0x931E8875)) & U32
    value = (value * hash_const) & U32
    value ^= value >> np.uint64(16)
    return value, hash_const


@jit
def _mix(x, y):
    r = (np.uint64(0xCA01F9DD) * x - np.uint64(0x4973F715) * y) & U32
    return r ^ (r >> np.uint64(16))


@jit
def _mul128(ah, al, bh, bl):
    """(a * b) mod 2**128 of two 128-bit numbers given as (high, low) uint64 halves."""
    a0, a1 = al & U32, al >> np.uint64(32)
    b0, b1 = bl & U32, bl >> np.uint64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> np.uint64(32)) + (p10 & U32) + (p01 & U32)
    hi = p11 + (p10 >> np.uint64(32)) + (p01 >> np.uint64(32)) + (mid >> np.uint64(32))
    lo = (mid << np.uint64(32)) | (p00 & U32)
    return hi + ah * bl + al * bh, lo


@jit
def _add128(ah, al, bh, bl):
    lo = al + bl
    return ah + bh + (np.uint64(1) if lo < al else np.uint64(0)), lo


MULT_HI, MULT_LO = np.uint64(0x2360ED051FC65DA4), np.uint64(0x4385DF649FCCF645)


@jit
def reset_state(seed, low, width, out):
    """``out[:4] = Generator(PCG64(seed)).uniform(low, low + width, 4)`` for ``0 <= seed <
    2**32`` (NumPy's SeedSequence with one word of entropy and its default pool of 4)."""
    # SeedSequence.mix_entropy on the entropy [seed] (padded with zeros to the pool's 4 words)
    pool = np.empty(4, np.uint64)
    hc = np.uint64(0x43B0D7E5)
    for i in range(4):
        pool[i], hc = _hashmix(np.uint64(seed) & U32 if i == 0 else np.uint64(0), hc)
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                value, hc = _hashmix(pool[i_src], hc)
                pool[i_dst] = _mix(pool[i_dst], value)
    # generate_state(4, uint64): 8 words, paired little-endian
    words = np.empty(8, np.uint64)
    hc = np.uint64(0x8B51F9DD)
    for i in range(8):
        value = (pool[i % 4] ^ hc) & U32
        hc = (hc * np.uint64(0x58F38DED)) & U32
        value = (value * hc) & U32
        words[i] = value ^ (value >> np.uint64(16))
    s_hi, s_lo = words[0] | (words[1] << np.uint64(32)), words[2] | (words[3] << np.uint64(32))
    i_hi, i_lo = words[4] | (words[5] << np.uint64(32)), words[6] | (words[7] << np.uint64(32))
    # pcg64_srandom_r: inc = (initseq << 1) | 1; state = 0; step; state += initstate; step
    inc_hi = (i_hi << np.uint64(1)) | (i_lo >> np.uint64(63))
    inc_lo = (i_lo << np.uint64(1)) | np.uint64(1)
    st_hi, st_lo = inc_hi, inc_lo  # 0 * mult + inc
    st_hi, st_lo = _add128(st_hi, st_lo, s_hi, s_lo)
    st_hi, st_lo = _mul128(st_hi, st_lo, MULT_HI, MULT_LO)
    st_hi, st_lo = _add128(st_hi, st_lo, inc_hi, inc_lo)
    for k in range(4):  # next_uint64: step, then the XSL-RR output
        st_hi, st_lo = _mul128(st_hi, st_lo, MULT_HI, MULT_LO)
        st_hi, st_lo = _add128(st_hi, st_lo, inc_hi, inc_lo)
        x = st_hi ^ st_lo
        rot = st_hi >> np.uint64(58)
        x = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
        out[k] = low + width * (float(x >> np.uint64(11)) * (1.0 / 9007199254740992.0))


@functools.cache
def check_streams(count: int = 2000) -> None:
    """Raise UserError unless the compiled draws equal NumPy's and torch's on this machine:
    ``count`` reset seeds (spread over [0, 2**31 - 1), with both ends) and several torch seeds
    and chunk lengths (once per process)."""
    rng = np.random.default_rng(12345)
    seeds = np.concatenate([[0, 1, 2**31 - 2, 2**32 - 1], rng.integers(0, 2**31 - 1, count)])
    out = np.empty(4)
    for s in seeds.tolist():
        theirs = np.random.Generator(np.random.PCG64(s)).uniform(-0.05, 0.05, size=(4,))
        reset_state(s, -0.05, 0.05 - (-0.05), out)
        if not np.array_equal(out, theirs):
            raise UserError(f"engine=numba: the compiled reset of seed {s} differs from NumPy's "
                            "PCG64 on this machine; accepted here: engine=torch")
    state = np.empty(MT_N + 1, np.uint32)
    for seed in (0, 5489, 2**32 + 7, 2**63 - 1, int(rng.integers(2**62))):
        g = torch.Generator().manual_seed(seed)
        mt_seed(seed, state)
        for size in (16, 1, 2064, 700, 5000):
            theirs = torch.rand(size, generator=g).numpy()
            mine = np.empty(size, np.float32)
            mt_uniform_float32(state, mine)
            if not np.array_equal(mine, theirs):
                raise UserError(f"engine=numba: the compiled MT19937 (torch seed {seed}) differs "
                                "from torch.rand on this machine; accepted here: engine=torch")
