"""Atomic writes: a reader never sees a half-written file or run directory."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def read_json_object(path: str | os.PathLike, expected: str) -> dict:
    """The JSON object in ``path``; a UserError naming the file (and what was ``expected``) when
    it is unreadable, not JSON, or not an object."""
    from pgbench.core.errors import UserError

    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not readable JSON ({err}); expected {expected}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a JSON object; expected {expected}")
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as Parquet, atomically."""
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    write_bytes_atomic(path, buf.getvalue())


def replace_dir_atomic(staging: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a fully written ``staging`` directory to ``final``, replacing what was there.

    ``staging`` must be on the same filesystem (create it next to ``final``). An old ``final``
    is moved aside first and removed only after the new one is in place. Callers judge ``final``
    first (:mod:`pgbench.core.outputs`): this removes whatever directory is there.
    """
    staging, final = Path(staging), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise FileExistsError(f"{final} is not a directory; not replacing it")
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_dir(final: str | os.PathLike) -> Path:
    """A fresh hidden directory beside ``final`` to write into before ``replace_dir_atomic``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    os.chmod(path, 0o777 & ~_umask())  # mkdtemp makes 0700
    return path
