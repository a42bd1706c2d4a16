"""Platform fingerprints (pgbench/core/fingerprint.py): what must match for `identical`."""

import json

from pgbench.core.fingerprint import (
    UNKNOWN,
    architecture,
    platform_difference,
    platform_fingerprint,
)

DISPATCH = {"aten_cpu_capability": "avx2", "mkl_cbwr": "AVX2", "numpy_disabled": ["AVX512F"],
            "threads": 1}


def prov(**changes):
    return {"dispatch": DISPATCH, "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
            "packages": {"numpy": "2.4.6", "torch": "2.13.0"}, **changes}


def test_architecture_from_machine_or_platform_string():
    assert architecture({"machine": "aarch64", "platform": "Linux-x86_64"}) == "aarch64"
    assert architecture({"platform": "Linux-6.1.0-x86_64-with-glibc2.36"}) == "x86_64"
    assert architecture({"platform": "macOS-14.2-arm64-arm-64bit"}) == "arm64"
    assert architecture({"platform": "something else"}) == UNKNOWN


def test_fingerprint_holds_dispatch_architecture_and_packages():
    document = json.loads(platform_fingerprint(prov()))
    assert document == {"dispatch": DISPATCH, "machine": "x86_64",
                        "packages": {"numpy": "2.4.6", "torch": "2.13.0"}}
    # key order in run.json does not matter
    shuffled = prov(dispatch=dict(reversed(list(DISPATCH.items()))))
    assert platform_fingerprint(shuffled) == platform_fingerprint(prov())


def test_missing_dispatch_is_an_unknown_platform_that_matches_nothing():
    assert platform_fingerprint(prov(dispatch=None)) == UNKNOWN
    assert platform_fingerprint({}) == UNKNOWN and platform_fingerprint(None) == UNKNOWN
    assert platform_difference({UNKNOWN}, {UNKNOWN}).startswith("platform unknown")
    known = platform_fingerprint(prov())
    assert "these runs" in platform_difference({known}, {UNKNOWN})


def test_difference_names_what_changed():
    a = platform_fingerprint(prov())
    assert platform_difference({a}, {a}) == ""
    b = platform_fingerprint(prov(dispatch={**DISPATCH, "aten_cpu_capability": "avx512"}))
    assert platform_difference({a}, {b}) == \
        "other platform (dispatch.aten_cpu_capability avx2->avx512)"
    c = platform_fingerprint(prov(platform="Linux-6.1-aarch64-with-glibc2.36"))
    assert platform_difference({a}, {c}) == "other platform (machine x86_64->aarch64)"
    assert platform_difference({a}, {a, b}) == "runs from several platforms"
