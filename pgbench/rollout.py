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
from pgbench.policies import PolicySpec, draw_dropout_masks, sample_actions

NOISE_CHUNK = 64  # steps of action noise / dropout masks drawn per call to a generator


@dataclass
class Batch:
    """Episodes of a group of S seeds, E episode slots each, padded to T steps.

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
        """One episode per sub-env of each participating seed; ``participating (S,)`` bool."""
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
        # rewards are derived from the episode lengths after the loop.
        obs_buf = np.zeros((T, E, spec.obs_dim), dtype=np.float32)
        obs_by_seed = torch.from_numpy(obs_buf).view(T, S, n, spec.obs_dim)  # shares obs_buf
        act_buf = (np.zeros((T, E), dtype=np.int64) if spec.discrete
                   else np.zeros((T, E, spec.act_dim), dtype=np.float32))
        rewards = np.zeros((T, E))
        noise_buf = torch.zeros(T, S, n, spec.noise_dim)
        drop_bufs = ([torch.ones(T, S, n, h) for h in spec.hidden] if spec.dropout > 0 else None)
        alive = np.repeat(np.asarray(participating, dtype=bool), n)
        terminated = np.zeros(E, dtype=bool)
        truncated = np.zeros(E, dtype=bool)
        lengths = np.zeros(E, dtype=np.int64)
        final_obs = np.zeros((E, spec.obs_dim), dtype=np.float32)
        low = high = None
        if not spec.discrete:
            low, high = venv.single_action_space.low, venv.single_action_space.high

        with torch.inference_mode():
            for t in range(T):
                if t % NOISE_CHUNK == 0:
                    self._draw_noise(t, alive.reshape(S, n).any(1), noise_buf, drop_bufs)
                obs_buf[t] = obs_np  # casts to float32 where the env gives float64
                masks_t = None if drop_bufs is None else [m[t] for m in drop_bufs]
                actions = sample_actions(params, obs_by_seed[t], spec, noise_buf[t], masks_t)
                a_np = actions.numpy().reshape(act_buf.shape[1:])
                act_buf[t] = a_np  # the policy's action, before any clipping to the bounds
                if not spec.discrete:
                    a_np = np.clip(a_np, low, high)
                obs_np, r, term, trunc = self.step(a_np)
                rewards[t] = r
                ended = alive & (term | trunc)
                if ended.any():
                    terminated[ended] = term[ended]
                    truncated[ended] = ~term[ended]
                    lengths[ended] = t + 1
                    final_obs[ended] = obs_np[ended]
                    alive &= ~ended
                    if not alive.any():
                        break

        # Steps after a sub-env's episode ended (and all steps of a seed that sat out) belong
        # to no episode: masked, with reward 0.
        valid = np.arange(T)[:, None] < lengths[None, :]
        rewards = np.where(valid, rewards, 0.0)

        # Time stays padded to the env's step limit T, not to this round's longest episode:
        # the update's reductions then run over the same shapes whichever seeds share the
        # group, which keeps each seed's floating-point results identical to a run alone.
        def by_episode(x):  # (T, S, n, ...) -> (S, n, T, ...)
            return x.movedim(0, 2).contiguous()

        def np_by_episode(x):  # (T, E) -> (S, n, T)
            return np.ascontiguousarray(x.T.reshape(S, n, T))

        return Batch(
            obs=by_episode(obs_by_seed),
            actions=by_episode(torch.from_numpy(act_buf).view(T, S, n, *act_buf.shape[2:])),
            rewards=np_by_episode(rewards),
            mask=np_by_episode(valid),
            terminated=terminated.reshape(S, n),
            truncated=truncated.reshape(S, n),
            lengths=lengths.reshape(S, n),
            final_obs=torch.from_numpy(final_obs).view(S, n, spec.obs_dim),
            dropout_masks=None if drop_bufs is None else [by_episode(m) for m in drop_bufs],
        )

    def _draw_noise(self, t, seed_alive, noise_buf, drop_bufs):
        """Draw the next chunk of each live seed's noise from that seed's own generator."""
        T = noise_buf.shape[0]  # buffers are step-major: (T, S, n, ...)
        c = min(NOISE_CHUNK, T - t)
        for k, g in enumerate(self.active):
            if not seed_alive[k]:
                continue
            gen = self.noise_gens[g]
            if self.spec.discrete:
                noise_buf[t:t + c, k] = torch.rand(c, self.n, 1, generator=gen)
            else:
                noise_buf[t:t + c, k] = torch.randn(c, self.n, self.spec.act_dim, generator=gen)
            if drop_bufs is not None:
                for buf, m in zip(drop_bufs, draw_dropout_masks(self.spec, (c, self.n), gen)):
                    buf[t:t + c, k] = m
