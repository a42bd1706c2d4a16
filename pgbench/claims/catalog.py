"""Every statistic a claim can name, by name.

The statistics are defined in :mod:`pgbench.claims.run_statistics` (on the runs table) and
:mod:`pgbench.claims.gradient_statistics` (on the gradient study's tables), each registering
itself with :func:`pgbench.claims.registry.register_statistic`. This module imports both, so
that whoever reads :data:`STATISTICS` sees all of them: a claim that names a statistic not
here fails when claims.yaml is loaded, naming the accepted ones.
"""

from __future__ import annotations

from pgbench.claims import gradient_statistics, run_statistics
from pgbench.claims.registry import STATISTICS

__all__ = ["STATISTICS", "gradient_statistics", "run_statistics"]
