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

from pgbench.aggregate import parse_setting_label
from pgbench.figures import (_KEY, FIG_WIDTH_IN, _arms_in, _styled, arm_label, format_steps,
                             kaplan_meier)

#: The slides' quoted steps to solve: label -> env steps.
QUOTED = {"slides, vanilla: ~800k": 800_000, "slides, causality + baseline: ~160k": 160_000}
_QUOTE_STYLES = ((0, (1, 1.5)), (0, (5, 2)))


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
    fig = Figure(figsize=(FIG_WIDTH_IN, 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(ncols=len(panels), sharey=True, squeeze=False)[0])
    handles: dict[str, Line2D] = {}
    positive = runs["steps_to_threshold"].to_numpy(float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    low = max(1e3, float(positive.min()) / 1.5) if positive.size else 1e3
    high = float(positive.max()) * 1.2 if positive.size else 1e6
    for ax, panel in zip(axes, panels):
        here = runs[runs["_panel"] == panel]
        for arm in _arms_in(here, palette):
            one = here[here["arm"].astype(str) == arm]
            times = one["steps_to_threshold"].to_numpy(float)
            solved = ~one["censored"].to_numpy(bool)
            keep = np.isfinite(times)
            t, frac = kaplan_meier(times[keep], solved[keep])
            end = float(times[keep].max()) if keep.any() else high
            t = np.maximum(t, low)
            colour = palette.get(arm, "#333333")
            ax.step(np.append(t, end), np.append(frac, frac[-1]), where="post", color=colour,
                    linewidth=1.9)
            handles.setdefault(arm, Line2D([], [], color=colour, linewidth=2.5,
                                           label=f"{arm_label(arm)}: {int(solved.sum())}/"
                                                 f"{solved.size} solved"))
        for (label, steps), style in zip(QUOTED.items(), _QUOTE_STYLES):
            ax.axvline(steps, color=_KEY, linestyle=style, linewidth=1.2, zorder=1)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_formatter(lambda x, _pos: format_steps(x))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("environment steps (log scale)")
        ax.set_title(f"dropout {panel}" if panel else "all runs", fontsize=10)
    axes[0].set_ylabel("fraction of seeds solved")
    quotes = [Line2D([], [], color=_KEY, linestyle=style, linewidth=1.2, label=label)
              for label, style in zip(QUOTED, _QUOTE_STYLES)]
    fig.legend(handles=quotes, loc="outside upper center", ncols=2, frameon=False)
    fig.legend(handles=list(handles.values()), loc="outside lower center", ncols=2, frameon=False,
               title="arm (Kaplan–Meier estimate, running reward ≥ threshold)")
    return fig
