"""pgbench: a reproducible benchmark and report generator for policy-gradient methods."""

# First, before torch or NumPy can load: fix which CPU kernels they will use (dispatch.py).
from pgbench.core import dispatch as _dispatch

_dispatch.pin()

__version__ = "0.1.0"
