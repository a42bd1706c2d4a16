"""The actor-critic network of the standard algorithms, and its action distribution.

Two separate MLPs, as Stable-Baselines3's ``MlpPolicy`` with ``net_arch=dict(pi=H, vf=H)``: the
policy's hidden layers then a head of ``n_actions`` logits (Discrete) or of the Gaussian's means
(Box, with a state-independent log standard deviation per action dimension); the critic's hidden
layers then one output. Orthogonal initialisation as SB3's ``ortho_init``: gain sqrt(2) for hidden
layers, 0.01 for the policy head, 1 for the value head, zero biases. Every random draw takes an
explicit ``torch.Generator``; float32 throughout.

Shapes: ``obs`` (B, obs_dim) -> ``logits`` (B, n) or ``mean`` (B, act_dim); ``value`` (B,).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ActorCritic", "Dist"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _init_linear(layer: nn.Linear, gain: float, generator: torch.Generator, ortho: bool) -> None:
    if ortho:
        nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
        nn.init.zeros_(layer.bias)
    else:  # PyTorch's default Linear init, drawn from the run's generator
        bound = 1.0 / math.sqrt(layer.in_features)
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


class Dist:
    """The policy's action distribution on a batch: Categorical(logits) or diagonal Gaussian."""

    def __init__(self, out: torch.Tensor, log_std: torch.Tensor | None):
        self.out, self.log_std = out, log_std
        if log_std is None:
            self.logp_all = torch.log_softmax(out, dim=-1)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        if self.log_std is None:
            return torch.multinomial(self.logp_all.exp(), 1, generator=generator).squeeze(-1)
        noise = torch.randn(self.out.shape, generator=generator, dtype=self.out.dtype)
        return self.out + self.log_std.exp() * noise

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-probability of ``actions`` (B,) int64 or (B, act_dim)."""
        if self.log_std is None:
            return self.logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        z = (actions - self.out) / self.log_std.exp()
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def kl_from(self, old: Dist) -> torch.Tensor:
        """(B,) KL(old || self), in closed form."""
        if self.log_std is None:
            return (old.logp_all.exp() * (old.logp_all - self.logp_all)).sum(-1)
        var_old, var = (2 * old.log_std).exp(), (2 * self.log_std).exp()
        per_dim = (self.log_std - old.log_std
                   + (var_old + (old.out - self.out).pow(2)) / (2 * var) - 0.5)
        return per_dim.sum(-1)

    def entropy(self) -> torch.Tensor:
        """(B,) entropy in nats."""
        if self.log_std is None:
            return -(self.logp_all.exp() * self.logp_all).sum(-1)
        per_dim = 0.5 + 0.5 * math.log(2 * math.pi) + self.log_std
        return per_dim.sum().expand(self.out.shape[0])


class ActorCritic(nn.Module):
    """Separate policy and value MLPs (see the module docstring)."""

    def __init__(self, obs_dim: int, n_out: int, discrete: bool, hidden: tuple[int, ...],
                 activation: str, log_std_init: float, ortho_init: bool,
                 generator: torch.Generator):
        super().__init__()
        self.discrete = discrete
        self.pi = mlp([obs_dim, *hidden, n_out], activation)
        self.vf = mlp([obs_dim, *hidden, 1], activation)
        self.log_std = None if discrete else nn.Parameter(torch.full((n_out,), float(log_std_init)))
        for net, head_gain in ((self.pi, 0.01), (self.vf, 1.0)):
            linears = [m for m in net if isinstance(m, nn.Linear)]
            for layer in linears:
                gain = head_gain if layer is linears[-1] else math.sqrt(2)
                _init_linear(layer, gain, generator, ortho_init)

    def dist(self, obs: torch.Tensor) -> Dist:
        return Dist(self.pi(obs), self.log_std)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(obs).squeeze(-1)

    def policy_parameters(self) -> list[nn.Parameter]:
        return list(self.pi.parameters()) + ([] if self.log_std is None else [self.log_std])
