"""CPU-us per env step of the compiled engine (:class:`NumbaRun`) on the slides arms, early (the
initial weights) and collapsed (output bias +20/-20: ~9-step episodes), seed 0 of each arm.
Run it in each tree to compare two versions of the engine, the trees taking turns::

    PYTHONPATH=TREE python benchmarks/compiled_one_arm.py 150000 vanilla   # or: all
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pgbench

sys.path.insert(0, str(Path(__file__).parent))
from slides_arms import slides_configs

from pgbench.training.numba.engine import NumbaRun


def main() -> None:
    steps, which = int(sys.argv[1]), sys.argv[2]
    cfgs = slides_configs(1, steps)
    if which == "vanilla":  # the healthy arm: vanilla without dropout
        cfgs = [c for c in cfgs if c.variant == "vanilla" and c.dropout == 0]
    NumbaRun(cfgs[0]).run()  # loads (or compiles) the kernels, untimed
    result = {"tree": pgbench.__file__}
    for collapse in (False, True):
        start, n = time.process_time(), 0
        for cfg in cfgs:
            run = NumbaRun(cfg)
            if collapse:
                run.b1[:] = (20.0, -20.0)
            n += run.run().env_steps
        result["collapsed" if collapse else "early"] = 1e6 * (time.process_time() - start) / n
    print(json.dumps(result))


if __name__ == "__main__":
    main()
