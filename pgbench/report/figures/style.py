"""The figures' shared style: palette, sizes, axis formatters, and the Kaplan-Meier curve and
bootstrap band every figure draws the same way.
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
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pgbench.stats import survival
from pgbench.stats.bootstrap import percentile_interval, resample_counts

#: Figure width in inches and PNG resolution: 7 in x 200 dpi = 1400 px, which the HTML shows at
#: about 900 CSS px, i.e. sharp on a 2x (retina) laptop screen.
FIG_WIDTH_IN = 7.0


PNG_DPI = 200




_SNAPSHOT_MARKERS = ("o", "s", "D", "^", "v", "P", "X")


#: Colour of legend keys that stand for a style, not an arm (near black: no arm is black).
_KEY = "0.1"


_MPL_VERSION = tuple(int(p) for p in re.findall(r"\d+", matplotlib.__version__)[:2])


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


def bootstrap_mean_ci(values: np.ndarray, rng: np.random.Generator, *, n_boot: int = 2000,
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and a percentile-bootstrap CI (:func:`pgbench.stats.bootstrap.percentile_interval`),
    point by point, ignoring NaN.

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
    weights = resample_counts(n_seeds, n_boot, rng).astype(float)
    boot_sum = weights @ filled
    boot_count = weights @ present.astype(float)
    boots = np.full_like(boot_sum, np.nan)
    np.divide(boot_sum, boot_count, out=boots, where=boot_count > 0)
    ok = count > 0
    if ok.any():
        low[ok], high[ok] = percentile_interval(boots[:, ok], confidence, axis=0)
    return mean, low, high


def solved_fraction_curve(times: Iterable[float], solved: Iterable[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The fraction of seeds solved by time t, as a step function to draw: ``(t, fraction)`` with
    ``t[0] = 0``, ``fraction[0] = 0``, then one point per distinct solve time, the value holding
    until the next point. The estimate is :func:`pgbench.stats.survival.kaplan_meier`'s (the one the
    claims and tables use); ``times[i]`` is seed i's env steps to threshold if ``solved[i]``,
    else its censoring time.

    >>> solved_fraction_curve([10, 20, 20, 30], [True, True, False, False])
    (array([ 0., 10., 20.]), array([0.  , 0.25, 0.5 ]))
    """
    times = np.asarray(list(times), dtype=float)
    solved = np.asarray(list(solved), dtype=bool)
    if times.shape != solved.shape:
        raise ValueError("times and solved must have the same length")
    event_times = np.unique(times[solved])
    if not len(event_times):
        return np.array([0.0]), np.array([0.0])
    fraction = 1.0 - survival.kaplan_meier(times, ~solved).survival_at(event_times)
    return np.concatenate([[0.0], event_times]), np.concatenate([[0.0], fraction])


def _threshold_line(ax, threshold: float | None, *, vertical: bool = False) -> None:
    if threshold is None or not np.isfinite(threshold):
        return
    line = ax.axvline if vertical else ax.axhline
    line(threshold, color="black", linestyle=":", linewidth=1.2, zorder=1)
