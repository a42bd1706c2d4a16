"""Adam on stacked per-seed weights, with exactly the arithmetic of ``torch.optim.Adam``.
"""

from __future__ import annotations

import math

import torch


class StackedAdam:
    """Adam on stacked (per-seed) weights, with the arithmetic of ``torch.optim.Adam``.

    The weights live in one ``(S, P)`` tensor, ``flat``; ``params`` are named views of it, in the
    shapes the networks use. Adam is elementwise, so one optimiser over stacked weights updates
    each seed exactly as its own optimiser would, and one flat tensor makes a step a handful of
    ops. ``step(grad)`` takes the gradient as ``(S, P)``; ``keep(idx)`` drops the seeds that
    stopped training, with their state.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.layout = [(k, v.shape[1:]) for k, v in params.items()]
        self.flat = self.flatten(params)
        self.params = self.views(self.flat)
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = torch.zeros(self.flat.shape[0], dtype=torch.int64)  # steps taken, per seed
        self._table = None

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """``{name: (S, ...)}`` in this optimiser's layout -> ``(S, P)``."""
        return torch.cat([tensors[k].reshape(tensors[k].shape[0], -1) for k, _ in self.layout], 1)

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of a ``(B, P)`` tensor in this optimiser's layout."""
        out, start = {}, 0
        for k, shape in self.layout:
            n = math.prod(shape)
            out[k] = flat[:, start:start + n].view(flat.shape[0], *shape)
            start += n
        return out

    @torch.no_grad()
    def step(self, grad: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """One Adam step of the seeds in ``rows`` (default: all), ``grad (len(rows), P)``.

        Each seed counts its own steps: seeds of a group update at different times.
        """
        if rows is None:
            rows = torch.arange(self.flat.shape[0])
        t = self.t[rows] + 1
        self.t[rows] = t
        b1, b2 = self.betas
        corrections = self._corrections(int(t.max()))[t]
        sqrt_bc2, step_size = corrections[:, :1], corrections[:, 1:]
        m = self.m[rows].lerp_(grad, 1 - b1)
        v = self.v[rows].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / sqrt_bc2).add_(self.eps)
        self.flat[rows] = self.flat[rows] + m * step_size / denom
        self.m[rows], self.v[rows] = m, v

    def _corrections(self, t_max: int) -> torch.Tensor:
        """Row k: sqrt(1 - beta2^k) and -lr / (1 - beta1^k), the scalars torch.optim.Adam uses
        at step k, computed as it does in Python floats and rounded to float32 (where they meet
        the float32 state). Extended as seeds take more steps."""
        if self._table is None or len(self._table) <= t_max:
            b1, b2 = self.betas
            n = max(1024, 2 * t_max)
            self._table = torch.tensor([[math.sqrt(1 - b2**k), -self.lr / (1 - b1**k) if k else 0.0]
                                        for k in range(n)])
        return self._table

    def keep(self, idx) -> None:
        self.flat, self.m, self.v = self.flat[idx].clone(), self.m[idx].clone(), self.v[idx].clone()
        self.t = self.t[idx].clone()
        self.params = self.views(self.flat)
