"""``engine=numba``: REINFORCE on CartPole as compiled loops, one run at a time.

The slides' suite trains a 4-128-2 policy one episode at a time for millions of steps. With
torch, each env step and each update is a few dozen framework calls on arrays of a few hundred
numbers, and their fixed cost is the run time. Here a run's rounds (reset, episode, update, the
episode's row and the stop rules) are played inside Numba-compiled loops
(:mod:`pgbench.training.numba.loop`), with the random numbers drawn there too
(:mod:`pgbench.training.numba.streams`); Python is left with one call per up to
:data:`ROUNDS_PER_CALL` rounds.

What is covered: discrete CartPole (v0, v1), a policy with one hidden layer (relu or tanh,
dropout or none), REINFORCE's loss without a critic (``returns`` total or rtg; ``baseline``
none, mean, ema or whiten; ``normalize_advantages`` either way), whole episodes per update, no
entropy bonus, Adam. :func:`unsupported` names what else a config asks for.

Same algorithm, same random streams: the weights are initialised by
:func:`pgbench.rl.policies.init_policy`, the env resets, action noise and dropout masks are drawn
from the seed's streams in the chunks :class:`pgbench.training.rollout.Collector` draws (the same
numbers NumPy and torch draw, checked once per process), and CartPole
is stepped with Gymnasium's equations (checked bit for bit against Gymnasium once per process).
Only the network's floating-point arithmetic differs from ``engine=torch`` (the order of its
sums: each logit in eight partial sums, the gradient's sums over steps in step order), so a run
follows the torch run's episodes until a
rounding difference first flips an action, and then differs as runs on two machines would. The
engine is a config field, so it is part of each run's hash.
"""

import os

import numba

from pgbench.training.numba.cache import clear_if_stale

# Numba leaves LLVM's SLP vectoriser off by default; the kernels' independent partial sums
# (pgbench.training.numba.kernels.logits_of) need it to share vector registers. It packs
# independent operations only, never reorders a sum, so no number changes. Numba reads it at
# each compilation, and re-reads its whole config from the environment whenever a NUMBA_*
# variable changed (pgbench.core.dispatch sets some): so the environment says it too.
os.environ["NUMBA_SLP_VECTORIZE"] = "1"
numba.config.SLP_VECTORIZE = True

# before any kernel is compiled or loaded: a cache built from other sources is deleted
clear_if_stale()
