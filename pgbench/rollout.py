"""Collect whole episodes for a group of seeds through one Gymnasium vector env.

A *round* resets every sub-env with a seed drawn from its own seed's generator and steps all of
them until each has finished one episode. Steps after a sub-env's episode ended (an auto-reset,
or CartPole moving on past its end; see ``envs.lockstep_step``) are masked out: they belong to
no episode.
Actions are sampled under ``torch.inference_mode()`` from noise pre-drawn per seed; the
log-probabilities are recomputed in one batch at update time, with the dropout masks the actions
were sampled under.

Seed ``k`` owns sub-envs ``k*N .. k*N+N-1``. A seed that does not take part in a round (its
batch is already full) draws nothing from its generators, so its numbers never depend on which
other seeds share the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pgbench.envs import check_env_id, lockstep_step, make_vector_env, reset_with_seeds
from pgbench.policies import PolicySpec, sample_actions

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
    def concat(rounds: list["Batch"]) -> "Batch":
        """Join rounds along the episode axis, padding time to the longest."""
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
            masks = [torch.cat([pad_t(b.dropout_masks[i], 2) for b in rounds], 1)
                     for i in range(len(rounds[0].dropout_masks))]
        return Batch(
            obs=torch.cat([pad_t(b.obs, 2) for b in rounds], 1),
            actions=torch.cat([pad_t(b.actions, 2) for b in rounds], 1),
            rewards=np.concatenate([pad_t(b.rewards, 2) for b in rounds], 1),
            mask=np.concatenate([pad_t(b.mask, 2) for b in rounds], 1),
            terminated=np.concatenate([b.terminated for b in rounds], 1),
            truncated=np.concatenate([b.truncated for b in rounds], 1),
            lengths=np.concatenate([b.lengths for b in rounds], 1),
            final_obs=torch.cat([b.final_obs for b in rounds], 1),
            dropout_masks=masks,
        )


class GroupCollector:
    """Collects rounds of episodes for the seeds of a group that are still training."""

    def __init__(self, env_id: str, spec: PolicySpec, envs_per_seed: int, seed_sequences):
        self.env_id = env_id
        self.spec = spec
        self.n = envs_per_seed
        # Per seed: a NumPy generator for env reset seeds, a torch generator for action noise
        # and dropout masks. Both come from the seed's own SeedSequence.
        self.reset_rngs = [np.random.default_rng(ss) for ss in seed_sequences["env"]]
        self.noise_gens = [torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
                           for ss in seed_sequences["noise"]]
        self.active: list[int] = list(range(len(self.reset_rngs)))
        self.venv = None
        self.step = None
        self.max_steps = None

    def set_active(self, active: list[int]) -> None:
        """Keep only these seeds (indices into the original group)."""
        if active != self.active:
            self.active = list(active)
            self._close()

    def _env(self):
        if self.venv is None:
            self.venv = make_vector_env(self.env_id, len(self.active) * self.n)
            self.step = lockstep_step(self.venv)
            self.max_steps = check_env_id(self.env_id).max_episode_steps
        return self.venv

    def _close(self):
        if self.venv is not None:
            self.venv.close()
            self.venv = self.step = None

    def close(self):
        self._close()

    def collect_round(self, params, participating: np.ndarray) -> Batch:
        """One episode per sub-env of each participating seed; ``participating (S,)`` bool.

        The batch's time axis is this round's longest episode (the rows past an episode's end
        are masked). Whatever reduces over time must not depend on that length, which other
        seeds set: the trainer pads its NumPy estimators to the env's step limit and computes
        each seed's update on its own valid steps (see ``pgbench.train.update_passes``).
        """
        venv = self._env()
        spec, n, S = self.spec, self.n, len(self.active)
        E, T = S * n, self.max_steps
        seeds = np.zeros(E, dtype=np.int64)
        for k, g in enumerate(self.active):
            if participating[k]:
                seeds[k * n:(k + 1) * n] = self.reset_rngs[g].integers(0, 2**31 - 1, size=n)
        obs_np = reset_with_seeds(venv, seeds)

        # The step loop is pure overhead for networks this small (a few microseconds per op), so
        # it does as little as it can per step: step-major NumPy buffers take one row copy per
        # step and become torch tensors once per round; the validity mask and the masking of
        # rewards are derived from the episode lengths after the loop. np.zeros maps its pages
        # lazily, so a buffer sized for the step limit costs only the steps a round takes.
        obs_buf = np.zeros((T, E, spec.obs_dim), dtype=np.float32)
        obs_by_seed = torch.from_numpy(obs_buf).view(T, S, n, spec.obs_dim)  # shares obs_buf
        act_buf = (np.zeros((T, E), dtype=np.int64) if spec.discrete
                   else np.zeros((T, E, spec.act_dim), dtype=np.float32))
        rewards = np.zeros((T, E))
        noise_chunks, drop_chunks = [], []
        alive = np.repeat(np.asarray(participating, dtype=bool), n)
        terminated = np.zeros(E, dtype=bool)
        truncated = np.zeros(E, dtype=bool)
        lengths = np.zeros(E, dtype=np.int64)
        final_obs = np.zeros((E, spec.obs_dim), dtype=np.float32)
        low = high = None
        if not spec.discrete:
            low, high = venv.single_action_space.low, venv.single_action_space.high

        t = chunk_start = chunk_end = 0
        with torch.inference_mode():
            while alive.any() and t < T:
                if t == chunk_end:
                    chunk_start, chunk_end = t, noise_chunk_end(t, T)
                    noise, drop = self._draw_noise(chunk_end - t, alive.reshape(S, n).any(1))
                    noise_chunks.append(noise)
                    drop_chunks.append(drop)
                i = t - chunk_start
                obs_buf[t] = obs_np  # casts to float32 where the env gives float64
                masks_t = None if drop is None else [m[i] for m in drop]
                actions = sample_actions(params, obs_by_seed[t], spec, noise[i], masks_t)
                a_np = actions.numpy().reshape(act_buf.shape[1:])
                act_buf[t] = a_np  # the policy's action, before any clipping to the bounds
                if not spec.discrete:
                    a_np = np.clip(a_np, low, high)
                obs_np, r, term, trunc = self.step(a_np)
                rewards[t] = r
                t += 1
                ended = alive & (term | trunc)
                if ended.any():
                    terminated[ended] = term[ended]
                    truncated[ended] = ~term[ended]
                    lengths[ended] = t
                    final_obs[ended] = obs_np[ended]
                    alive &= ~ended
        T = max(t, 1)  # this round's longest episode

        # Steps after a sub-env's episode ended (and all steps of a seed that sat out) belong
        # to no episode: masked, with reward 0.
        valid = np.arange(T)[:, None] < lengths[None, :]
        rewards = np.where(valid, rewards[:T], 0.0)

        def by_episode(x):  # (T, S, n, ...) -> (S, n, T, ...)
            return x[:T].movedim(0, 2).contiguous()

        def np_by_episode(x):  # (T, E) -> (S, n, T)
            return np.ascontiguousarray(x.T.reshape(S, n, T))

        drop_bufs = None
        if spec.dropout > 0:
            drop_bufs = [by_episode(torch.cat([c[layer] for c in drop_chunks]))
                         for layer in range(len(spec.hidden))]
        return Batch(
            obs=by_episode(obs_by_seed),
            actions=by_episode(torch.from_numpy(act_buf).view(-1, S, n, *act_buf.shape[2:])),
            rewards=np_by_episode(rewards),
            mask=np_by_episode(valid),
            terminated=terminated.reshape(S, n),
            truncated=truncated.reshape(S, n),
            lengths=lengths.reshape(S, n),
            final_obs=torch.from_numpy(final_obs).view(S, n, spec.obs_dim),
            dropout_masks=drop_bufs,
        )

    def _draw_noise(self, c: int, seed_alive):
        """The next ``c`` steps of each live seed's noise, drawn from that seed's own generator.

        Returns ``noise (c, S, n, noise_dim)`` and, with dropout, one ``(c, S, n, hidden_l)`` mask
        per hidden layer (else None), scaled by ``1 / (1 - p)``. A seed that is not alive draws
        nothing: its noise is zero, its masks keep every unit.
        Discrete policies draw the action's uniform and the dropout uniforms in one call per seed.
        """
        spec, S, n = self.spec, len(self.active), self.n
        widths = list(spec.hidden) if spec.dropout > 0 else []
        uniforms = (1 if spec.discrete else 0) + sum(widths)
        u = torch.zeros(c, S, n, uniforms)  # a seed that sits out draws nothing: zeros
        noise = torch.zeros(c, S, n, spec.noise_dim)
        for k, g in enumerate(self.active):
            if not seed_alive[k]:
                continue
            gen = self.noise_gens[g]
            if uniforms:
                u[:, k] = torch.rand(c, n, uniforms, generator=gen)
            if not spec.discrete:
                noise[:, k] = torch.randn(c, n, spec.act_dim, generator=gen)
        if spec.discrete:
            noise = u[..., :1]
        drop = None
        if widths:
            keep = 1.0 - spec.dropout
            parts = torch.split(u[..., uniforms - sum(widths):], widths, dim=-1)
            drop = [(m < keep).float() / keep for m in parts]
        return noise, drop


def noise_chunk_end(t: int, limit: int) -> int:
    """Where the chunk of noise drawn at step ``t`` ends: chunks are ``[0, 16)``, then
    ``[16, 32)``, ``[32, 64)``, ... (each as long as the steps before it), cut at ``limit``.

    Short episodes draw little noise they do not use; long ones few chunks. The schedule is fixed,
    so a seed's draws never depend on the other seeds of its group.

    >>> [noise_chunk_end(t, 100) for t in (0, 16, 32, 64)]
    [16, 32, 64, 100]
    """
    return min(max(2 * t, FIRST_NOISE_CHUNK), limit)
