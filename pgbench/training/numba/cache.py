"""Keep Numba's disk cache of the compiled engine in step with its sources.

Numba keys a cached function on the time stamp of the file that defines it, yet a compiled
function holds the functions it calls: :func:`pgbench.training.numba.loop.train_rounds` holds the
kernels, the random streams and CartPole's equations, each from another file. After a change to
one of those (a ``git pull``, an edit), Numba would keep loading the old machine code: old
numbers, old speed, with no warning. So the engine keys the whole cache on its sources: a stamp
file beside the cache holds the sha256 of :data:`SOURCES` and Numba's version, and when it differs
every cached file of the engine is deleted before anything is compiled (then rebuilt, once, by
the next ``pgbench compile`` or training process).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pgbench.core.io import write_text_atomic

_PACKAGE = Path(__file__).resolve().parent

#: The files whose code the compiled loop holds, and the package's ``__init__`` (it sets how Numba
#: compiles them).
SOURCES = (_PACKAGE.parent.parent / "envs" / "cartpole.py", _PACKAGE / "kernels.py",
           _PACKAGE / "streams.py", _PACKAGE / "update.py", _PACKAGE / "loop.py",
           _PACKAGE / "__init__.py")

STAMP = "pgbench-engine-sources.sha256"


def sources_digest(sources=SOURCES) -> str:
    """sha256 of the sources' bytes (in order) and Numba's version."""
    import numba

    h = hashlib.sha256(numba.__version__.encode())
    for path in sources:
        h.update(b"\0" + Path(path).read_bytes())
    return h.hexdigest()


def cache_dirs() -> list[Path]:
    """Where Numba keeps this package's cache: its ``__pycache__``, or under ``NUMBA_CACHE_DIR``."""
    custom = os.environ.get("NUMBA_CACHE_DIR")
    return [Path(custom)] if custom else [_PACKAGE / "__pycache__"]


def clear_if_stale(directories=None, sources=SOURCES) -> int:
    """Delete the engine's cached machine code in ``directories`` unless their stamp matches the
    sources; write the stamp. Returns the number of files deleted. A directory that cannot be
    written is left alone (Numba then compiles in memory, as it does without a cache)."""
    digest = sources_digest(sources)
    names = tuple(Path(s).stem for s in sources)
    deleted = 0
    for directory in directories if directories is not None else cache_dirs():
        stamp = Path(directory) / STAMP
        try:
            if stamp.is_file() and stamp.read_text().strip() == digest:
                continue
            if Path(directory).is_dir():
                for path in Path(directory).rglob("*.nb[ic]"):
                    # under a shared NUMBA_CACHE_DIR, only files of pgbench's package
                    ours = directory != os.environ.get("NUMBA_CACHE_DIR") or "pgbench" in str(path)
                    if ours and path.name.split(".")[0] in names:
                        path.unlink(missing_ok=True)
                        deleted += 1
            write_text_atomic(stamp, digest + "\n")  # (creates the directory)
        except OSError:
            continue
    return deleted
