"""Policies and critics as stacked ("ensemble") MLPs: one set of weights per seed.

A group of S seeds shares one forward pass: every weight has a leading seed axis, and layer
``l`` computes ``h = act(x @ W[l] + b[l])`` with a batched matmul, so seed ``k``'s numbers are
exactly those it would get alone (``torch.bmm`` computes each batch entry independently; a test
checks this). Parameters are plain dicts of leaf tensors so that ``torch.func`` can take
per-episode gradients of the same functions.

Shapes: observations ``(S, B, obs_dim)``; discrete actions ``(S, B)`` (int64); Box actions
``(S, B, act_dim)``; dropout masks a list with one ``(S, B, hidden_l)`` tensor per hidden layer,
already scaled by ``1 / (1 - p)`` (None when dropout is off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PolicySpec:
    """What a policy network looks like (shared by every seed of a group)."""

    obs_dim: int
    act_dim: int  # number of actions (discrete) or action dimensions (Box)
    discrete: bool
    hidden: tuple[int, ...]
    activation: str = "relu"
    dropout: float = 0.0
    log_std_init: float = -0.5

    @property
    def noise_dim(self) -> int:
        """Random numbers needed per action: one uniform (discrete) or act_dim normals."""
        return 1 if self.discrete else self.act_dim


def init_mlp(sizes: list[int], generators: list[torch.Generator], prefix: str = "") -> Params:
    """Weights for each seed, drawn like ``torch.nn.Linear``'s default (U(-1/sqrt(fan_in), ..)).

    Seed ``k``'s weights come from ``generators[k]`` alone. Returns ``{prefix+"W0": (S, in, out),
    prefix+"b0": (S, 1, out), ...}``.
    """
    params: Params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / math.sqrt(fan_in)
        ws, bs = [], []
        for gen in generators:
            ws.append((torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound)
            bs.append((torch.rand(1, fan_out, generator=gen) * 2 - 1) * bound)
        params[f"{prefix}W{layer}"] = torch.stack(ws)
        params[f"{prefix}b{layer}"] = torch.stack(bs)
    return params


def mlp_forward(params: Params, x: torch.Tensor, activation: str, masks=None, prefix: str = ""):
    """``(S, B, in) -> (S, B, out)``; dropout masks multiply each hidden layer's output."""
    # Called once per env step while acting, so it avoids every op it can: the activation
    # runs in place on the fresh baddbmm output (autograd allows it: baddbmm's backward needs
    # its inputs, relu's and tanh's only their output).
    act_ = torch.relu_ if activation == "relu" else torch.tanh_
    h, layer = x, 0
    while (w := params.get(f"{prefix}W{layer}")) is not None:
        b = params[f"{prefix}b{layer}"]
        if w.shape[-1] == 1:
            # A one-column bmm takes a matrix-vector path whose rounding depends on how many
            # seeds are stacked; a zero second column keeps the matrix path, so each seed's
            # result stays the same alone and in a group (tests/test_train.py checks it).
            h = torch.baddbmm(F.pad(b, (0, 1)), h, F.pad(w, (0, 1)))[..., :1]
        else:
            h = torch.baddbmm(b, h, w)
        layer += 1
        if f"{prefix}W{layer}" in params:  # a hidden layer
            h = act_(h)
            if masks is not None:
                h = h * masks[layer - 1]
    return h


def init_policy(spec: PolicySpec, generators: list[torch.Generator]) -> Params:
    sizes = [spec.obs_dim, *spec.hidden, spec.act_dim]
    params = init_mlp(sizes, generators, prefix="pi.")
    if not spec.discrete:
        params["pi.log_std"] = torch.full((len(generators), 1, spec.act_dim), spec.log_std_init)
    return params


def init_value(spec: PolicySpec, generators: list[torch.Generator]) -> Params:
    return init_mlp([spec.obs_dim, *spec.hidden, 1], generators, prefix="v.")


def value_forward(params: Params, obs: torch.Tensor, spec: PolicySpec) -> torch.Tensor:
    """State values ``(S, B)``."""
    return mlp_forward(params, obs, spec.activation, prefix="v.").squeeze(-1)


def policy_output(params: Params, obs, spec: PolicySpec, masks=None) -> torch.Tensor:
    """Logits ``(S, B, n_actions)`` or Gaussian means ``(S, B, act_dim)``."""
    return mlp_forward(params, obs, spec.activation, masks, prefix="pi.")


def sample_actions(params: Params, obs, spec: PolicySpec, noise, masks=None) -> torch.Tensor:
    """Draw actions from pre-drawn noise, so each seed's draws come from its own generator.

    Discrete: inverse-CDF sampling with one uniform per action, ``noise (S, B, 1)``.
    Box: ``mean + std * noise`` with standard normals ``noise (S, B, act_dim)``.
    """
    out = policy_output(params, obs, spec, masks)
    if spec.discrete:
        cdf = torch.softmax(out, dim=-1).cumsum_(-1)
        actions = (noise >= cdf).sum(-1)
        return actions.clamp_(max=spec.act_dim - 1)  # a cdf that rounds to just below 1
    return out + params["pi.log_std"].exp() * noise


def log_prob_and_entropy(params: Params, obs, actions, spec: PolicySpec, masks=None):
    """Log-probabilities ``(S, B)`` of ``actions`` and the policy's entropy ``(S, B)`` (nats)."""
    out = policy_output(params, obs, spec, masks)
    if spec.discrete:
        logp_all = torch.log_softmax(out, dim=-1)
        logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp, entropy
    log_std = params["pi.log_std"]
    z = (actions - out) / log_std.exp()
    logp = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1).expand_as(logp)
    return logp, entropy
