"""pgbench: a reproducible benchmark and report generator for policy-gradient methods."""

__version__ = "0.1.0"
