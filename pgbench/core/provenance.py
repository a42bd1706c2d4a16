"""Where and with what a result was made: recorded in every run.json and summary."""

from __future__ import annotations

import datetime as dt
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("pgbench", "torch", "numba", "gymnasium", "mujoco", "numpy", "scipy", "pandas",
            "pyarrow", "matplotlib", "seaborn", "jinja2", "snakemake")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the checkout holding this package, or ("unknown", False)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return (commit or "unknown"), dirty


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Code version, package versions and machine: shared by runs and summaries."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
    }


def provenance(**extra) -> dict:
    import torch

    from pgbench.core.dispatch import fingerprint, numba_target

    return {
        **machine_info(),
        "hostname": socket.gethostname(),
        "torch_threads": torch.get_num_threads(),
        "dispatch": fingerprint(),
        "numba_target": numba_target(),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        **extra,
    }
