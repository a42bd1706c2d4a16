"""Train Stable-Baselines3's PPO, A2C, DQN or sb3-contrib's TRPO as a pgbench run.

The reference implementations the standard algorithms are validated against
(``config/validate.yaml``). A run of ``sb3_ppo`` reads the very settings ``ppo`` reads (same
TrainConfig fields, same :class:`~pgbench.rl.hyper.PPOHyper`), maps them onto SB3's
constructor, trains for ``total_steps`` env steps, and records every finished episode and every
update through :class:`~pgbench.training.algorithms.episodes.EpisodeRecorder`, so the run directory is
pgbench's (run.json, episodes.parquet, updates.parquet) and goes through the same aggregate and
claims path. Needs the ``reference`` extra (``pip install -c constraints.txt -e .[reference]``).

What an "update" is here: one ``collect_rollouts`` + ``train`` cycle of SB3 (a rollout of
``n_steps`` per sub-env for the on-policy methods; ``train_freq`` steps then ``gradient_steps``
gradient steps for DQN). Its losses are the ones SB3 logs for that ``train`` call.
"""

from __future__ import annotations

import math

import torch
from sb3_contrib import TRPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from pgbench.rl.config import TrainConfig
from pgbench.rl.hyper import hyper_of
from pgbench.runs.log import SeedLog
from pgbench.training.algorithms.episodes import EpisodeRecorder

__all__ = ["sb3_model", "train"]

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
# SB3's logger keys per algorithm -> (policy_loss, entropy, value_loss); entropy is -entropy_loss
LOSS_KEYS = {
    "sb3_ppo": ("train/policy_gradient_loss", "train/entropy_loss", "train/value_loss"),
    "sb3_a2c": ("train/policy_loss", "train/entropy_loss", "train/value_loss"),
    "sb3_trpo": ("train/policy_objective", None, "train/value_loss"),
    "sb3_dqn": ("train/loss", None, None),
}


def _linear(start: float, anneal: bool):
    """A constant, or SB3's linear schedule from ``start`` to 0 (progress_remaining 1 -> 0)."""
    return (lambda progress_remaining: progress_remaining * start) if anneal else start


def _grad_norm(value: float) -> float:
    return value if value > 0 else math.inf  # 0 means no clipping in pgbench's settings


def sb3_model(cfg: TrainConfig, env):
    """The SB3 model of ``cfg`` (an ``sb3_*`` variant) on vector env ``env``, seeded."""
    h = hyper_of(cfg)
    common = dict(learning_rate=_linear(cfg.lr, getattr(h, "anneal_lr", False)),
                  gamma=cfg.gamma, seed=cfg.seed, device="cpu", verbose=0)
    act = ACTIVATIONS[cfg.activation]
    if cfg.variant == "sb3_dqn":
        return DQN("MlpPolicy", env, buffer_size=h.buffer_size, learning_starts=h.learning_starts,
                   batch_size=h.batch_size, tau=h.tau, train_freq=h.train_freq,
                   gradient_steps=h.gradient_steps, target_update_interval=h.target_update_interval,
                   exploration_fraction=h.exploration_fraction,
                   exploration_initial_eps=h.exploration_initial_eps,
                   exploration_final_eps=h.exploration_final_eps,
                   max_grad_norm=_grad_norm(h.max_grad_norm),
                   policy_kwargs=dict(net_arch=list(cfg.hidden), activation_fn=act), **common)
    policy_kwargs = dict(net_arch=dict(pi=list(cfg.hidden), vf=list(cfg.hidden)),
                         activation_fn=act, ortho_init=h.ortho_init)
    if not isinstance(env.action_space, __import__("gymnasium").spaces.Discrete):
        policy_kwargs["log_std_init"] = cfg.log_std_init
    onpolicy = dict(n_steps=h.n_steps, gae_lambda=cfg.gae_lambda, policy_kwargs=policy_kwargs,
                    normalize_advantage=cfg.normalize_advantages, **common)
    if cfg.variant == "sb3_ppo":
        return PPO("MlpPolicy", env, batch_size=h.batch_size, n_epochs=cfg.update_epochs,
                   clip_range=_linear(cfg.ppo_clip, h.anneal_clip),
                   clip_range_vf=h.clip_range_vf or None, ent_coef=cfg.entropy_coef,
                   vf_coef=h.vf_coef, max_grad_norm=_grad_norm(h.max_grad_norm),
                   target_kl=h.target_kl or None, **onpolicy)
    if cfg.variant == "sb3_a2c":
        return A2C("MlpPolicy", env, ent_coef=cfg.entropy_coef, vf_coef=h.vf_coef,
                   max_grad_norm=_grad_norm(h.max_grad_norm), use_rms_prop=h.rms_prop,
                   rms_prop_eps=h.rms_prop_eps, **onpolicy)
    if cfg.variant == "sb3_trpo":
        return TRPO("MlpPolicy", env, batch_size=h.batch_size, target_kl=h.target_kl,
                    cg_max_steps=h.cg_max_steps, cg_damping=h.cg_damping,
                    line_search_shrinking_factor=h.line_search_shrink,
                    line_search_max_iter=h.line_search_max_iter,
                    n_critic_updates=h.n_critic_updates, sub_sampling_factor=1, **onpolicy)
    raise ValueError(f"not an SB3 reference variant: {cfg.variant!r}")


class _Recorder(BaseCallback):
    """Feeds SB3's finished episodes (from its Monitor wrappers) and updates to the recorder."""

    def __init__(self, recorder: EpisodeRecorder, keys):
        super().__init__()
        self.recorder, self.keys, self.pending = recorder, keys, False

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done and "episode" in info:
                truncated = bool(info.get("TimeLimit.truncated", False))
                self.recorder.episode(float(info["episode"]["r"]), int(info["episode"]["l"]),
                                      not truncated, truncated, env_steps=self.num_timesteps)
        self.recorder.env_steps = self.num_timesteps
        return True

    def _close_update(self) -> None:
        if self.pending:
            values = self.model.logger.name_to_value
            loss, ent, value = (values.get(k, math.nan) if k else math.nan for k in self.keys)
            self.recorder.end_update(policy_loss=loss, entropy=-ent, value_loss=value,
                                     env_steps=self.num_timesteps)
            self.pending = False

    def _on_rollout_start(self) -> None:
        self._close_update()  # the previous rollout's train() has run: its losses are logged

    def _on_rollout_end(self) -> None:
        self.model.logger.name_to_value.clear()
        self.pending = True

    def _on_training_end(self) -> None:
        self._close_update()


def train(cfg: TrainConfig, progress=None) -> SeedLog:
    """Train ``cfg`` (an ``sb3_*`` variant) for one seed; the log for ``write_run``."""
    h = hyper_of(cfg)
    env = make_vec_env(cfg.env_id, n_envs=cfg.num_envs, seed=cfg.seed, vec_env_cls=DummyVecEnv)
    if getattr(h, "normalize_obs", False) or getattr(h, "normalize_reward", False):
        env = VecNormalize(env, norm_obs=h.normalize_obs, norm_reward=h.normalize_reward,
                           gamma=cfg.gamma)
    # SB3's own update counters are not optimiser steps (PPO's counts epochs): not counted
    recorder = EpisodeRecorder(cfg, cfg.num_envs, progress, count_gradient_steps=False)
    model = sb3_model(cfg, env)
    model.learn(total_timesteps=cfg.total_steps, callback=_Recorder(recorder, LOSS_KEYS[cfg.variant]),
                log_interval=None)
    env.close()
    log = recorder.log
    log.env_steps = model.num_timesteps
    if log.stop_reason is None:
        log.stop_reason = "budget"
    return log
