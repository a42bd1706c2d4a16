"""A run's platform fingerprint: what must match for two runs of one config and seed to be
expected byte-identical.

Made from what run.json records (docs/contracts.md): the pinned CPU dispatch
(``provenance.dispatch``: ATen's capability, MKL's CBWR, NumPy's disabled features, Numba's
target CPU, threads...), the CPU architecture (``provenance.machine``, or the architecture named
in ``provenance.platform``) and the package versions. A run without a recorded ``dispatch`` was
made before dispatch was pinned: its platform is unknown and matches nothing, not even another
unknown one, because nothing says its numbers would repeat.

``pgbench check`` expects ``identical`` only between runs whose fingerprints match; elsewhere it
goes straight to its statistical test and says why (:func:`platform_difference`).
"""

from __future__ import annotations

import json

#: The fingerprint of a run that does not record its dispatch.
UNKNOWN = "unknown"


#: Architectures as ``platform.machine()`` names them, looked for in ``platform.platform()``.
ARCHITECTURES = ("x86_64", "AMD64", "aarch64", "arm64", "ppc64le", "s390x", "riscv64", "i686")


def architecture(provenance: dict) -> str:
    """``provenance["machine"]`` if recorded, else the architecture named in its ``platform``
    string (e.g. ``Linux-6.1-x86_64-with-glibc2.36`` -> ``x86_64``), else ``unknown``."""
    machine = provenance.get("machine")
    if isinstance(machine, str) and machine:
        return machine
    text = str(provenance.get("platform", ""))
    for arch in ARCHITECTURES:
        if arch in text.replace("-", " ").split():
            return arch
    return UNKNOWN


def platform_fingerprint(provenance: dict | None) -> str:
    """Canonical JSON ``{"dispatch": ..., "machine": ..., "packages": ...}`` of a run's
    provenance, or ``"unknown"`` when it records no ``dispatch`` dict.

    >>> platform_fingerprint({"platform": "Linux-6.1-x86_64-with-glibc2.36", "packages": {}})
    'unknown'
    >>> platform_fingerprint({"dispatch": {"threads": 1}, "machine": "x86_64",
    ...                       "packages": {"numpy": "2.4.6"}})
    '{"dispatch":{"threads":1},"machine":"x86_64","packages":{"numpy":"2.4.6"}}'
    """
    provenance = provenance if isinstance(provenance, dict) else {}
    dispatch = provenance.get("dispatch")
    if not isinstance(dispatch, dict):
        return UNKNOWN
    packages = provenance.get("packages")
    document = {"dispatch": dispatch, "machine": architecture(provenance),
                "packages": packages if isinstance(packages, dict) else {}}
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _flat(fingerprint: str) -> dict[str, object]:
    """``{"dispatch.threads": 1, "machine": "x86_64", "packages.numpy": "2.4.6", ...}``."""
    document = json.loads(fingerprint)
    flat = {"machine": document.get("machine", UNKNOWN)}
    for section in ("dispatch", "packages"):
        for key, value in (document.get(section) or {}).items():
            flat[f"{section}.{key}"] = value
    return flat


def platform_difference(ref: set[str] | list[str], cur: set[str] | list[str]) -> str:
    """Why runs with fingerprints ``cur`` are not expected to repeat runs with ``ref`` bytewise;
    ``""`` when every run on both sides has one and the same known fingerprint.

    >>> platform_difference({"unknown"}, {"unknown"})
    'platform unknown (the reference records no pinned dispatch)'
    """
    ref, cur = set(ref), set(cur)
    if UNKNOWN in ref:
        return "platform unknown (the reference records no pinned dispatch)"
    if UNKNOWN in cur:
        return "platform unknown (these runs record no pinned dispatch)"
    if len(ref) > 1 or len(cur) > 1:
        return "runs from several platforms"
    (r,), (c,) = ref, cur
    if r == c:
        return ""
    a, b = _flat(r), _flat(c)
    changed = [f"{k} {a.get(k, 'none')}->{b.get(k, 'none')}"
               for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"other platform ({shown})"
