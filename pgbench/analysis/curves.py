"""Learning curves on a common env-step grid (curves.parquet).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pgbench.analysis.runs import CURVE_WINDOW, GRID_POINTS, _typed
from pgbench.core.contracts import CURVES_COLUMNS


# --------------------------------------------------------------------------- curves
def step_grid(max_env_steps: int, points: int = GRID_POINTS) -> np.ndarray:
    """``points`` evenly spaced env-step counts from 0 to ``max_env_steps``, int64, shape (points,)."""
    return np.rint(np.linspace(0, max_env_steps, points)).astype(np.int64)


def learning_curve(env_steps: np.ndarray, returns: np.ndarray, grid: np.ndarray,
                   carry_forward: bool, window: int = CURVE_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """One run's curve on ``grid``: (values, carried), both shape (len(grid),).

    env_steps, returns: (n,) per finished episode, in order. The value at x is the mean return of
    the (up to) ``window`` latest episodes finished at or before x; NaN before the first episode.
    After the last episode the last value is carried forward (and marked) if ``carry_forward``
    (the run stopped because it solved), else NaN (nothing was measured past the budget).

    Example: episodes ending at steps [10, 30, 60] with returns [10, 20, 30], grid [0, 10, 45, 70],
    no carry: values [nan, 10, 15, nan].
    """
    n = len(returns)
    values = np.full(grid.shape, np.nan)
    carried = np.zeros(grid.shape, dtype=bool)
    if n == 0:
        return values, carried
    csum = np.concatenate([[0.0], np.cumsum(returns, dtype=float)])
    ends = np.arange(1, n + 1)
    starts = np.maximum(0, ends - window)
    trailing_mean = (csum[ends] - csum[starts]) / (ends - starts)
    latest = np.searchsorted(env_steps, grid, side="right") - 1  # last episode done at or before x
    measured = latest >= 0
    values[measured] = trailing_mean[latest[measured]]
    after_last = grid > env_steps[-1]
    if carry_forward:
        carried = after_last
    else:
        values[after_last] = np.nan
    return values, carried


def curves_table(runs: pd.DataFrame, episodes_by_run: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """curves.parquet from the runs table and each run's episodes (keyed by ``run_dir``).

    The grid of a (suite, env) ends at the largest episode env_steps of its runs, so the last
    grid point is measured by at least one run.
    """
    frames = []
    keys = ["suite", "env", "variant", "arm", "setting", "seed"]
    for _, group in runs.groupby(["suite", "env"], sort=True):
        ends = [int(episodes_by_run[d]["env_steps"].iloc[-1])
                for d in group["run_dir"] if len(episodes_by_run[d])]
        grid = step_grid(max(ends, default=0))
        for row in group.itertuples(index=False):
            eps = episodes_by_run[row.run_dir]
            values, carried = learning_curve(eps["env_steps"].to_numpy(dtype=np.int64),
                                             eps["return"].to_numpy(dtype=float), grid,
                                             carry_forward=row.stop_reason == "solved")
            part = pd.DataFrame({k: getattr(row, k) for k in keys}, index=range(len(grid)))
            part["env_steps"], part["return"], part["carried"] = grid, values, carried
            frames.append(part)
    if not frames:
        return _typed([], CURVES_COLUMNS)
    return pd.concat(frames, ignore_index=True)[list(CURVES_COLUMNS)].astype(CURVES_COLUMNS)
