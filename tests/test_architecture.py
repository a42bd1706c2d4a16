"""The package's shape stays as docs/architecture.md draws it: layers that import only downwards,
no import cycles (import-linter, `.importlinter`), and small modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo",
                           str(root / ".importlinter")], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)


def test_layers_and_no_cycles_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_fails_on_an_upward_import_and_on_a_cycle(tmp_path):
    """The check can fail: a copy of the package with core importing the report (upwards), and
    two claims modules importing each other, breaks both contracts."""
    shutil.copytree(ROOT / "pgbench", tmp_path / "pgbench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    io = tmp_path / "pgbench" / "core" / "io.py"
    io.write_text(io.read_text() + "\nfrom pgbench.report import format as _upwards  # noqa\n")
    summary = tmp_path / "pgbench" / "claims" / "summary.py"
    summary.write_text(summary.read_text() + "\nfrom pgbench.claims import evaluate  # noqa\n")
    evaluate = tmp_path / "pgbench" / "claims" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\nfrom pgbench.claims import summary  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "0 kept, 2 broken" in result.stdout, result.stdout[-3000:]
    assert "pgbench.core is not allowed to import pgbench.report" in result.stdout


def test_every_module_is_small():
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines())
             for p in (ROOT / "pgbench").rglob("*.py")}
    assert sizes and {str(p): n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
