"""The report's figures: matplotlib (object API, Agg canvas, no pyplot) styled with seaborn.

Every ``*_figure`` function takes tidy frames in the shapes of docs/contracts.md for one
(suite, env) or one gradient-study env and returns a :class:`matplotlib.figure.Figure`;
:func:`save_png` writes it. Nothing here touches pyplot's global figure registry, so figures are
freed as soon as they go out of scope and importing this module never changes the caller's
backend.

Colours come from :func:`arm_palette`: one mapping from arm (or estimator) name to colour for the
whole report, so an arm has the same colour in every figure and in the tables beside them.

All randomness (bootstrap resamples, strip-plot jitter) is drawn from an explicit
``numpy.random.Generator``; the same data and seed give the same pixels.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pgbench import stats

#: Figure width in inches and PNG resolution: 7 in x 200 dpi = 1400 px, which the HTML shows at
#: about 900 CSS px, i.e. sharp on a 2x (retina) laptop screen.
FIG_WIDTH_IN = 7.0
PNG_DPI = 200

#: Gradient-study snapshots in training order; unknown snapshot names sort after these.
SNAPSHOT_ORDER = ("init", "q25", "q50", "q75", "final")

_SNAPSHOT_MARKERS = ("o", "s", "D", "^", "v", "P", "X")

#: Colour of legend keys that stand for a style, not an arm (near black: no arm is black).
_KEY = "0.1"

_MPL_VERSION = tuple(int(p) for p in re.findall(r"\d+", matplotlib.__version__)[:2])


# ---------------------------------------------------------------------------------------------
# Colours and style
# ---------------------------------------------------------------------------------------------

def arm_palette(names: Iterable[str]) -> dict[str, str]:
    """Map each distinct name to a hex colour, in sorted-name order.

    The first ten names get seaborn's colour-blind-safe palette; further names get evenly spaced
    HUSL hues, so adding an eleventh arm does not recolour the first ten.

    >>> arm_palette(["vanilla", "rtg", "vanilla"])
    {'rtg': '#0173b2', 'vanilla': '#de8f05'}

    The first ten colours are colour-blind safe; beyond ten, extra HUSL hues are appended.
    """
    ordered = sorted({str(n) for n in names})
    # seaborn's colour-blind palette, reordered so that the sky blue (close to the first blue),
    # light pink and yellow (faint as thin lines and bands on white) come last.
    cb = sns.color_palette("colorblind", 10).as_hex()
    base = [cb[i] for i in (0, 1, 2, 3, 4, 5, 7, 9, 6, 8)]
    n_extra = max(len(ordered) - len(base), 0)
    colours = base + (sns.color_palette("husl", n_extra).as_hex() if n_extra else [])
    return {name: colours[i] for i, name in enumerate(ordered)}


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """One look for every figure; ``text.parse_math`` off because arm names are user text and a
    ``$`` in one would otherwise be parsed as mathtext (or fail to draw)."""
    rc = {
        "text.parse_math": False,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "axes.labelsize": 10,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.title_fontsize": 9,
        "savefig.facecolor": "white",
    }
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"), matplotlib.rc_context(rc):
        yield


def _styled(func):
    """Build the decorated figure inside :func:`_style` (rcParams are read at artist creation)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _style():
            return func(*args, **kwargs)

    return wrapper


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at :data:`PNG_DPI`; no software/date metadata, so the bytes depend
    only on the figure. The image grows to hold whatever sticks out of the figure (a legend of
    many long arm names), instead of cutting it off."""
    path = Path(path)
    with _style():
        fig.savefig(path, dpi=PNG_DPI, format="png", metadata={"Software": None},
                    bbox_inches="tight", pad_inches=0.08)
    return path


def format_steps(x: float, _pos: object = None) -> str:
    """Compact env-step tick label: 0, 950, 12k, 1.5M."""
    if not np.isfinite(x):
        return ""
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.3g}M"
    if ax >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.0f}"


_STEPS_FORMATTER = FuncFormatter(format_steps)


def _plain_number(x: float, _pos: object = None) -> str:
    """Tick label for log axes without mathtext (which ``text.parse_math=False`` turns off)."""
    if not np.isfinite(x) or x <= 0:
        return ""
    if 1e-3 <= x < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"  # 2e5, 1e-4: short enough not to collide


def _log_axis(axis, base: int = 10) -> None:
    """Log scale with plain-number labels: at 1-2-5 steps when the data span at most two and a
    half decades (so a narrow range still gets labels), at powers of the base (at most about
    eight of them) when they span more, so that wide ranges do not crowd their labels."""
    low, high = axis.get_view_interval()
    decades = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = (1.0, 2.0, 5.0) if base == 10 and decades <= 2.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=base, subs=subs, numticks=8))
    axis.set_major_formatter(FuncFormatter(_plain_number))
    axis.set_minor_formatter(NullFormatter())


def arm_label(arm: str, *, multiline: bool = False) -> str:
    """A figure label for an arm: ``variant__a=1__b=2`` -> ``variant (a=1, b=2)``, the settings on
    a second line when ``multiline`` (tick labels), so long arm names do not squeeze the axes."""
    variant, *settings = str(arm).split("__")
    if not settings:
        return variant
    joined = ", ".join(settings)
    return f"{variant}\n{joined}" if multiline else f"{variant} ({joined})"


def _figure(height_in: float, **subplots_kw) -> tuple[Figure, object]:
    fig = Figure(figsize=(FIG_WIDTH_IN, height_in), layout="constrained")
    return fig, fig.subplots(**subplots_kw)


def _arms_in(frame: pd.DataFrame, palette: Mapping[str, str], column: str = "arm") -> list[str]:
    """The arms present in ``frame``, in palette order (sorted names): the same order in every
    figure."""
    present = set(frame[column].astype(str))
    return [a for a in palette if a in present] + sorted(present - set(palette))


# ---------------------------------------------------------------------------------------------
# Small statistics the figures need (pure functions)
# ---------------------------------------------------------------------------------------------

def bootstrap_mean_ci(values: np.ndarray, rng: np.random.Generator, *, n_boot: int = 2000,
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and a percentile-bootstrap CI, point by point, ignoring NaN.

    ``values`` has shape ``(n_seeds, n_points)``; NaN means "no value for this seed here" (before a
    run's first episode, after it stopped at its budget). Seeds are resampled with replacement
    ``n_boot`` times as whole rows (one multinomial draw of seed counts per resample), so the
    points of a curve stay paired. Returns ``(mean, low, high)``, each ``(n_points,)``; NaN where
    no seed has a value.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be (n_seeds, n_points), got shape {values.shape}")
    n_seeds, n_points = values.shape
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    count = present.sum(axis=0)
    mean = np.full(n_points, np.nan)
    np.divide(filled.sum(axis=0), count, out=mean, where=count > 0)
    low, high = mean.copy(), mean.copy()
    if n_seeds < 2:
        return mean, low, high
    # (n_boot, n_seeds) multiplicities: the weighted sums below are the resampled sums, without
    # materialising an (n_boot, n_seeds, n_points) array.
    weights = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(float)
    boot_sum = weights @ filled
    boot_count = weights @ present.astype(float)
    boots = np.full_like(boot_sum, np.nan)
    np.divide(boot_sum, boot_count, out=boots, where=boot_count > 0)
    alpha = (1.0 - confidence) / 2.0
    ok = count > 0
    if ok.any():
        low[ok], high[ok] = np.nanquantile(boots[:, ok], [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


def kaplan_meier(times: Iterable[float], solved: Iterable[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The fraction of seeds solved by time t, as a step function to draw: ``(t, fraction)`` with
    ``t[0] = 0``, ``fraction[0] = 0``, then one point per distinct solve time, the value holding
    until the next point. The estimate is :func:`pgbench.stats.kaplan_meier`'s (the one the
    claims and tables use); ``times[i]`` is seed i's env steps to threshold if ``solved[i]``,
    else its censoring time.

    >>> kaplan_meier([10, 20, 20, 30], [True, True, False, False])
    (array([ 0., 10., 20.]), array([0.  , 0.25, 0.5 ]))
    """
    times = np.asarray(list(times), dtype=float)
    solved = np.asarray(list(solved), dtype=bool)
    if times.shape != solved.shape:
        raise ValueError("times and solved must have the same length")
    event_times = np.unique(times[solved])
    if not len(event_times):
        return np.array([0.0]), np.array([0.0])
    fraction = 1.0 - stats.kaplan_meier(times, ~solved).survival_at(event_times)
    return np.concatenate([[0.0], event_times]), np.concatenate([[0.0], fraction])


# ---------------------------------------------------------------------------------------------
# Per (suite, env) figures
# ---------------------------------------------------------------------------------------------

def _threshold_line(ax, threshold: float | None, *, vertical: bool = False) -> None:
    if threshold is None or not np.isfinite(threshold):
        return
    line = ax.axvline if vertical else ax.axhline
    line(threshold, color="black", linestyle=":", linewidth=1.2, zorder=1)


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
            t, frac = kaplan_meier(times, solved)
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


# ---------------------------------------------------------------------------------------------
# Gradient-study figures (one gradstudy env)
# ---------------------------------------------------------------------------------------------

def snapshot_order(snapshots: Iterable[str]) -> list[str]:
    """Snapshots in training order (init, q25, q75, ...), unknown names last, sorted."""
    known = {s: i for i, s in enumerate(SNAPSHOT_ORDER)}
    return sorted({str(s) for s in snapshots}, key=lambda s: (known.get(s, len(known)), s))


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
