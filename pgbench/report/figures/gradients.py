"""Figures of the gradient study: each estimator's variance per snapshot, and against the
number of episodes per batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pgbench.core.contracts import snapshot_order
from pgbench.report.figures.style import (
    _KEY,
    _SNAPSHOT_MARKERS,
    _arms_in,
    _figure,
    _log_axis,
    _styled,
    arm_label,
)


@_styled
def gradient_variance_figure(grad: pd.DataFrame, palette: Mapping[str, str], *,
                             episodes_per_batch: int) -> Figure:
    """Total variance of the batch gradient per estimator (log scale) with its CI, one marker
    shape per policy snapshot, at one batch size."""
    grad = grad[grad["episodes_per_batch"] == episodes_per_batch]
    estimators = _arms_in(grad, palette, column="estimator")
    snapshots = snapshot_order(grad["snapshot"])
    fig, ax = _figure(1.7 + 0.45 * len(estimators) * max(1.0, len(snapshots) / 3))
    offsets = np.linspace(-0.25, 0.25, len(snapshots)) if len(snapshots) > 1 else np.zeros(1)
    for i, est in enumerate(estimators):
        for off, snap, marker in zip(offsets, snapshots, _SNAPSHOT_MARKERS * 3):
            row = grad[(grad["estimator"].astype(str) == est) & (grad["snapshot"].astype(str) == snap)]
            if row.empty:
                continue
            v = row["total_variance"].to_numpy(dtype=float)
            lo = row["total_variance_ci_low"].to_numpy(dtype=float)
            hi = row["total_variance_ci_high"].to_numpy(dtype=float)
            ax.errorbar(v, [i + off] * len(v), xerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)],
                        fmt=marker, color=palette.get(est, "#333333"), markersize=6.5, capsize=2.5,
                        elinewidth=1.4)
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_yticks(range(len(estimators)), [arm_label(e, multiline=True) for e in estimators])
    ax.set_ylim(len(estimators) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("total variance of the gradient estimate, tr Cov[g] (log scale)")
    ax.set_title(f"{episodes_per_batch} episode{'s' if episodes_per_batch != 1 else ''} per batch",
                 fontsize=9.5)
    legend = [Line2D([], [], linestyle="none", marker=m, color=_KEY, markersize=6.5,
                     label=f"snapshot {s}") for s, m in zip(snapshots, _SNAPSHOT_MARKERS * 3)]
    legend.append(Line2D([], [], color=_KEY, label="CI"))
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), frameon=False)
    return fig


@_styled
def variance_vs_batch_figure(grad: pd.DataFrame, palette: Mapping[str, str]) -> Figure:
    """Total gradient variance vs episodes per batch (log-log), one panel per snapshot, one line
    per estimator with its CI band. Independent episodes would give a slope of -1."""
    snapshots = snapshot_order(grad["snapshot"])
    estimators = _arms_in(grad, palette, column="estimator")
    ncols = min(len(snapshots), 3)
    nrows = math.ceil(len(snapshots) / ncols)
    fig, axes = _figure(0.6 + 2.9 * nrows, ncols=ncols, nrows=nrows, sharey=True, squeeze=False)
    for k, snap in enumerate(snapshots):
        ax = axes[k // ncols][k % ncols]
        for est in estimators:
            one = grad[(grad["snapshot"].astype(str) == snap) & (grad["estimator"].astype(str) == est)]
            one = one.sort_values("episodes_per_batch")
            if one.empty:
                continue
            colour = palette.get(est, "#333333")
            x = one["episodes_per_batch"].to_numpy(dtype=float)
            ax.fill_between(x, one["total_variance_ci_low"], one["total_variance_ci_high"],
                            color=colour, alpha=0.18, linewidth=0)
            ax.plot(x, one["total_variance"], marker="o", markersize=4, color=colour, linewidth=1.7)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _log_axis(ax.xaxis, base=2)
        _log_axis(ax.yaxis)
        ax.set_title(f"snapshot {snap}", fontsize=9.5)
        ax.set_xlabel("episodes per batch")
    for k in range(len(snapshots), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.supylabel("total gradient variance, tr Cov[g] (log-log axes)", fontsize=10)
    handles = [Line2D([], [], color=palette.get(e, "#333333"), linewidth=2.5, label=arm_label(e))
               for e in estimators]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)) or 1,
               frameon=False, title="estimator (band: CI)")
    return fig
