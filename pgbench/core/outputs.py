"""Where a command may write: one rule for every ``--out`` (train, train-job, aggregate, report,
reference).

A target is judged before anything is computed:

- it does not exist, or is an empty directory: it is written;
- it is pgbench's own output of the command's kind and already holds what the command would
  write (a complete run of the same config; a reference of the same runs): it is skipped, with
  a message;
- it is pgbench's own output of that kind, but another one: it is replaced only with ``--force``;
- anything else (a user's file or directory, a file pgbench did not write inside the target)
  is refused: a :class:`UserError` naming the path and what is accepted (exit 2). ``--force``
  does not change that: pgbench never deletes a file it did not write.

A report directory may also hold other pgbench outputs (the committed reference report, a CI
reference, a reference digest): they are left alone. Hidden entries (staging files of atomic
writes, ``.DS_Store``) are ignored and never touched, except inside a run directory, which is
replaced as a whole and so must hold nothing but a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pgbench.core.errors import UserError

WRITE, SKIP = "write", "skip"


def _json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _head(path: Path, n: int = 1 << 16) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(n)
    except OSError:
        return ""


def _is_run_json(path: Path) -> bool:
    info = _json(path)
    return info is not None and {"config", "run_hash", "status"} <= info.keys()


def _is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _is_summary_provenance(path: Path) -> bool:
    info = _json(path)
    return info is not None and {"config_hashes", "n_runs", "command"} <= info.keys()


def _is_report_html(path: Path) -> bool:
    return path.is_file() and 'name="generator" content="pgbench report' in _head(path)


def _is_report_markdown(path: Path) -> bool:
    return path.is_file() and "pgbench report" in _head(path)


#: figure files pgbench draws: ``<kind>-<suite>-<env>-<6 hex>.png`` and the like
_FIGURE = re.compile(r"^[\w.-]+\.png$")


def _is_figures_dir(path: Path) -> bool:
    return path.is_dir() and all(p.is_file() and _FIGURE.match(p.name)
                                 for p in path.iterdir() if not p.name.startswith("."))


def is_reference(path: Path) -> bool:
    """A reference written by ``pgbench reference`` (for ``pgbench check``)."""
    info = _json(path) if path.is_file() else None
    return info is not None and {"schema", "rows", "package_sets"} <= info.keys()


def is_digest(path: Path) -> bool:
    """A digest written by ``pgbench digest`` (see :mod:`pgbench.report.digest`)."""
    info = _json(path) if path.is_file() else None
    return info is not None and info.get("kind") == "pgbench digest"


@dataclass(frozen=True)
class Kind:
    """One kind of output: the entries it writes inside its directory, each with a test that
    an existing entry of that name is pgbench's (a user's ``index.html`` is not)."""

    name: str                                 # "run directory", "summary directory", "report"
    entries: dict[str, Callable[[Path], bool]]
    whole_dir: bool = False                   # replaced as a whole (one rename): nothing else allowed
    neighbours: tuple[Callable[[Path], bool], ...] = ()  # other pgbench outputs allowed beside
    pattern: str | None = None                # more entry names (a regex), tested by ``pattern_test``
    pattern_test: Callable[[Path], bool] | None = None

    def test_for(self, name: str) -> Callable[[Path], bool] | None:
        """The test of an entry called ``name``, None when this kind writes no such entry."""
        if name in self.entries:
            return self.entries[name]
        if self.pattern is not None and re.fullmatch(self.pattern, name):
            return self.pattern_test
        return None

    def owns(self, path: Path) -> bool:
        """``path`` is one of this kind's entries and pgbench wrote it."""
        test = self.test_for(path.name)
        return test is not None and test(path)

    def is_own(self, path: Path) -> bool:
        """``path`` is a directory holding this kind's entries (at least one), all pgbench's."""
        if not path.is_dir():
            return False
        found = [p for p in path.iterdir() if self.test_for(p.name) is not None]
        return bool(found) and all(self.owns(p) for p in found)


RUN = Kind("run directory", {"run.json": _is_run_json, "episodes.parquet": _is_parquet,
                             "updates.parquet": _is_parquet}, whole_dir=True)


SUMMARY = Kind("summary directory", {
    **{f"{name}.parquet": _is_parquet for name in ("runs", "curves", "compute", "claims")},
    "provenance.json": _is_summary_provenance},
    # every gradstudy*.parquet table `pgbench aggregate --gradstudy` copies
    pattern=r"gradstudy\w*\.parquet", pattern_test=_is_parquet)


def holds_only_runs(path: Path) -> bool:
    """A folder of kept run directories (e.g. ``reports/full/runs/``, runs kept in git between
    sittings), at any depth, with README files beside them: pgbench's, and no report's to touch."""
    if not path.is_dir() or path.is_symlink():
        return False
    found = False
    for p in path.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_file() and p.name == "README.md":
            continue
        if RUN.is_own(p) or holds_only_runs(p):
            found = True
            continue
        return False
    return found


REPORT = Kind("report directory", {"index.html": _is_report_html, "README.md": _is_report_markdown,
                                   "figures": _is_figures_dir, "digest.json": is_digest},
              neighbours=(lambda p: REPORT.is_own(p), is_reference, is_digest, holds_only_runs))


def _listing(paths: list[Path], limit: int = 3) -> str:
    names = sorted(p.name for p in paths)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_dir(path: str | Path, kind: Kind, *, force: bool, same: Callable[[Path], bool] | None = None,
              option: str = "--out") -> str:
    """Judge ``path`` as the target of a ``kind`` output: :data:`WRITE` or :data:`SKIP` (``same``
    says the existing output already is what would be written), else a UserError."""
    path = Path(path)
    accepted = f"accepted: a new or empty directory, or a pgbench {kind.name} (replaced with --force)"
    if not path.exists() and not path.is_symlink():
        return WRITE
    if not path.is_dir():
        raise UserError(f"{option} {path} exists and is not a directory; pgbench never deletes a "
                        f"file it did not write; {accepted}")
    if kind.whole_dir and path.is_symlink():  # replacing it would replace the link, not its target
        raise UserError(f"{option} {path} is a symbolic link; {accepted}")
    entries = [p for p in path.iterdir() if kind.whole_dir or not p.name.startswith(".")]
    if not entries:
        return WRITE
    foreign = [p for p in entries if not kind.owns(p) and (
        kind.test_for(p.name) is not None or not any(ok(p) for ok in kind.neighbours))]
    if foreign:
        raise UserError(f"{option} {path} holds files pgbench did not write ({_listing(foreign)}); "
                        f"pgbench never deletes them, even with --force; {accepted}")
    if not any(kind.test_for(p.name) is not None for p in entries):
        return WRITE  # only other pgbench outputs (e.g. the committed reference beside a report)
    if same is not None and same(path):
        return SKIP
    if not force:
        raise UserError(f"{option} {path} is an existing pgbench {kind.name}; pass --force to "
                        "replace it, or choose another path")
    return WRITE


def check_file(path: str | Path, what: str, is_own: Callable[[Path], bool], *, force: bool,
               same: Callable[[Path], bool] | None = None, option: str = "--out") -> str:
    """Judge ``path`` as the target of a one-file output (``what``, e.g. "reference")."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return WRITE
    accepted = f"accepted: a new file, or a pgbench {what} (replaced with --force)"
    if not path.is_file() or not is_own(path):
        kind = "a directory" if path.is_dir() else f"not a pgbench {what}"
        raise UserError(f"{option} {path} exists and is {kind}; pgbench never deletes a file it "
                        f"did not write; {accepted}")
    if same is not None and same(path):
        return SKIP
    if not force:
        raise UserError(f"{option} {path} is an existing pgbench {what}; pass --force to replace "
                        "it, or choose another path")
    return WRITE


def own_entries(path: str | Path, kind: Kind) -> list[Path]:
    """The entries of ``kind`` that pgbench wrote in ``path`` (what a replacement may remove)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return [p for p in path.iterdir() if kind.owns(p)]
