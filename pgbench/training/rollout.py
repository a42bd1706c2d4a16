"""Collect whole episodes for a group of seeds, each seed on its own clock.

Seed ``g`` owns sub-envs ``g*n .. g*n+n-1``. A *round* of a seed resets its ``n`` sub-envs with
seeds drawn from the seed's own generator and steps them until each has finished one episode;
the collector steps every seed that is in a round at once (one policy forward, one env step per
*tick*), and a seed whose round ended waits, stepping nothing and drawing nothing, until it is
given a new round. So a seed's episodes depend on its own generators and policy only, never on
when the other seeds of its group finish theirs, and a trainer may update each seed as soon as
its own batch is complete.

Actions are sampled under ``torch.inference_mode()`` from noise drawn per seed in chunks at fixed
steps of its round (see :func:`noise_chunk_end`); the log-probabilities are recomputed in one
batch at update time, with the dropout masks the actions were sampled under.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgbench.envs.registry import check_env_id
from pgbench.envs.subenvs import SubEnvs
from pgbench.rl.policies import PolicySpec, sample_actions

FIRST_NOISE_CHUNK = 16  # steps of action noise / dropout masks drawn at a round's first step


@dataclass
class Batch:
    """Episodes of a group of S seeds, E episode slots each, padded to T steps (the longest).

    obs ``(S, E, T, obs_dim)``; actions ``(S, E, T)`` or ``(S, E, T, act_dim)``; rewards and
    mask ``(S, E, T)`` (NumPy); terminated, truncated, lengths ``(S, E)``; final_obs
    ``(S, E, obs_dim)`` (the observation after the last step, for bootstrapping); dropout_masks
    a list of ``(S, E, T, hidden_l)`` or None. Empty slots (a seed that sat out a round) have
    length 0 and an all-False mask.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: np.ndarray
    mask: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    lengths: np.ndarray
    final_obs: torch.Tensor
    dropout_masks: list[torch.Tensor] | None

    @staticmethod
    def concat(rounds: list["Batch"], axis: int = 1) -> "Batch":
        """Join batches along the episode axis (``axis=1``: rounds of the same seeds) or the seed
        axis (``axis=0``: seeds with as many episode slots), padding time to the longest."""
        if len(rounds) == 1:
            return rounds[0]
        T = max(b.mask.shape[-1] for b in rounds)

        def pad_t(x, axis):  # pad the time axis of a tensor or array to T
            extra = T - x.shape[axis]
            if extra == 0:
                return x
            if isinstance(x, np.ndarray):
                widths = [(0, 0)] * x.ndim
                widths[axis] = (0, extra)
                return np.pad(x, widths)
            shape = list(x.shape)
            shape[axis] = extra
            return torch.cat([x, x.new_zeros(shape)], dim=axis)

        masks = None
        if rounds[0].dropout_masks is not None:
            masks = [torch.cat([pad_t(b.dropout_masks[i], 2) for b in rounds], axis)
                     for i in range(len(rounds[0].dropout_masks))]
        return Batch(
            obs=torch.cat([pad_t(b.obs, 2) for b in rounds], axis),
            actions=torch.cat([pad_t(b.actions, 2) for b in rounds], axis),
            rewards=np.concatenate([pad_t(b.rewards, 2) for b in rounds], axis),
            mask=np.concatenate([pad_t(b.mask, 2) for b in rounds], axis),
            terminated=np.concatenate([b.terminated for b in rounds], axis),
            truncated=np.concatenate([b.truncated for b in rounds], axis),
            lengths=np.concatenate([b.lengths for b in rounds], axis),
            final_obs=torch.cat([b.final_obs for b in rounds], axis),
            dropout_masks=masks,
        )


class Collector:
    """Rounds of episodes for the seeds of a group; see the module docstring.

    ``start(gs)`` begins a round for seeds ``gs``; ``tick(params, rows)`` steps once every seed
    of ``rows`` that is in a round (``params`` hold the weights of ``rows``, in that order) and
    returns the seeds whose round ended; ``take(gs)`` hands over their finished rounds as one
    :class:`Batch`. ``dropout`` gives each seed's dropout probability (default: the spec's).
    """

    def __init__(self, env_id: str, spec: PolicySpec, envs_per_seed: int, seed_sequences,
                 dropout=None):
        self.spec = spec
        self.n = n = envs_per_seed
        # Per seed: a NumPy generator for env reset seeds, a torch generator for action noise
        # and dropout masks. Both come from the seed's own SeedSequence.
        self.reset_rngs = [np.random.default_rng(ss) for ss in seed_sequences["env"]]
        self.noise_gens = [torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
                           for ss in seed_sequences["noise"]]
        self.G = G = len(self.reset_rngs)
        N = G * n
        self.env = SubEnvs(env_id, N)
        self.T = T = check_env_id(env_id).max_episode_steps
        self.p = np.full(G, spec.dropout) if dropout is None else np.asarray(dropout, dtype=float)
        self.widths = list(spec.hidden) if (self.p > 0).any() else []
        if not spec.discrete:
            self.low, self.high = self.env.single_action_space.low, self.env.single_action_space.high
        # Sub-env-major buffers of the running rounds: row e*T + t is sub-env e's step t. Each
        # tick writes one row per stepping sub-env; a finished round stays until taken (or is
        # copied out when its seed starts another round first).
        d = spec.obs_dim
        self.obs = np.zeros((N * T, d), dtype=np.float32)
        self.act = (np.zeros(N * T, dtype=np.int64) if spec.discrete
                    else np.zeros((N * T, spec.act_dim), dtype=np.float32))
        self.rew = np.zeros(N * T)
        self.noise = torch.zeros(N * T, spec.noise_dim)
        self.drop = [torch.ones(N * T, h) for h in self.widths]  # seeds without dropout: ones
        self.cur = np.zeros((N, d), dtype=np.float32)  # each sub-env's current observation
        self.t = np.zeros(G, dtype=np.int64)  # each seed's step in its round
        self.chunk_end = np.zeros(G, dtype=np.int64)  # where its current chunk of noise ends
        self.running = np.zeros(G, dtype=bool)  # in a round
        self.alive = np.zeros(N, dtype=bool)  # the sub-env's episode goes on
        self.lengths = np.zeros(N, dtype=np.int64)
        self.terminated = np.zeros(N, dtype=bool)
        self.truncated = np.zeros(N, dtype=bool)
        self.final_obs = np.zeros((N, d), dtype=np.float32)
        self.rounds: list[list[Batch]] = [[] for _ in range(G)]  # copied out, not yet taken
        self.in_buffers = np.zeros(G, dtype=bool)  # a finished round, not taken, in the buffers
        self._rows_key, self._sub = None, None

    def close(self) -> None:
        self.env.close()

    # -- rounds -----------------------------------------------------------------------------
    def start(self, gs) -> None:
        """Begin a round for each seed of ``gs`` (none may be in one)."""
        n = self.n
        gs = np.asarray(gs, dtype=np.int64)
        if len(gs) == 0:
            return
        for g in gs[self.in_buffers[gs]].tolist():  # its last round is needed: copy it out first
            self.rounds[g].append(self._gather(np.array([g])))
        self.in_buffers[gs] = False
        sub = (gs[:, None] * n + np.arange(n)).ravel()
        seeds = [s for g in gs.tolist() for s in self.reset_rngs[g].integers(0, 2**31 - 1, size=n)]
        self.cur[sub] = self.env.reset(sub, seeds)
        self.running[gs] = True
        self.t[gs] = 0
        self.chunk_end[gs] = 0
        self.alive[sub] = True
        self.lengths[sub] = 0
        self.terminated[sub] = self.truncated[sub] = False

    def tick(self, params, rows: np.ndarray) -> np.ndarray:
        """One step of every seed of ``rows`` that is in a round; the seeds whose round ended."""
        spec, n, T = self.spec, self.n, self.T
        step_g = rows[self.running[rows]]
        if len(step_g) == 0:
            return step_g
        due = step_g[self.t[step_g] == self.chunk_end[step_g]]
        if len(due):
            self._draw(due)
        key = rows.tobytes()
        if key != self._rows_key:  # the sub-envs of `rows`, cached while the rows stay the same
            self._rows_key, self._sub = key, (rows[:, None] * n + np.arange(n)).ravel()
        sub, A = self._sub, len(rows)
        t_sub = np.repeat(self.t[rows], n) if n > 1 else self.t[rows]
        flat = sub * T + np.minimum(t_sub, T - 1)  # seeds not in a round: any row will do
        index = torch.from_numpy(flat)
        obs = torch.from_numpy(self.cur[sub] if A * n < len(self.cur) else self.cur)
        noise = self.noise.index_select(0, index).view(A, n, spec.noise_dim)
        masks = [m.index_select(0, index).view(A, n, -1) for m in self.drop] or None
        with torch.inference_mode():
            actions = sample_actions(params, obs.view(A, n, spec.obs_dim), spec, noise, masks)
        live = self.alive[sub]  # the sub-envs whose episode goes on (none of a waiting seed)
        e, at = sub[live], flat[live]
        a = actions.numpy().reshape(A * n, *actions.shape[2:])[live]
        self.obs[at] = self.cur[e]
        self.act[at] = a  # the policy's action, before any clipping to the bounds
        if not spec.discrete:
            a = np.clip(a, self.low, self.high)
        obs_next, reward, term, trunc = self.env.step(e, a)
        self.rew[at] = reward
        self.cur[e] = obs_next
        self.t[step_g] += 1
        ended = term | trunc
        if not ended.any():
            return step_g[:0]
        done = e[ended]
        self.terminated[done] = term[ended]
        self.truncated[done] = ~term[ended]
        self.lengths[done] = at[ended] - done * T + 1
        self.final_obs[done] = obs_next[ended]
        self.alive[done] = False
        gs = np.unique(done // n)
        if n > 1:
            gs = gs[~self.alive.reshape(self.G, n)[gs].any(1)]
        for g in gs.tolist():
            self._finish(g)
        return gs

    def _draw(self, gs: np.ndarray) -> None:
        """The next chunk of action noise (and dropout masks) of each seed of ``gs``, drawn from
        the seed's own generator. Discrete policies draw the action's uniform and the dropout
        uniforms in one call."""
        spec, n, T = self.spec, self.n, self.T
        for g, t0, p in zip(gs.tolist(), self.t[gs].tolist(), self.p[gs].tolist()):
            t1 = noise_chunk_end(t0, T)
            c, gen = t1 - t0, self.noise_gens[g]
            widths = self.widths if p > 0 else []
            uniforms = (1 if spec.discrete else 0) + sum(widths)
            u = torch.rand(c, n, uniforms, generator=gen) if uniforms else None
            noise = u[..., :1] if spec.discrete else torch.randn(c, n, spec.act_dim, generator=gen)
            masks = []
            if widths:
                keep = 1.0 - p
                masks = torch.split((u[..., uniforms - sum(widths):] < keep).float() / keep,
                                    widths, dim=-1)
            if n == 1:  # the seed's rows are one run of the buffers
                rows = slice(g * T + t0, g * T + t1)
                self.noise[rows] = noise[:, 0]
                for buf, m in zip(self.drop, masks):
                    buf[rows] = m[:, 0]
            else:  # rows of its sub-envs at steps t0 .. t1 - 1, sub-env-major
                rows = torch.from_numpy(((g * n + np.arange(n))[:, None] * T
                                         + np.arange(t0, t1)).ravel())
                self.noise[rows] = noise.transpose(0, 1).reshape(-1, spec.noise_dim)
                for buf, m in zip(self.drop, masks):
                    buf[rows] = m.transpose(0, 1).reshape(-1, buf.shape[1])
            self.chunk_end[g] = t1

    def _finish(self, g: int) -> None:
        """Seed ``g``'s round ended: its steps stay in the buffers until taken or restarted."""
        self.running[g] = False
        self.in_buffers[g] = True

    def round_length(self, g: int) -> int:
        """Steps of seed ``g``'s last round (its longest episode)."""
        return int(self.t[g])

    def finished(self, g: int) -> tuple[int, int]:
        """(episodes, env steps) in seed ``g``'s finished rounds not yet taken."""
        rounds = self.rounds[g]
        episodes = len(rounds) * self.n
        steps = int(sum(r.lengths.sum() for r in rounds))
        if self.in_buffers[g]:
            episodes += self.n
            steps += int(self.lengths[g * self.n:(g + 1) * self.n].sum())
        return episodes, steps

    def _gather(self, gs: np.ndarray) -> Batch:
        """The rounds in the buffers of seeds ``gs`` as a batch ``(len(gs), n, T)``, ``T`` the
        longest of them, zero past each episode's end."""
        n, T = self.n, max(1, int(self.t[gs].max()))
        sub = gs[:, None] * n + np.arange(n)  # (S, n)
        lengths = self.lengths[sub]
        valid = np.arange(T) < lengths[..., None]  # (S, n, T)
        index = sub[..., None] * self.T + np.arange(T)

        def rows(buf):  # (S, n, T, ...) of a (N*T, ...) buffer
            x = buf[index]
            return np.where(valid.reshape(*valid.shape, *([1] * (x.ndim - 3))), x, 0).astype(
                buf.dtype, copy=False)

        masks = None
        if self.widths:  # the big ones: gathered in torch, and zeroed by a product (they are >= 0)
            flat, keep = torch.from_numpy(index.ravel()), torch.from_numpy(valid[..., None]).float()
            masks = [m.index_select(0, flat).view(*valid.shape, -1).mul_(keep) for m in self.drop]
        return Batch(
            obs=torch.from_numpy(rows(self.obs)), actions=torch.from_numpy(rows(self.act)),
            rewards=rows(self.rew), mask=valid, terminated=self.terminated[sub],
            truncated=self.truncated[sub], lengths=lengths,
            final_obs=torch.from_numpy(self.final_obs[sub]),
            dropout_masks=masks,
        )

    def take(self, gs) -> Batch:
        """The finished rounds of seeds ``gs`` as one batch ``(len(gs), E, T)``, in round order,
        time padded to the longest episode. Every seed must have as many rounds."""
        gs = np.asarray(gs, dtype=np.int64)
        if not any(self.rounds[g] for g in gs.tolist()):  # one round each, in the buffers
            batch = self._gather(gs)
        else:
            per_seed = [Batch.concat(self.rounds[g] + ([self._gather(np.array([g]))]
                                                        if self.in_buffers[g] else []))
                        for g in gs.tolist()]
            if len({b.mask.shape[1] for b in per_seed}) != 1:
                raise ValueError("seeds taken together need as many episodes each")
            batch = Batch.concat(per_seed, axis=0)
            for g in gs.tolist():
                self.rounds[g] = []
        self.in_buffers[gs] = False
        return batch

    def collect_round(self, params, gs=None) -> Batch:
        """One round of each seed of ``gs`` (default: all), stepped together until each ended;
        ``params`` hold every seed's weights."""
        rows = np.arange(self.G)
        gs = rows if gs is None else np.asarray(gs, dtype=np.int64)
        self.start(gs)
        while self.running[gs].any():
            self.tick(params, rows)
        return self.take(gs)


def noise_chunk_end(t: int, limit: int) -> int:
    """Where the chunk of noise drawn at step ``t`` ends: chunks are ``[0, 16)``, then
    ``[16, 32)``, ``[32, 64)``, ... (each as long as the steps before it), cut at ``limit``.

    Short episodes draw little noise they do not use; long ones few chunks. The schedule is fixed,
    so a seed's draws never depend on the other seeds of its group.

    >>> [noise_chunk_end(t, 100) for t in (0, 16, 32, 64)]
    [16, 32, 64, 100]
    """
    return min(max(2 * t, FIRST_NOISE_CHUNK), limit)
