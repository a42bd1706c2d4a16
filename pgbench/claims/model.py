"""A claim as data: the fields of claims.yaml, validated, each error naming the bad value and
the accepted ones.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgbench.claims.catalog import STATISTICS
from pgbench.claims.registry import PARAM_CHECKS, REQUIRED
from pgbench.core.errors import UserError

DIRECTIONS = (">=", "<=")


#: Summary tables a claim may read (files SUMMARY/<name>.parquet).
TABLES = ("runs", "gradstudy", "gradstudy_pairs", "gradstudy_layers")


#: Time-to-threshold rules of runs.parquet: rule -> (steps, episodes, censored) columns.


#: How a claim's quote relates to it: the source states it (``quote``), or the claim is read
#: from the quoted sentence without being stated there (``implied``, shown as "implied by").
QUOTE_KINDS = ("quote", "implied")


_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


_SOURCE = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt$")


_ROLES = ("a", "b")


_REQUIRED = ("id", "source", "quote", "suite", "env", "statistic", "direction", "threshold")


_OPTIONAL = ("statement", "compare", "fixed", "table", "params", "test", "quote_kind",
             "tolerance", "tolerance_name", "also")


#: Fields an entry of ``also`` (another test of the same claim) may set.
_ALSO_FIELDS = ("test", "statistic", "params", "direction", "threshold", "tolerance",
                "tolerance_name", "compare", "fixed", "table")


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Claim:
    """One claim of claims.yaml, validated. ``envs == ("*",)`` means every env of the suite."""

    id: str
    source: str
    quote: str
    suite: str
    envs: tuple[str, ...]
    statistic: str
    direction: str
    threshold: float
    statement: str = ""
    compare: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    table: str = "runs"
    params: dict[str, Any] = field(default_factory=dict)
    test: str = "main"
    quote_kind: str = "quote"
    tolerance: str = ""
    tolerance_name: str = "threshold"


# --------------------------------------------------------------------------- loading
def default_claims_path() -> Path:
    return Path(str(importlib.resources.files("pgbench.claims").joinpath("claims.yaml")))


def known_variants() -> tuple[str, ...]:
    from pgbench.rl.variants import VARIANTS

    return tuple(VARIANTS)


def _bad(claim_id: str, field_name: str, problem: str, accepted: str) -> UserError:
    return UserError(f"claim {claim_id!r}: field {field_name!r} {problem}; accepted: {accepted}")


def parse_claim(raw: Any, index: int) -> Claim:
    """One claim from its YAML mapping; UserError naming the claim and field on any problem."""
    if not isinstance(raw, dict):
        raise UserError(f"claim #{index + 1} is a {type(raw).__name__}, not a mapping of fields; "
                        f"accepted fields: {', '.join(_REQUIRED + _OPTIONAL)}")
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise _bad(str(cid) if cid is not None else f"#{index + 1}", "id", f"is {cid!r}",
                   "lower-case words and digits joined by '-', e.g. slides-speedup")
    unknown = sorted(set(raw) - set(_REQUIRED + _OPTIONAL))
    if unknown:
        raise _bad(cid, unknown[0], "is not a claim field", ", ".join(_REQUIRED + _OPTIONAL))
    for name in _REQUIRED:
        if name not in raw or raw[name] is None:
            raise _bad(cid, name, "is missing", "see the comments at the top of claims.yaml")

    def text(name: str, pattern: re.Pattern | None = None, accepted: str = "a non-empty string") -> str:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value)):
            raise _bad(cid, name, f"is {value!r}", accepted)
        return " ".join(value.split())

    source = text("source", _SOURCE, "a file name in shared/sources, e.g. 001_784bf18d2f77e7fb.txt")
    quote = text("quote")
    suite = text("suite")
    statement = text("statement") if raw.get("statement") is not None else ""
    test = text("test") if raw.get("test") is not None else "main"
    tolerance = text("tolerance") if raw.get("tolerance") is not None else ""
    tolerance_name = text("tolerance_name") if raw.get("tolerance_name") is not None else "threshold"
    quote_kind = raw.get("quote_kind", "quote")
    if quote_kind not in QUOTE_KINDS:
        raise _bad(cid, "quote_kind", f"is {quote_kind!r}", ", ".join(QUOTE_KINDS))

    env = raw["env"]
    envs = (env,) if isinstance(env, str) else tuple(env) if isinstance(env, list) else None
    if not envs or any(not isinstance(e, str) or not e for e in envs) or ("*" in envs and len(envs) > 1):
        raise _bad(cid, "env", f"is {env!r}", 'an env id, a list of env ids, or "*" (every env of the suite)')

    direction = raw["direction"]
    if direction not in DIRECTIONS:
        raise _bad(cid, "direction", f"is {direction!r}", ", ".join(DIRECTIONS))
    threshold = raw["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise _bad(cid, "threshold", f"is {threshold!r}", "a finite number")

    statistic = raw["statistic"]
    names = sorted(STATISTICS)
    if statistic not in names:
        raise _bad(cid, "statistic", f"is {statistic!r}, which is not registered", ", ".join(names))
    spec = STATISTICS[statistic]

    table = raw.get("table", spec.table)
    if table not in TABLES:
        raise _bad(cid, "table", f"is {table!r}", ", ".join(TABLES))

    compare = raw.get("compare") or {}
    if not isinstance(compare, dict):
        raise _bad(cid, "compare", f"is {compare!r}",
                   "a mapping of role (a, b) to variant, e.g. {a: vanilla}")
    variants = known_variants()
    for role, variant in compare.items():
        if role not in _ROLES:
            raise _bad(cid, "compare", f"has role {role!r}", ", ".join(_ROLES))
        if variant not in variants:
            raise _bad(cid, f"compare.{role}", f"names unknown variant {variant!r}", ", ".join(variants))
    if table == "runs" and "a" not in compare:
        raise _bad(cid, "compare", "needs role 'a' (the runs a claim on the runs table is about)",
                   "{a: VARIANT} or {a: VARIANT, b: VARIANT}")
    roles_needed = spec.roles if table == "runs" else None
    if roles_needed is not None and tuple(sorted(compare)) != roles_needed:
        raise _bad(cid, "compare", f"has roles {', '.join(sorted(compare))} but statistic "
                   f"{statistic!r} compares {', '.join(spec.roles)}", ", ".join(spec.roles))

    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise _bad(cid, "fixed", f"is {fixed!r}", "a mapping of setting to value, e.g. {dropout: 0.6}")
    fixed = {str(k): str(v) for k, v in fixed.items()}

    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise _bad(cid, "params", f"is {params!r}", "a mapping of parameter to value")
    if spec.params is not None:
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise _bad(cid, f"params.{unknown[0]}", f"is not a parameter of {statistic!r}",
                       ", ".join(spec.params) or "none")
        missing = [k for k, v in spec.params.items() if v is REQUIRED and k not in params]
        if missing:
            raise _bad(cid, f"params.{missing[0]}", "is missing", f"a value for {missing[0]}")
        params = {**{k: v for k, v in spec.params.items() if v is not REQUIRED}, **params}
        for key, check in {**PARAM_CHECKS, **spec.checks}.items():
            if key in params and not check[0](params[key]):
                raise _bad(cid, f"params.{key}", f"is {params[key]!r}", check[1])

    return Claim(id=cid, source=source, quote=quote, suite=suite, envs=envs, statistic=statistic,
                 direction=direction, threshold=float(threshold), statement=statement,
                 compare=dict(compare), fixed=fixed, table=table, params=dict(params),
                 test=test, quote_kind=quote_kind, tolerance=tolerance,
                 tolerance_name=tolerance_name)


def parse_claim_tests(raw: Any, index: int) -> list[Claim]:
    """A claim and the other tests of it listed under ``also`` (each a Claim with the same id
    and its own ``test`` name); UserError naming the claim and field on any problem."""
    main = parse_claim({k: v for k, v in raw.items() if k != "also"} if isinstance(raw, dict)
                       else raw, index)
    also = raw.get("also") or []
    if not isinstance(also, list):
        raise _bad(main.id, "also", f"is {also!r}", "a list of tests, each a mapping with "
                   + ", ".join(_ALSO_FIELDS))
    out = [main]
    for item in also:
        if not isinstance(item, dict) or "test" not in item:
            raise _bad(main.id, "also", f"has entry {item!r}", "a mapping with a 'test' name and "
                       "any of " + ", ".join(_ALSO_FIELDS))
        unknown = sorted(set(item) - set(_ALSO_FIELDS))
        if unknown:
            raise _bad(main.id, f"also.{unknown[0]}", "is not a field of a test", ", ".join(_ALSO_FIELDS))
        base = {k: v for k, v in raw.items() if k not in ("also", "params", "tolerance",
                                                          "tolerance_name", "test")}
        out.append(parse_claim({**base, **item}, index))
    tests = [c.test for c in out]
    if len(set(tests)) != len(tests):
        raise _bad(main.id, "also", f"repeats a test name ({', '.join(tests)})", "distinct test names")
    return out


def claims_first_test(claims: list[Claim], claim_id: str) -> str:
    """The test name of a claim's first (main) entry."""
    return next(c.test for c in claims if c.id == claim_id)


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """The claims of ``path`` (default: the packaged claims.yaml), validated."""
    import yaml

    path = Path(path) if path is not None else default_claims_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read claims file {path} ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UserError(f"claims file {path} is not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("claims"), list):
        raise UserError(f"claims file {path} must be a mapping with a list under 'claims'")
    claims = [c for i, item in enumerate(raw["claims"]) for c in parse_claim_tests(item, i)]
    ids = [c.id for c in claims if c.test == claims_first_test(claims, c.id)]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise _bad(repeated[0], "id", "is used by more than one claim", "unique ids")
    return claims
