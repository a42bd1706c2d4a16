"""The report's headline figure: the slides' central comparison at a glance.

Fraction of seeds solved (Kaplan–Meier, the sources' running-reward rule) against environment
steps on a log axis, one line per arm, one panel per dropout setting when the suite varies it,
with the slides' quoted figures (~160k steps with causality and a baseline, ~800k without) as
vertical marks. The log axis keeps the early phase, where the arms part, readable next to a
multi-million-step budget.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pgbench.analysis.runs import parse_setting_label
from pgbench.report.figures.style import (
    _KEY,
    FIG_WIDTH_IN,
    _arms_in,
    _styled,
    format_steps,
    solved_fraction_curve,
)

#: The slides' quoted steps to solve: label -> env steps.
QUOTED = {"slides, vanilla: ~800k": 800_000, "slides, causality + baseline: ~160k": 160_000}


_QUOTE_STYLES = ((0, (1, 1.5)), (0, (5, 2)))


def _short_label(arm: str) -> str:
    """``rtg_baseline__baseline=ema__dropout=0.6__gamma=1.0`` -> ``rtg_baseline (ema, γ=1.0)``:
    the panel names the dropout."""
    variant, *settings = str(arm).split("__")
    words = []
    for item in settings:
        key, _, value = item.partition("=")
        if key == "dropout":
            continue
        words.append(f"γ={value}" if key == "gamma" else value if key == "baseline" else item)
    return f"{variant} ({', '.join(words)})" if words else variant


def _panel_key(setting: str) -> str:
    try:
        return parse_setting_label(setting).get("dropout", "")
    except ValueError:
        return ""


@_styled
def headline_figure(runs: pd.DataFrame, palette: Mapping[str, str]) -> Figure:
    """One (suite, env)'s runs -> the headline figure (see the module docstring)."""
    runs = runs.assign(_panel=[_panel_key(str(s)) for s in runs["setting"]])
    panels = sorted(set(runs["_panel"]), key=lambda p: (p == "", p))
    fig = Figure(figsize=(FIG_WIDTH_IN, 5.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(ncols=len(panels), sharey=True, squeeze=False)[0])
    positive = runs["steps_to_threshold"].to_numpy(float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    low = max(1e3, float(positive.min()) / 1.5) if positive.size else 1e3
    high = max(float(positive.max()) * 1.2 if positive.size else 1e6, 1.2 * max(QUOTED.values()))
    for ax, panel in zip(axes, panels):
        here = runs[runs["_panel"] == panel]
        handles = []
        for arm in _arms_in(here, palette):
            one = here[here["arm"].astype(str) == arm]
            times = one["steps_to_threshold"].to_numpy(float)
            solved = ~one["censored"].to_numpy(bool)
            keep = np.isfinite(times)
            t, frac = solved_fraction_curve(times[keep], solved[keep])
            end = float(times[keep].max()) if keep.any() else high
            t = np.maximum(t, low)
            colour = palette.get(arm, "#333333")
            ax.step(np.append(t, end), np.append(frac, frac[-1]), where="post", color=colour,
                    linewidth=1.9)
            handles.append(Line2D([], [], color=colour, linewidth=2.5,
                                  label=f"{_short_label(arm)}: {int(solved.sum())}/{solved.size}"))
        for (label, steps), style in zip(QUOTED.items(), _QUOTE_STYLES):
            ax.axvline(steps, color=_KEY, linestyle=style, linewidth=1.2, zorder=1)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0), numticks=10))
        ax.xaxis.set_major_formatter(FuncFormatter(format_steps))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8,
                  frameon=False, title="arm: seeds solved", title_fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("environment steps (log scale)")
        ax.set_title(f"dropout {panel}" if panel else "all runs", fontsize=10)
    axes[0].set_ylabel("fraction of seeds solved (Kaplan–Meier)")
    quotes = [Line2D([], [], color=_KEY, linestyle=style, linewidth=1.2, label=label)
              for label, style in zip(QUOTED, _QUOTE_STYLES)]
    fig.legend(handles=quotes, loc="outside upper center", ncols=2, frameon=False)
    return fig
