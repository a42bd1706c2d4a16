"""One numeric code path on every x86-64 machine: the CPU dispatch pinned at process start.

torch, NumPy, their BLAS libraries and Numba each pick SIMD kernels for the CPU they find. The
kernels for AVX2 and for AVX-512 round differently, and so do MKL's per-vendor code paths, so
the same seed gives another trajectory on another machine once a rounding difference flips an
action. Which kernels run is fixed by environment variables that each library reads once, when
it loads. :func:`pin` sets them, so it must run before torch or NumPy is imported:
``pgbench/__init__.py`` calls it first, which covers the CLI, the workflow's jobs (they call the
CLI) and the tests (they import ``pgbench``).

What is promised (README, Reproducibility): with these settings, the same config and seed give
the same bytes on every x86-64 machine with AVX2 and FMA (x86-64-v3: Intel since Haswell, AMD
since Zen), whatever else it offers. glibc's libm, which ATen's scalar kernels, Python's
``math`` and Numba call, picks its variant by CPU too (FMA or not); on x86-64-v3 it is always
the FMA one. Elsewhere (older x86, ARM) the runs are valid but not byte-identical to x86-64-v3.

``PGBENCH_DISPATCH=native`` leaves every library to its own choice (for benchmarks and for the
test that shows the pinning matters); every run records which it had (:func:`fingerprint`).
"""

from __future__ import annotations

import os
import platform
import sys

#: environment settings read by the libraries when they load, and why each one
PINNED_ENV: dict[str, str] = {
    # ATen's elementwise and reduction kernels come in default/avx2/avx512 builds that round
    # differently (vectorised exp, log, tanh, sums); the default build is the same everywhere.
    "ATEN_CPU_CAPABILITY": "default",
    # MKL (torch's BLAS) picks code paths by vendor and ISA; COMPATIBLE is one path for all.
    "MKL_CBWR": "COMPATIBLE",
    # oneDNN JIT-compiles for the widest ISA it finds; torch's mkldnn switch is also turned off
    # (configure_torch) and this caps what is left.
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # NumPy's universal functions dispatch up to AVX-512 (X86_V4 and later): cap them at AVX2.
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    # Numba vectorises calls to exp/log/... through Intel's SVML when it is installed.
    "NUMBA_DISABLE_INTEL_SVML": "1",
    # One thread everywhere: a parallel reduction's order depends on the thread count.
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


#: set only on x86-64-v3 machines: these kernels need AVX2 (elsewhere they would not run)
PINNED_ENV_AVX2: dict[str, str] = {
    # NumPy's and SciPy's OpenBLAS pick a kernel per CPU model (Haswell, SkylakeX, Zen ...).
    "OPENBLAS_CORETYPE": "Haswell",
}


X86_64_V3_FLAGS = ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe")


_state: dict = {"pinned": False, "late": []}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def is_x86_64_v3() -> bool:
    """True on x86-64 CPUs with AVX2 and FMA: the platform whose results are byte-identical."""
    return platform.machine() in {"x86_64", "AMD64"} and set(X86_64_V3_FLAGS) <= cpu_flags()


def pin() -> None:
    """Set :data:`PINNED_ENV` (and, on x86-64-v3, :data:`PINNED_ENV_AVX2`), overriding the
    caller's values; remember which libraries had loaded already (too late to pin them)."""
    if os.environ.get("PGBENCH_DISPATCH", "pinned") == "native":
        return
    wanted = dict(PINNED_ENV)
    if is_x86_64_v3():
        wanted.update(PINNED_ENV_AVX2)
    os.environ.update(wanted)
    _state["pinned"] = True
    _state["late"] = [m for m in ("numpy", "torch", "numba") if m in sys.modules]


def configure_torch(torch) -> None:
    """The settings torch takes after it loads: one thread, no oneDNN (MKL does the matmuls)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    if _state["pinned"]:
        torch.backends.mkldnn.enabled = False


def _numpy_dispatch() -> list[str]:
    """NumPy's dispatch targets in use on this CPU (e.g. ['X86_V3'])."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # another NumPy layout: say so rather than guess
        return ["unknown"]
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def numba_target() -> str:
    """The CPU Numba compiles for, and whether SVML is in use (machine detail, not part of the
    fingerprint: without fast-math, Numba's code rounds the same on every x86-64-v3 CPU)."""
    try:
        import llvmlite.binding as llvm
        from numba.core import config
    except ImportError:
        return "not installed"
    svml = "svml" if config.USING_SVML else "no svml"
    return f"{config.CPU_NAME or llvm.get_host_cpu_name()} ({svml})"


def fingerprint() -> dict:
    """The numeric code path this process runs on: recorded in every run's provenance.

    Two runs whose fingerprints (and package versions) are equal are expected to give the same
    bytes; ``platform`` says whether the byte-identity promise covers this machine at all.
    """
    import torch

    libc, libc_version = platform.libc_ver()
    return {
        "pinned": _state["pinned"],
        "pinned_too_late": list(_state["late"]),
        "platform": "x86-64-v3" if is_x86_64_v3() else f"{platform.machine()} (not x86-64-v3)",
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "torch_threads": torch.get_num_threads(),
        "numpy_dispatch": _numpy_dispatch(),
        "libc": f"{libc} {libc_version}".strip(),
        "env": {k: os.environ.get(k, "") for k in {**PINNED_ENV, **PINNED_ENV_AVX2}},
    }


def check_pinned() -> str | None:
    """A one-line warning when this process's results may not match other machines', else None."""
    if not _state["pinned"]:
        return ("CPU dispatch not pinned (PGBENCH_DISPATCH=native): results may differ on "
                "another CPU")
    if _state["late"]:
        return (f"CPU dispatch pinned after {', '.join(_state['late'])} had loaded: import "
                "pgbench before them, or results may differ on another CPU")
    return None
