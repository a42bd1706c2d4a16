"""Progress of a call that trains many runs, as plain lines for a log file (the pipeline's job
logs, or any stderr that is not a terminal; a terminal gets a tqdm bar instead)::

    12/48 runs done, 3,210,000 env steps, 41% of the step budget, 83 s elapsed

One line when a run finishes and at most one every ``every`` seconds in between, so a log of a
job that runs for an hour stays a few hundred lines long.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO


class ProgressLines:
    """Called after every update with the trainer (anything with ``cfgs`` and ``logs``: a
    GroupTrainer or a NumbaRun); prints to ``stream``.

    ``runs`` and ``budget`` are the planned runs and their summed ``total_steps``. A run counts
    as done once its log has a ``stop_reason``; its whole budget then counts as used (a run
    that solved early does not leave a hole in the percentage).
    """

    def __init__(self, runs: int, budget: int, stream: TextIO, every: float = 30.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.runs, self.budget, self.stream, self.every, self.clock = runs, budget, stream, every, clock
        self.t0 = self.last = clock()
        self.seen: dict[int, tuple[int, int, bool]] = {}  # id(log) -> (env steps, budget used, done)
        self.done, self.printed = 0, None
        self.line(force=True)

    def __call__(self, trainer) -> None:
        for cfg, log in zip(trainer.cfgs, trainer.logs):
            stopped = log.stop_reason is not None
            used = cfg.total_steps if stopped else min(log.env_steps, cfg.total_steps)
            self.seen[id(log)] = (log.env_steps, used, stopped)
        done = sum(s for _, _, s in self.seen.values())
        finished, self.done = done > self.done, done
        self.line(force=finished)

    def line(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last < self.every:
            return
        self.last = now
        steps = sum(s for s, _, _ in self.seen.values())
        used = sum(u for _, u, _ in self.seen.values())
        share = f"{100 * used / self.budget:.0f}%" if self.budget else "-"
        state = f"{self.done}/{self.runs} runs done, {steps:,} env steps, {share} of the step budget"
        if state != self.printed:  # nothing new: no line
            print(f"{state}, {now - self.t0:.0f} s elapsed", file=self.stream, flush=True)
            self.printed = state

    def close(self) -> None:
        self.line(force=True)
