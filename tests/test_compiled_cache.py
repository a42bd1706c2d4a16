"""The compiled engine's disk cache is keyed on its sources (pgbench/training/numba/cache.py):
Numba keys a cached function on its own file's time stamp only, so a changed kernel would
otherwise keep running from the cache inside the compiled loop."""

from __future__ import annotations

import ast
from pathlib import Path

from pgbench.training.numba import cache


def _sources(tmp_path):
    paths = []
    for name in ("cartpole", "kernels", "streams", "loop"):
        path = tmp_path / "src" / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# {name}\n")
        paths.append(path)
    return paths


def _cache(directory, names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"machine code")


def test_a_stale_cache_is_deleted_and_a_current_one_kept(tmp_path):
    sources = _sources(tmp_path)
    cached = ["kernels.adam-293.py311.nbi", "kernels.adam-293.py311.1.nbc",
              "loop.train_rounds-40.py311.nbi", "streams.reset_state-50.py311.1.nbc"]
    other = ["unrelated.f-1.py311.nbi", "kernels.cpython-311.pyc"]
    directory = tmp_path / "__pycache__"
    _cache(directory, cached + other)
    # no stamp yet (a cache from before the guard): every cached file of the engine goes
    assert cache.clear_if_stale([directory], sources) == len(cached)
    assert sorted(p.name for p in directory.iterdir()) == sorted(other + [cache.STAMP])
    # the stamp now matches: a rebuilt cache is kept
    _cache(directory, cached)
    assert cache.clear_if_stale([directory], sources) == 0
    assert all((directory / name).exists() for name in cached)
    # one source changes (a kernel edited, a git pull): the cache is stale again
    sources[1].write_text("# kernels, edited\n")
    assert cache.clear_if_stale([directory], sources) == len(cached)
    assert cache.clear_if_stale([directory], sources) == 0


def test_an_unwritable_or_missing_directory_is_left_alone(tmp_path):
    sources = _sources(tmp_path)
    missing = tmp_path / "new" / "__pycache__"
    assert cache.clear_if_stale([missing], sources) == 0 and (missing / cache.STAMP).is_file()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cache.clear_if_stale([blocker / "__pycache__"], sources) == 0


def test_the_sources_are_every_file_the_compiled_loop_holds():
    """Each module that compiles with Numba, and each module those compile functions from, is
    in SOURCES (a new one left out would bring the stale-cache bug back)."""
    package = Path(cache.__file__).parent
    compiling = {p for p in package.glob("*.py") if "jit(" in p.read_text()}
    assert compiling <= set(cache.SOURCES)
    kernels = ast.parse((package / "kernels.py").read_text())
    imported = {a.name for node in ast.walk(kernels) if isinstance(node, ast.ImportFrom)
                and node.module == "pgbench.envs" for a in node.names}
    assert imported == {"cartpole"}
    assert package.parent.parent / "envs" / "cartpole.py" in cache.SOURCES
