"""Shared pytest set-up: pgbench loads first, so its CPU-dispatch pinning (pgbench/core/dispatch.py)
applies to torch and NumPy in the test process as it does in the CLI."""

import pgbench  # noqa: F401  (must precede any torch / numpy import)
