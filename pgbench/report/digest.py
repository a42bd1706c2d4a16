"""Does your run reproduce the committed report? A small digest of a summary, and the comparison.

``digest.json`` (written by ``pgbench report`` beside index.html, and by ``pgbench digest``)
holds, for every run of the summary, its config hash and the sha256 of its episodes.parquet,
for every claims row its verdict, for each gradient-study table a hash of its values
(:func:`table_digest`), and the summary's provenance (package versions, CPU).
It is a few kilobytes where the runs are tens of megabytes, so the committed reference report
(reports/reference/) carries one, and ``pgbench compare`` answers with one line::

    your run reproduces the committed report: 246 of 246 runs byte-identical, verdicts equal,
    gradient study identical

or says what differs: runs missing on either side, runs of another config, runs whose episodes
differ (expected on another CPU or with other package versions: docs/contracts.md), and claims
whose verdict changed. It exits 0 when everything is equal, 1 when something differs, 2 on bad
input.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from pgbench.core.errors import UserError
from pgbench.core.io import read_json_object, write_json_atomic

KIND = "pgbench digest"


SCHEMA = 1


FILE_NAME = "digest.json"


#: the committed reference report's digest, what ``pgbench compare`` compares with by default
REFERENCE = Path("reports") / "reference" / FILE_NAME


RUN_KEY = ("suite", "env", "arm", "seed")


#: a claims row: a claim may have several tests (e.g. "typical" and "single run") per setting
CLAIM_KEY = ("claim_id", "suite", "env", "setting", "test")


PROVENANCE_KEYS = ("git_commit", "packages", "python", "platform", "cpu")


#: The summary's gradient-study tables, digested by content (``tables`` in the digest).
TABLES = ("gradstudy", "gradstudy_pairs", "gradstudy_layers")


#: rows listed before "... and N more"
MAX_LISTED = 20


def _number(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def table_digest(frame: pd.DataFrame) -> dict:
    """``{"rows": n, "sha256": ...}`` of a table's content: every column in name order, numbers as
    their float64 bytes (exact, unlike a text rendering), other values as text; independent of
    the parquet writer's metadata."""
    import hashlib

    h = hashlib.sha256()
    for column in sorted(frame.columns):
        values = frame[column]
        h.update(f"{column}\x1e".encode())
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            h.update(values.to_numpy(dtype="float64", na_value=float("nan")).tobytes())
        else:
            h.update("\x1f".join(map(str, values.tolist())).encode())
        h.update(b"\x1d")
    return {"rows": len(frame), "sha256": h.hexdigest()}


def build_digest(summary_dir: str | Path) -> dict:
    """The digest of a summary directory (runs.parquet; claims.parquet and provenance.json when
    there). Rows are sorted, so the same summary gives the same document."""
    summary = Path(summary_dir)
    try:
        runs = pd.read_parquet(summary / "runs.parquet",
                               columns=[*RUN_KEY, "config_hash", "episodes_sha256"])
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"cannot read {summary / 'runs.parquet'} ({err}); expected the --out "
                        "directory of `pgbench aggregate`") from None
    claims = None
    if (summary / "claims.parquet").exists():
        table = pd.read_parquet(summary / "claims.parquet")
        # (a claims table of an older layout may lack suite or env: they are then "")
        claims = sorted(({**{k: str(r.get(k, "")) for k in CLAIM_KEY}, "verdict": str(r["verdict"]),
                          "estimate": _number(r.get("estimate"))} for _, r in table.iterrows()),
                        key=lambda r: tuple(r[k] for k in CLAIM_KEY))
    prov = {}
    if (summary / "provenance.json").exists():
        found = read_json_object(summary / "provenance.json", "the summary's provenance")
        prov = {k: found.get(k) for k in PROVENANCE_KEYS}
    rows = sorted(({"suite": str(r.suite), "env": str(r.env), "arm": str(r.arm), "seed": int(r.seed),
                    "config_hash": str(r.config_hash), "episodes_sha256": str(r.episodes_sha256)}
                   for r in runs.itertuples(index=False)),
                  key=lambda r: tuple(r[k] for k in RUN_KEY))
    tables = {name: table_digest(pd.read_parquet(summary / f"{name}.parquet"))
              for name in TABLES if (summary / f"{name}.parquet").is_file()}
    return {"kind": KIND, "schema": SCHEMA, "provenance": prov, "runs": rows, "claims": claims,
            "tables": tables}


def write_digest(summary_dir: str | Path, path: str | Path) -> dict:
    document = build_digest(summary_dir)
    write_json_atomic(path, document)
    return document


def read_digest(path: str | Path) -> dict:
    """The digest at ``path``: a digest file, a report directory holding one, or a summary
    directory (digested on the fly)."""
    path = Path(path)
    if path.is_dir():
        if (path / FILE_NAME).is_file():
            path = path / FILE_NAME
        elif (path / "runs.parquet").is_file():
            return build_digest(path)
        else:
            raise UserError(f"{path} holds neither {FILE_NAME} nor runs.parquet; accepted: a "
                            "digest file, a report directory, or a summary directory")
    if not path.exists():
        hint = (" (a reference report made before digests: regenerate it with `pgbench report "
                "results/summary --out reports/reference --force`)"
                if path.parent.is_dir() and (path.parent / "index.html").exists() else "")
        raise UserError(f"{path} does not exist{hint}; accepted: a digest file, a report "
                        "directory, or a summary directory")
    document = read_json_object(path, f"a digest written by `pgbench digest` ({KIND!r})")
    if document.get("kind") != KIND or document.get("schema") != SCHEMA:
        raise UserError(f"{path} is not a {KIND} of schema {SCHEMA}; write one with "
                        "`pgbench digest SUMMARY --out FILE`")
    return document


def _run_name(key: tuple) -> str:
    suite, env, arm, seed = key
    return f"{suite}/{env}/{arm} seed {seed}"


def _claim_name(key: tuple) -> str:
    claim_id, _suite, env, setting, *test = key
    where = ", ".join(x for x in (env, setting) if x and x != "default")
    name = f"{claim_id} [{where}]" if where else claim_id
    return f"{name} ({test[0]})" if test and test[0] not in ("", "main") else name


def compare_digests(yours: dict, reference: dict) -> tuple[bool, list[str]]:
    """(equal, lines): the headline, then one line per difference (at most MAX_LISTED each)."""
    mine = {tuple(r[k] for k in RUN_KEY): r for r in yours["runs"]}
    ref = {tuple(r[k] for k in RUN_KEY): r for r in reference["runs"]}
    missing = sorted(ref.keys() - mine.keys())
    extra = sorted(mine.keys() - ref.keys())
    other_config = sorted(k for k in ref.keys() & mine.keys()
                          if ref[k]["config_hash"] != mine[k]["config_hash"])
    differ = sorted(k for k in ref.keys() & mine.keys() if k not in other_config
                    and ref[k]["episodes_sha256"] != mine[k]["episodes_sha256"])
    identical = len(ref.keys() & mine.keys()) - len(other_config) - len(differ)

    verdicts, claim_lines = "verdicts equal", []
    if reference.get("claims") is None or yours.get("claims") is None:
        verdicts = "verdicts not compared (no claims table on " + (
            "either side)" if reference.get("claims") is None and yours.get("claims") is None
            else "the reference's side)" if reference.get("claims") is None else "your side)")
    else:
        # a digest written before claims rows named their test kept one row of a claim's
        # several tests (which one is not known): compare such a digest by the older key, on the
        # claims with one test only, and say so
        older = [not all("test" in r for r in d["claims"]) for d in (yours, reference)]
        fields = CLAIM_KEY[:-1] if any(older) else CLAIM_KEY
        mine_c = {tuple(r[k] for k in fields): r["verdict"] for r in yours["claims"]}
        ref_c = {tuple(r[k] for k in fields): r["verdict"] for r in reference["claims"]}
        if any(older) and not all(older):
            newer = yours if older[1] else reference
            counts = Counter(tuple(r[k] for k in fields) for r in newer["claims"])
            several = {k for k, n in counts.items() if n > 1}
            mine_c = {k: v for k, v in mine_c.items() if k not in several}
            ref_c = {k: v for k, v in ref_c.items() if k not in several}
            claim_lines.append(
                "  note: " + ("the reference's" if older[1] else "your") + " digest predates "
                f"per-test claim rows: the {len(several)} claim settings with several tests are "
                "not compared (regenerate it with `pgbench report SUMMARY --out DIR --force`)")
        for key in sorted(ref_c.keys() | mine_c.keys()):
            a, b = ref_c.get(key, "absent"), mine_c.get(key, "absent")
            if a != b:
                claim_lines.append(f"  claim {_claim_name(key)}: {a} in the reference, {b} in yours")
        n_differ = sum(not line.startswith("  note:") for line in claim_lines)
        if n_differ:
            verdicts = f"{n_differ} of {len(ref_c.keys() | mine_c.keys())} verdicts differ"

    tables, table_lines = _compare_tables(yours.get("tables"), reference.get("tables"))
    equal = (not (missing or extra or other_config or differ or table_lines)
             and verdicts == "verdicts equal")
    head = ("your run reproduces the committed report" if equal
            else "your run differs from the committed report")
    lines = [f"{head}: {identical} of {len(ref)} runs byte-identical, {verdicts}{tables}"]
    for keys, what in ((missing, "in the reference, not in yours"),
                       (extra, "in yours, not in the reference"),
                       (other_config, "another config (config_hash differs)"),
                       (differ, "same config, episodes differ")):
        lines += [f"  run {_run_name(k)}: {what}" for k in keys[:MAX_LISTED]]
        if len(keys) > MAX_LISTED:
            lines.append(f"  ... and {len(keys) - MAX_LISTED} more runs: {what}")
    lines += table_lines
    lines += claim_lines[:MAX_LISTED]
    if len(claim_lines) > MAX_LISTED:
        lines.append(f"  ... and {len(claim_lines) - MAX_LISTED} more claims")
    if differ:
        a, b = reference.get("provenance") or {}, yours.get("provenance") or {}
        changed = [k for k in ("cpu", "packages", "python", "platform") if a.get(k) != b.get(k)]
        lines.append("  episodes are byte-identical only on the same CPU and package versions"
                     + (f"; these differ: {', '.join(changed)}" if changed else
                        "; the recorded CPU and versions are equal, so this is a real change"))
    return equal, lines


def _compare_tables(mine: dict | None, ref: dict | None) -> tuple[str, list[str]]:
    """(headline part, one line per gradient-study table that differs). Digests written before
    tables were digested, or summaries without a gradient study, compare nothing here."""
    if not mine and not ref:
        return "", []
    if not mine or not ref:
        return ", gradient study not compared (" + (
            "your side has none)" if not mine else "the reference has none)"), []
    lines = []
    for name in sorted(mine.keys() | ref.keys()):
        a, b = ref.get(name), mine.get(name)
        if a is None or b is None:
            lines.append(f"  table {name}: " + ("in the reference, not in yours" if b is None
                                                else "in yours, not in the reference"))
        elif a != b:
            lines.append(f"  table {name}: values differ ({a['rows']} rows in the reference, "
                         f"{b['rows']} in yours)")
    return (", gradient study identical" if not lines else
            f", {len(lines)} of {len(mine.keys() | ref.keys())} gradient-study tables differ"), lines


# -- command line ---------------------------------------------------------------------------
def configure_digest_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (and `pgbench claims`)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help=f"digest file to write (JSON; `pgbench report` writes one as {FILE_NAME})")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing digest (never a file pgbench did not write)")


def run_digest(args: argparse.Namespace) -> int:
    from pgbench.core.outputs import SKIP, check_file, is_digest

    document = build_digest(args.summary_dir)

    def same(path: Path) -> bool:
        return json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(document))

    if check_file(args.out, "digest", is_digest, force=args.force, same=same) == SKIP:
        print(f"pgbench digest: {args.out} already is the digest of this summary")
        return 0
    write_json_atomic(args.out, document)
    print(f"pgbench digest: wrote {args.out}: {len(document['runs'])} runs, "
          f"{len(document['claims'] or [])} claims rows")
    return 0


def configure_compare_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Compare your run with the committed reference report: which runs are "
                          "byte-identical and whether every claim's verdict is the same. Exit 0 "
                          "when all are, 1 when something differs, 2 on bad input.")
    parser.add_argument("yours", nargs="?", default="reports", metavar="YOURS",
                        help="your report directory (with digest.json), digest file or summary "
                             "directory (default: %(default)s, where the pipeline writes it)")
    parser.add_argument("--reference", default=str(REFERENCE), metavar="REF",
                        help="the reference: a digest file, report or summary directory "
                             "(default: %(default)s, the committed report's)")


def run_compare(args: argparse.Namespace) -> int:
    equal, lines = compare_digests(read_digest(args.yours), read_digest(args.reference))
    print("\n".join(lines))
    return 0 if equal else 1
