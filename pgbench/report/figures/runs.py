"""Figures of the runs of one (suite, env): learning curves, fraction solved over steps,
steps to solve, final returns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter

from pgbench.report.figures.style import (
    _KEY,
    _MPL_VERSION,
    _STEPS_FORMATTER,
    _arms_in,
    _figure,
    _styled,
    _threshold_line,
    arm_label,
    bootstrap_mean_ci,
    solved_fraction_curve,
)


@_styled
def learning_curves_figure(curves: pd.DataFrame, palette: Mapping[str, str], *,
                           rng: np.random.Generator, threshold: float | None = None,
                           n_boot: int = 2000, confidence: float = 0.95) -> Figure:
    """Mean return across seeds with a bootstrap CI band vs env steps, one colour per arm.

    ``curves`` is ``curves.parquet`` restricted to one (suite, env). The line is solid where every
    seed was measured and dashed where at least one seed's value is carried forward (it stopped
    because it had solved): those stretches are an assumption, not a measurement. The line is
    drawn only where every seed of the arm has a value: before a seed's first episode or after it
    stopped at its budget, a mean over the remaining seeds would be biased towards them.
    """
    fig, ax = _figure(4.8)
    handles, anything_carried = [], False
    for arm in _arms_in(curves, palette):
        one = curves[curves["arm"].astype(str) == arm]
        wide = one.pivot(index="seed", columns="env_steps", values="return")
        carried = one.pivot(index="seed", columns="env_steps", values="carried")
        x = wide.columns.to_numpy(dtype=float)
        values = wide.to_numpy(dtype=float)
        mean, low, high = bootstrap_mean_ci(values, rng, n_boot=n_boot, confidence=confidence)
        incomplete = np.isnan(values).any(axis=0)
        mean[incomplete], low[incomplete], high[incomplete] = np.nan, np.nan, np.nan
        any_carried = carried.fillna(False).astype(bool).to_numpy().any(axis=0)
        anything_carried |= bool((any_carried & ~incomplete).any())
        colour = palette.get(arm, "#333333")
        ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        # Dashed underneath everywhere, solid on top where nothing is carried: the dashed
        # stretches that remain visible are exactly the carried ones.
        ax.plot(x, mean, color=colour, linewidth=1.6, linestyle=(0, (3, 2)))
        ax.plot(x, np.where(any_carried, np.nan, mean), color=colour, linewidth=1.9)
        handles.append(Line2D([], [], color=colour, linewidth=2.5,
                              label=f"{arm_label(arm)} ({wide.shape[0]} seeds)"))
    _threshold_line(ax, threshold)
    steps = curves["env_steps"].to_numpy(dtype=float)
    steps = steps[steps > 0]
    # Runs that stop once solved leave a long carried-forward tail; past 1.5 decades of steps a
    # log axis gives the early phase, where the arms part, the room a linear one gives the tail.
    if steps.size and steps.max() / steps.min() > 10 ** 1.5:
        ax.set_xscale("log")
        ax.set_xlim(steps.min(), steps.max() * 1.05)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0), numticks=12))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("environment steps (log scale)")
    else:
        ax.set_xlim(left=0)
        ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(_STEPS_FORMATTER)
    ax.set_ylabel("episode return (mean of last 10 episodes)")
    style = [Line2D([], [], color=_KEY, linewidth=1.9, label="measured")]
    if anything_carried:
        style.append(Line2D([], [], color=_KEY, linewidth=1.6, linestyle=(0, (3, 2)),
                            label="incl. solved runs carried forward"))
    if threshold is not None and np.isfinite(threshold):
        style.append(Line2D([], [], color="black", linestyle=":", linewidth=1.2,
                            label=f"threshold {threshold:g}"))
    # Line-style key above the axes, arm key below: neither can hide a curve.
    fig.legend(handles=style, loc="outside upper center", ncols=len(style), frameon=False)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(2, len(handles)) or 1,
               title=f"arm: mean across seeds, band = {confidence:.0%} bootstrap CI", frameon=False)
    return fig


_RULES = (
    ("steps_to_threshold", "censored", "running reward ≥ threshold (sources' rule)"),
    ("steps_to_threshold_last100", "censored_last100", "mean of last 100 returns ≥ threshold"),
)


@_styled
def solved_fraction_figure(runs: pd.DataFrame, palette: Mapping[str, str]) -> Figure:
    """Kaplan-Meier curves of the fraction of seeds solved vs env steps, one panel per solve rule.

    Censored seeds (budget reached without solving) are ticked where they left the risk set.
    """
    rules = [r for r in _RULES if r[0] in runs and r[1] in runs]
    fig, axes = _figure(3.9, ncols=len(rules), sharey=True, squeeze=False)
    arms = _arms_in(runs, palette)
    handles = []
    for ax, (time_col, censored_col, title) in zip(axes[0], rules):
        for arm in arms:
            one = runs[runs["arm"].astype(str) == arm]
            times = one[time_col].to_numpy(dtype=float)
            solved = ~one[censored_col].to_numpy(dtype=bool)
            keep = np.isfinite(times)
            times, solved = times[keep], solved[keep]
            t, frac = solved_fraction_curve(times, solved)
            end = max(times.max() if times.size else 0.0, t[-1])
            colour = palette.get(arm, "#333333")
            ax.step(np.append(t, end), np.append(frac, frac[-1]), where="post", color=colour,
                    linewidth=1.9)
            # Censoring ticks sit on the curve at the censoring time.
            cens = times[~solved]
            if cens.size:
                at = np.array([frac[np.searchsorted(t, c, side="right") - 1] for c in cens])
                ax.plot(cens, at, linestyle="none", marker="|", markersize=11, markeredgewidth=1.6,
                        color=colour)
            if ax is axes[0][0]:
                handles.append(Line2D([], [], color=colour, linewidth=2.5,
                                      label=f"{arm_label(arm)} ({int(solved.sum())}/{solved.size} solved)"))
        ax.set_title(title, fontsize=9.5)
        ax.xaxis.set_major_formatter(_STEPS_FORMATTER)
        ax.set_xlim(left=0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("environment steps")
    axes[0][0].set_ylabel("fraction of seeds solved")
    handles.append(Line2D([], [], color=_KEY, linestyle="none", marker="|", markersize=11,
                          markeredgewidth=1.6, label="censored (budget reached, not solved)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False,
               title="Kaplan-Meier estimate; counts for the sources' rule")
    return fig


def _jitter(rng: np.random.Generator, n: int, width: float = 0.28) -> np.ndarray:
    return rng.uniform(-width, width, size=n)


@_styled
def steps_to_solve_figure(runs: pd.DataFrame, palette: Mapping[str, str], *,
                          rng: np.random.Generator) -> Figure:
    """Per-seed env steps to threshold (sources' rule), one row per arm.

    Solved seeds are filled dots; censored seeds are hollow dots at their censoring time (they
    would have needed at least that many steps). The dotted line marks the step budget.
    """
    arms = _arms_in(runs, palette)
    fig, ax = _figure(1.6 + 0.5 * len(arms))
    for i, arm in enumerate(arms):
        one = runs[runs["arm"].astype(str) == arm]
        x = one["steps_to_threshold"].to_numpy(dtype=float)
        censored = one["censored"].to_numpy(dtype=bool)
        y = i + _jitter(rng, len(x))
        colour = palette.get(arm, "#333333")
        ax.scatter(x[~censored], y[~censored], s=34, color=colour, edgecolor="white",
                   linewidth=0.6, zorder=3)
        ax.scatter(x[censored], y[censored], s=40, facecolor="none", edgecolor=colour,
                   linewidth=1.6, zorder=3)
    budgets = runs["budget_steps"].dropna().unique() if "budget_steps" in runs else []
    if len(budgets) == 1:
        _threshold_line(ax, float(budgets[0]), vertical=True)
    ax.set_yticks(range(len(arms)), [arm_label(a, multiline=True) for a in arms])
    ax.set_ylim(len(arms) - 0.5, -0.5)
    ax.xaxis.set_major_formatter(_STEPS_FORMATTER)
    ax.set_xlim(left=0)
    ax.set_xlabel("environment steps to threshold (running-reward rule)")
    ax.grid(axis="y", visible=False)
    legend = [Line2D([], [], linestyle="none", marker="o", markersize=7, color=_KEY,
                     markeredgecolor="white", label="solved"),
              Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                     markeredgecolor=_KEY, markeredgewidth=1.6,
                     label="censored: not solved by the end of the run")]
    if len(budgets) == 1:
        legend.append(Line2D([], [], color="black", linestyle=":", label="step budget"))
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), frameon=False)
    return fig


@_styled
def final_return_figure(runs: pd.DataFrame, palette: Mapping[str, str], *,
                        rng: np.random.Generator, threshold: float | None = None) -> Figure:
    """Distribution of per-seed final returns (mean of the last 10% of episodes) per arm: a box
    (quartiles, whiskers to 1.5 IQR) with every seed drawn on top."""
    arms = _arms_in(runs, palette)
    fig, ax = _figure(1.6 + 0.5 * len(arms))
    data = runs.assign(arm=runs["arm"].astype(str))
    samples = [data.loc[data["arm"] == arm, "final_return"].dropna().to_numpy(dtype=float)
               for arm in arms]
    # matplotlib 3.10 renamed vert=False to orientation="horizontal" (and deprecated vert).
    horizontal = ({"orientation": "horizontal"} if _MPL_VERSION >= (3, 10) else {"vert": False})
    boxes = ax.boxplot(samples, positions=range(len(arms)), widths=0.55, showfliers=False,
                       patch_artist=True, medianprops={"color": "0.15", "linewidth": 1.4},
                       whiskerprops={"color": "0.3"}, capprops={"color": "0.3"}, **horizontal)
    for box, arm in zip(boxes["boxes"], arms):
        box.set(facecolor=palette.get(arm, "#333333"), alpha=0.35, edgecolor=_KEY)
    for i, (arm, x) in enumerate(zip(arms, samples)):
        ax.scatter(x, i + _jitter(rng, len(x), 0.18), s=26, color=palette.get(arm, "#333333"),
                   edgecolor="white", linewidth=0.6, zorder=3)
    _threshold_line(ax, threshold, vertical=True)
    ax.set_yticks(range(len(arms)), [arm_label(a, multiline=True) for a in arms])
    ax.set_ylim(len(arms) - 0.5, -0.5)
    ax.set_ylabel("")
    ax.set_xlabel("final return (mean return of the last 10% of episodes)")
    ax.grid(axis="y", visible=False)
    if threshold is not None and np.isfinite(threshold):
        fig.legend(handles=[Line2D([], [], color="black", linestyle=":",
                                   label=f"threshold {threshold:g}")],
                   loc="outside lower center", frameon=False)
    return fig
