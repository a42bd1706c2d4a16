"""One update of the torch engine: the advantage each log-probability is weighted by (every
estimator of :mod:`pgbench.rl.estimators`), the surrogate losses, and how a batch's steps are cut
into fixed-width blocks so that a seed computes the same numbers alone and in a group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from pgbench.rl import estimators as est
from pgbench.rl.config import TrainConfig
from pgbench.training.optim import StackedAdam
from pgbench.training.rollout import Batch


def advantages(cfg: TrainConfig, batch: Batch, values, final_values, ema_state, score_sqnorm=None):
    """The weight of each log-probability, ``(S, E, T)``, and the critic's targets.

    ``values (S, E, T)`` and ``final_values (S, E)`` are the critic's estimates (None without a
    critic); ``ema_state (S,)`` is the running baseline's state. Returns
    ``(advantage, value_target, new_ema_state)``. Only the batch's NumPy arrays are read.
    """
    mask, rewards = batch.mask, batch.rewards
    bootstrap = None
    if final_values is not None and cfg.bootstrap_truncated:  # a cut episode goes on: V(s_T)
        bootstrap = np.where(batch.truncated, final_values, 0.0)
    target = None
    if cfg.returns == "gae":
        adv = est.gae(rewards, values, mask, batch.terminated, cfg.gamma, cfg.gae_lambda,
                      final_values)
        target = np.where(mask, adv + values, 0.0)
    else:
        weigh = est.total_return if cfg.returns == "total" else est.reward_to_go
        adv = weigh(rewards, mask, cfg.gamma, bootstrap)
        target = adv.copy()
        if cfg.baseline == "mean":
            adv = adv - est.batch_mean_baseline(adv, mask)[:, None, None]
        elif cfg.baseline == "ema":
            b, ema_state = est.ema_baseline(ema_state, adv, mask, cfg.ema_weight)
            adv = adv - b[:, None, None]
        elif cfg.baseline == "whiten":
            adv = est.whiten_per_episode(adv, mask)
        elif cfg.baseline == "time":
            adv = adv - est.time_baseline(adv, mask)[:, None, :]
        elif cfg.baseline == "optimal":
            b = est.optimal_constant_baseline(est.episode_means(adv, mask), score_sqnorm)
            adv = adv - b[:, None, None]
        elif cfg.baseline == "value":
            adv = adv - values
    if cfg.normalize_advantages:
        adv = est.normalize_advantages(adv, mask)
    return np.where(mask, adv, 0.0), target, ema_state


def policy_loss(cfg, logp, adv, valid, n_episodes, logp_old=None, n_valid=None):
    """Per-seed surrogate losses ``(S,)`` to minimise.

    REINFORCE: ``-(1/N) sum_i sum_t A_it log pi(a_it|s_it)``, the slides' estimator (N episodes).
    PPO: the clipped surrogate averaged over valid steps. ``logp, adv, valid`` are ``(S, B)``; when
    they hold one block of a batch's steps, ``n_valid (S,)`` is the batch's count of valid steps
    (PPO's divisor), and the batch's loss is the sum of its blocks' losses.
    """
    if cfg.loss == "ppo":
        ratio = torch.exp(logp - logp_old)
        clipped = torch.clamp(ratio, 1 - cfg.ppo_clip, 1 + cfg.ppo_clip)
        surrogate = torch.minimum(ratio * adv, clipped * adv) * valid
        if n_valid is None:
            n_valid = valid.sum(1).clamp(min=1)
        return -surrogate.sum(1) / n_valid
    return -(logp * adv * valid).sum(1) / n_episodes


#: Rows (steps) per block of the update's forward and backward passes: enough that the fixed
#: cost of a block's passes is small, few enough that its activations stay in cache. A power of
#: two. It is part of the arithmetic (a seed's gradient adds its blocks' gradients in order), so
#: changing it changes the runs' numbers.
UPDATE_BLOCK_ROWS = 2048


#: The narrowest block: a seed's last block is its remaining steps padded up to a power of two,
#: at least this wide, so that a few widths serve every episode length.
MIN_BLOCK_ROWS = 16


def block_widths(n_steps: int, block_rows: int = UPDATE_BLOCK_ROWS) -> list[int]:
    """The widths of the blocks that hold a seed's ``n_steps`` valid steps in its update.

    Full blocks of ``block_rows``, then the rest padded up to a power of two (at least
    ``MIN_BLOCK_ROWS``). The widths depend on the seed's own steps only, never on the group.

    >>> block_widths(9), block_widths(300), block_widths(5000)
    ([16], [512], [2048, 2048, 1024])
    """
    full, rest = divmod(int(n_steps), block_rows)
    widths = [block_rows] * full
    if rest:
        widths.append(min(block_rows, max(MIN_BLOCK_ROWS, 1 << (rest - 1).bit_length())))
    return widths


@dataclass
class UpdatePass:
    """One forward/backward pass of an update: block ``block`` of each of ``seeds``, which all
    have a block of this width there.

    ``seeds (B,)`` index the group's active seeds; ``index`` holds ``(seed, episode, step)``
    index arrays of shape ``(B, W)`` into the batch's ``(S, E, T, ...)`` tensors, each seed's
    valid steps in their order, padded with the block's first step; ``valid (B, W)`` is 1 on the
    valid steps, 0 on the padding (whose loss terms are therefore exactly zero).
    """

    block: int
    seeds: torch.Tensor
    index: tuple[np.ndarray, np.ndarray, np.ndarray]
    valid: torch.Tensor
    rows: torch.Tensor | None = None  # the seeds' rows in the optimisers (set by the trainer)

    def __post_init__(self):
        self._index_t = tuple(torch.from_numpy(i) for i in self.index)

    def take(self, x):
        """The pass's rows of an ``(S, E, T, ...)`` tensor or array: ``(B, W, ...)``."""
        return x[self._index_t if isinstance(x, torch.Tensor) else self.index]

    def scatter_valid(self, out: np.ndarray, values: np.ndarray) -> None:
        """Write ``values (B, W)`` of the valid steps into ``out (S, E, T)``."""
        keep = self.valid.numpy().astype(bool)
        out[tuple(i[keep] for i in self.index)] = values[keep]


def update_passes(mask: np.ndarray, block_rows: int = UPDATE_BLOCK_ROWS) -> list[UpdatePass]:
    """How an update computes each seed's valid steps, ``mask (S, E, T)``.

    Each seed's valid steps, in (episode, step) order, fill the blocks of
    :func:`block_widths`; seeds whose block ``j`` has the same width share a pass, in the order
    (block, width). A seed therefore computes on tensors of the same shapes, with the same
    numbers, alone and in a group (batched matmuls compute each seed's slice on its own); the
    padding of short episodes to a round's longest costs nothing; and a seed's gradient adds
    its blocks' gradients in block order whichever seeds share the group.

    >>> [(p.block, p.index[2].shape) for p in update_passes(np.arange(20)[None, None] < 18, 16)]
    [(0, (1, 16)), (1, (1, 16))]
    """
    S, E, T = mask.shape
    flat = mask.reshape(S, E * T)
    n_valid = flat.sum(1)
    if E == 1 and n_valid.max(initial=0) <= block_rows:  # one block each (one-episode updates)
        passes = []
        width = np.maximum(MIN_BLOCK_ROWS, 2 ** np.ceil(np.log2(np.maximum(n_valid, 1))).astype(np.int64))
        for w in np.unique(width[n_valid > 0]).tolist():
            seeds = np.flatnonzero((width == w) & (n_valid > 0))
            pos = np.arange(w)
            valid = pos[None, :] < n_valid[seeds, None]  # (B, W)
            index = (np.repeat(seeds[:, None], w, axis=1), np.zeros((len(seeds), w), dtype=np.int64),
                     np.where(valid, pos[None, :], 0))  # padding: the first step
            passes.append(UpdatePass(0, torch.from_numpy(seeds), index,
                                     torch.from_numpy(valid.astype(np.float32))))
        return passes
    # Each seed's flat step indices, valid ones first and in order (one episode: a prefix).
    order = (np.broadcast_to(np.arange(E * T), flat.shape) if E == 1
             else np.argsort(~flat, axis=1, kind="stable"))
    # block_widths of every seed at once: full blocks, then the rest padded to a power of two
    full, rest = np.divmod(n_valid, block_rows)
    rest_width = np.minimum(block_rows, np.maximum(
        MIN_BLOCK_ROWS, 2 ** np.ceil(np.log2(np.maximum(rest, 1))).astype(np.int64)))
    groups: dict[tuple[int, int], np.ndarray] = {}
    for j in range(int((full + (rest > 0)).max(initial=0))):
        width = np.where(j < full, block_rows, np.where((j == full) & (rest > 0), rest_width, 0))
        for w in np.unique(width[width > 0]):
            groups[(j, int(w))] = np.flatnonzero(width == w)
    passes = []
    for (j, w), seeds in sorted(groups.items()):
        start = j * block_rows
        pos = start + np.arange(w)
        valid = pos[None, :] < n_valid[seeds, None]  # (B, W)
        rows = order[seeds[:, None], np.where(valid, pos[None, :], start)]  # padding: 1st step
        index = (np.repeat(seeds[:, None], w, axis=1), rows // T, rows % T)
        passes.append(UpdatePass(j, torch.from_numpy(seeds),
                                 index, torch.from_numpy(valid.astype(np.float32))))
    return passes


def pad_time(batch: Batch, T: int) -> Batch:
    """The batch with the time axis of its NumPy arrays padded (masked, zero reward) to ``T``.

    NumPy's reductions over time (an episode's return, whitening) group their sums by the
    axis's length; padding to a length no other seed sets keeps each seed's numbers the same
    alone and in a group. The torch tensors are not padded: the update gathers its rows from
    them, and the scores of the optimal baseline weight steps past an episode's end by zero.
    """
    extra = T - batch.mask.shape[-1]
    if extra <= 0:
        return batch

    def pad_np(x):  # (S, E, T) -> (S, E, T + extra), zeros after
        out = np.zeros((*x.shape[:2], T), dtype=x.dtype)
        out[:, :, :x.shape[2]] = x
        return out

    return replace(batch, rewards=pad_np(batch.rewards), mask=pad_np(batch.mask))


def _pass_params(opt: StackedAdam, p: UpdatePass, grad: bool = False):
    """The pass's seeds' weights: a ``(B, P)`` copy (a leaf that requires grad when ``grad``)
    and its named views."""
    flat = opt.flat[p.rows].requires_grad_(grad)
    return flat, opt.views(flat)


def _add_grad(total: torch.Tensor, p: UpdatePass, grad: torch.Tensor) -> None:
    """Add a pass's ``(B, P)`` gradient to its seeds' rows of ``total``, block after block."""
    if p.block == 0:
        total[p.seeds] = grad
    else:
        total[p.seeds] += grad
