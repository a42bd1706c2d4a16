"""Train a list of runs: group the ones that may share a trainer, write each run directory as
soon as its run ends, and split the call's wall and CPU time among the runs.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from pgbench.core.dispatch import check_pinned, configure_torch
from pgbench.core.errors import UserError
from pgbench.core.provenance import provenance
from pgbench.rl.config import TrainConfig
from pgbench.runs.log import SeedLog
from pgbench.runs.store import write_run
from pgbench.training.algorithms import is_algorithm, trainer_of
from pgbench.training.group import GroupTrainer, group_key


def train_group(cfg: TrainConfig, seeds: list[int], out_dirs: list[Path], meta: dict | None = None,
                show_progress: bool = False) -> list[SeedLog]:
    """Train ``cfg`` for each seed and write ``out_dirs[i]`` for ``seeds[i]`` as it finishes."""
    return train_runs([RunRequest(replace(cfg, seed=s), Path(d), meta or {})
                       for s, d in zip(seeds, out_dirs)], show_progress=show_progress)


@dataclass(frozen=True)
class RunRequest:
    """One run to train: its config (``cfg.seed`` is the run's seed), where its run directory
    goes, and the metadata recorded in its run.json (suite, arm, setting, command)."""

    cfg: TrainConfig
    out_dir: Path
    meta: dict = field(default_factory=dict)


def train_runs(requests: list[RunRequest], show_progress: bool = False,
               log_progress=None) -> list[SeedLog]:
    """Train every request; each run directory is written as soon as its run finishes.

    ``show_progress`` draws a bar (for a terminal); ``log_progress``, a text stream, gets
    progress lines instead (:class:`pgbench.core.progress.ProgressLines`, for a log file).

    The returned logs keep each run's totals and solve points; their episode and update rows
    are freed once written (read them from the run directories).

    Runs that may share a group (same :func:`group_key`: e.g. the arms of a suite that differ
    in estimator or dropout only) train in one :class:`GroupTrainer`; each run's numbers are
    those it gets alone, whatever else the call trains. Returns the logs in request order.
    """
    configure_torch(torch)  # one thread (tiny networks), the pinned kernels (dispatch.py)
    if (warning := check_pinned()) is not None:
        print(f"pgbench: warning: {warning}", file=sys.stderr)
    if len({(r.cfg.hash(), str(r.out_dir)) for r in requests}) != len(requests):
        raise UserError("the same run is requested twice")
    prov = provenance(seed_group=sorted({r.cfg.seed for r in requests}))
    shares = _Shares(len(requests))
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(group_key(r.cfg), []).append(i)
    logs: list[SeedLog | None] = [None] * len(requests)
    bar = _ProgressBar(requests) if show_progress else None
    if bar is None and log_progress is not None:
        from pgbench.core.progress import ProgressLines

        bar = ProgressLines(len(requests), sum(r.cfg.total_steps for r in requests), log_progress)
    try:
        for i, r in enumerate(requests):  # compiled runs: one at a time, each in its own loop
            if r.cfg.engine == "numba":
                from pgbench.training.numba.engine import NumbaRun

                shares.start([i])
                logs[i] = NumbaRun(r.cfg).run(progress=bar)
                write_run(r.out_dir, r.cfg, logs[i], r.meta, prov, *shares.stop(i))
                _drop_rows(logs[i])
            elif is_algorithm(r.cfg.variant):  # standard algorithms: their own trainers
                shares.start([i])
                logs[i] = trainer_of(r.cfg.variant)(r.cfg, progress=bar)
                write_run(r.out_dir, r.cfg, logs[i], r.meta, prov, *shares.stop(i))
                _drop_rows(logs[i])
        for members in groups.values():
            members = [i for i in members if requests[i].cfg.engine != "numba"
                       and not is_algorithm(requests[i].cfg.variant)]
            if not members:
                continue
            trainer = GroupTrainer([requests[i].cfg for i in members])
            shares.start(members)

            def finished(log: SeedLog, trainer=trainer, members=members) -> None:
                i = members[next(k for k, x in enumerate(trainer.logs) if x is log)]
                r = requests[i]
                write_run(r.out_dir, r.cfg, log, r.meta, prov, *shares.stop(i))
                _drop_rows(log)
                logs[i] = log

            trainer.run(on_finished=finished, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return logs


def _drop_rows(log: SeedLog) -> None:
    """Free a written run's episode and update rows (they are in its run directory): a job's
    memory then holds its running runs only, not every run it has finished (a collapsed slides
    seed keeps ~320,000 of each)."""
    log.episode_rows, log.update_rows = [], []


class _Shares:
    """Each run's share of the wall and CPU time of a call that trains several runs at once:
    every stretch of time is split equally among the runs training during it (time when none
    is, such as start-up, goes to the next ones). The shares add up to the call's time."""

    def __init__(self, n: int):
        self.wall, self.cpu = [0.0] * n, [0.0] * n
        self.active: set[int] = set()
        self.last = (time.perf_counter(), _cpu_seconds())

    def _split(self) -> None:
        if not self.active:
            return  # carried over to the runs that start next
        now = (time.perf_counter(), _cpu_seconds())
        wall, cpu = ((a - b) / len(self.active) for a, b in zip(now, self.last))
        for i in self.active:
            self.wall[i] += wall
            self.cpu[i] += cpu
        self.last = now

    def start(self, runs) -> None:
        self._split()
        self.active.update(runs)

    def stop(self, i: int) -> tuple[float, float]:
        """Run ``i`` is done: its (wall, CPU) seconds."""
        self._split()
        self.active.discard(i)
        return self.wall[i], self.cpu[i]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _ProgressBar:
    """A tqdm bar over the env steps of every run of a call, shown only on a terminal; called
    after each update, it redraws at most a few times a second."""

    def __init__(self, requests: list[RunRequest]):
        from tqdm import tqdm

        envs = sorted({r.cfg.env_id for r in requests})
        self.bar = tqdm(total=sum(r.cfg.total_steps for r in requests), unit="step",
                        unit_scale=True, desc=" ".join(envs), leave=False, mininterval=0.5)
        self.done, self.before, self.last = 0, 0, 0.0

    def __call__(self, trainer: GroupTrainer) -> None:
        now = time.perf_counter()
        over = all(log.stop_reason for log in trainer.logs)
        if now - self.last < 0.5 and not over:
            return
        self.last = now
        done = sum(c.total_steps if log.stop_reason else min(log.env_steps, c.total_steps)
                   for c, log in zip(trainer.cfgs, trainer.logs))
        if over:  # the group is over: count it for good
            self.before, done = self.before + done, 0
        self.bar.update(self.before + done - self.done)
        self.done = self.before + done

    def close(self):
        self.bar.close()
