"""Progress lines of a training call (pgbench/core/progress.py), driven by a fake clock and trainer."""

import io
from types import SimpleNamespace as NS

from pgbench.core.progress import ProgressLines


def test_lines_per_finished_run_and_every_interval():
    now = [0.0]
    out = io.StringIO()
    cfgs = [NS(total_steps=1000), NS(total_steps=3000)]
    logs = [NS(env_steps=0, stop_reason=None), NS(env_steps=0, stop_reason=None)]
    trainer = NS(cfgs=cfgs, logs=logs)
    p = ProgressLines(2, 4000, out, every=30.0, clock=lambda: now[0])
    now[0], logs[0].env_steps, logs[1].env_steps = 10.0, 200, 200
    p(trainer)  # < 30 s since the last line and no run finished: silent
    now[0], logs[0].env_steps = 12.0, 400
    logs[0].stop_reason = "solved"  # a run solved early counts its whole budget as used
    p(trainer)
    now[0], logs[1].env_steps = 45.0, 1800
    p(trainer)  # 33 s later: a line
    now[0] = 50.0
    p.close()  # nothing changed since: no line
    assert out.getvalue().splitlines() == [
        "0/2 runs done, 0 env steps, 0% of the step budget, 0 s elapsed",
        "1/2 runs done, 600 env steps, 30% of the step budget, 12 s elapsed",
        "1/2 runs done, 2,200 env steps, 70% of the step budget, 45 s elapsed",
    ]
