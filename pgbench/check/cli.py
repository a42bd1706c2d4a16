"""``pgbench reference`` and ``pgbench check``: options, reading, and the exit code.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from pgbench.check.compare import _require_metric, check_runs, power_rows
from pgbench.check.format import format_power, format_summary, format_table, junit_xml
from pgbench.check.gate import (
    GATE_DEFAULTS,
    GROUP_KEYS,
    METRICS,
    REFERENCE_INPUT_COLUMNS,
    STATISTICS,
)
from pgbench.check.reference import (
    _read_provenance,
    build_reference,
    read_reference,
    read_summary_runs,
)
from pgbench.core.errors import UserError
from pgbench.core.io import write_bytes_atomic, write_json_atomic


def configure_reference_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (has runs.parquet)")
    parser.add_argument("--out", required=True, metavar="REF.json",
                        help="reference file to write (JSON, written atomically)")
    parser.add_argument("--metric", choices=METRICS, help="store the metric `pgbench check` "
                        "compares by default with this reference")
    parser.add_argument("--min-effect", type=lambda s: _fraction(s, low=0, high=1e9,
                                                                 name="min-effect"),
                        help="store the margin `pgbench check` uses by default")
    parser.add_argument("--detect", type=lambda s: _fraction(s, low=0, high=1e9, name="detect"),
                        help="store the drop the gate is designed to catch (`pgbench check "
                        "--detect`)")
    parser.add_argument("--alpha", type=lambda s: _fraction(s, low=1e-6, high=0.5, name="alpha"),
                        help="store the level `pgbench check` uses by default")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing reference (never a file pgbench did not write)")


def run_reference(args: argparse.Namespace) -> int:
    summary_dir = Path(args.summary_dir)
    runs = read_summary_runs(summary_dir, (*REFERENCE_INPUT_COLUMNS, "mean_return", "platform"))
    gate = {k: getattr(args, k) for k in ("metric", "min_effect", "detect", "alpha")
            if getattr(args, k, None) is not None}
    if "metric" in gate:
        _require_metric(runs, gate["metric"], str(summary_dir / "runs.parquet"))
    options = "".join(f" --{k.replace('_', '-')} {v}" for k, v in gate.items())
    provenance = {**_read_provenance(summary_dir),
                  "command": f"pgbench reference {args.summary_dir} --out {args.out}{options}"}
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = build_reference(runs, provenance, created_at=created_at, gate=gate)
    from pgbench.core.outputs import SKIP, check_file, is_reference

    def same(path: Path) -> bool:  # the same runs: only the date and command would change
        def text(doc: dict) -> str:
            return json.dumps([doc.get(k) for k in ("schema", "rows", "package_sets", "platforms", "gate")],
                              sort_keys=True, default=str)
        return text(json.loads(path.read_text(encoding="utf-8"))) == text(
            json.loads(json.dumps(document, default=str)))

    if check_file(args.out, "reference", is_reference, force=args.force, same=same) == SKIP:
        print(f"pgbench reference: {args.out} already is the reference of these runs; "
              "leaving it as it is")
        return 0
    write_json_atomic(args.out, document)
    groups = runs.groupby(list(GROUP_KEYS)).ngroups
    print(f"pgbench reference: wrote {args.out}: {len(runs)} runs in {groups} groups")
    return 0


def _fraction(text: str, *, low: float, high: float, name: str) -> float:
    """argparse type: a float in [low, high)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
    if not (low <= value < high):
        raise argparse.ArgumentTypeError(f"{name} must be in [{low:g}, {high:g}), got {value:g}")
    return value


def _seed(text: str) -> int:
    """argparse type: a non-negative integer (numpy seed sequences need one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be >= 0, got {value}")
    return value


def configure_check_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Compare a summary's per-seed results with a reference, one row per "
                          "(suite, env, variant, setting). Exit 0 when no group regressed, 1 when "
                          "one did, 2 on bad input. Options not given come from the reference's "
                          "stored gate settings, else the defaults. See docs/check.md.")
    parser.add_argument("summary_dir", metavar="SUMMARY_DIR",
                        help="summary directory written by `pgbench aggregate` (has runs.parquet)")
    parser.add_argument("--reference", required=True, metavar="REF.json",
                        help="reference written by `pgbench reference`")
    parser.add_argument("--alpha", type=lambda s: _fraction(s, low=1e-6, high=0.5, name="alpha"),
                        help="level of each one-sided test; the interval shown "
                        "has confidence 1 - 2*alpha (default: 0.05)")
    parser.add_argument("--min-effect", type=lambda s: _fraction(s, low=0, high=1e9,
                                                                 name="min-effect"),
                        help="largest tolerated drop, as a fraction of the "
                        "reference's statistic for the group (default: 0.1 = 10%%)")
    parser.add_argument("--statistic", choices=sorted(STATISTICS),
                        help="statistic of the per-seed values (default: mean)")
    parser.add_argument("--metric", choices=METRICS, help="per-seed value compared: final_return "
                        "(mean of the last 10%% of episodes) or mean_return (mean over all "
                        "episodes, the area under the learning curve) (default: final_return)")
    parser.add_argument("--junit", metavar="FILE", help="also write JUnit XML, one testcase per "
                        "group (regression = failure; inconclusive, missing, new = skipped)")
    parser.add_argument("--power", action="store_true",
                        help="also print how many seeds detect a drop of --detect with 80%% "
                        "power, from the reference's spread")
    parser.add_argument("--detect", type=lambda s: _fraction(s, low=0, high=1e9, name="detect"),
                        help="the drop the gate is designed to catch, as a fraction of the "
                        "reference's statistic, more than min-effect: `pass` then means a drop "
                        "this large is excluded, and --power sizes the seeds for it (default: "
                        "pass needs a drop beyond min-effect excluded; --power uses twice "
                        "min-effect)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the bootstrap and permutation draws (default: 0)")


def run_check(args: argparse.Namespace) -> int:
    ref_runs, gate = read_reference(args.reference, with_gate=True)
    cur_runs = read_summary_runs(args.summary_dir)
    chosen = {k: getattr(args, k, None) for k in GATE_DEFAULTS}
    settings = {k: v if v is not None else gate.get(k, GATE_DEFAULTS[k]) for k, v in chosen.items()}
    metric = settings.pop("metric")
    if settings["detect"] is not None and settings["detect"] <= settings["min_effect"]:
        raise UserError(f"detect {settings['detect']:g} must exceed min-effect "
                        f"{settings['min_effect']:g}: a drop within the margin is tolerated")
    rows = check_runs(ref_runs, cur_runs, seed=args.seed, metric=metric, **settings)
    print(format_table(rows, alpha=settings["alpha"], statistic=settings["statistic"]))
    detect = stored_detect = settings.pop("detect")
    if args.power:
        detect = 2 * settings["min_effect"] if detect is None else detect
        print()
        print(format_power(power_rows(ref_runs, cur_runs, metric=metric, detect=detect,
                                      **settings), detect=detect, **settings))
    print()
    print(format_summary(rows, metric=metric, detect=stored_detect, **settings))
    if args.junit:
        write_bytes_atomic(args.junit, junit_xml(rows, alpha=settings["alpha"],
                                                 statistic=settings["statistic"]))
    return 1 if any(r.verdict == "regression" for _, r in rows) else 0
