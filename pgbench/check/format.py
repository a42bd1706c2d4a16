"""How ``pgbench check`` prints its verdicts: aligned tables, the summary line, the power
table and a JUnit XML report.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from pgbench.check.gate import POWER, VERDICTS, CheckResult, GroupKey, _percent


def _num(x: float) -> str:
    """A return-scale number in a few characters; ``-`` for NaN."""
    if x is None or not math.isfinite(x):
        return "-" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _pvalue(p: float) -> str:
    if not math.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def group_label(key: GroupKey) -> str:
    """``suite/env/variant [setting]`` (the setting is left out when it is ``default``)."""
    suite, env, variant, setting = key
    label = f"{suite}/{env}/{variant}"
    return label if setting == "default" else f"{label} [{setting}]"


def _aligned(header: list[str], body: list[list[str]], right: set[int]) -> str:
    """Columns padded to their widest cell; columns in ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells):
        padded = [c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def format_table(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float,
                 statistic: str) -> str:
    """The check table: one line per group, columns aligned."""
    confidence = _percent(1 - 2 * alpha)
    header = ["group", "seeds ref/cur", f"ref {statistic}", f"cur {statistic}",
              f"diff [{confidence} CI]", "margin", "p", "verdict", "note"]
    body = []
    for key, r in rows:
        ci = "" if math.isnan(r.ci_low) else f" [{_num(r.ci_low)}, {_num(r.ci_high)}]"
        body.append([group_label(key), f"{r.n_ref}/{r.n_cur}", _num(r.ref_stat),
                     _num(r.cur_stat), _num(r.diff) + ci,
                     "-" if math.isnan(r.margin) else _num(-r.margin), _pvalue(r.p_worse),
                     r.verdict.upper() if r.verdict == "regression" else r.verdict, r.note])
    return _aligned(header, body, right={1, 2, 3, 5, 6})


def format_summary(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float, min_effect: float,
                   statistic: str, metric: str = "final_return",
                   detect: float | None = None) -> str:
    """One line: counts per verdict, the settings, and the outcome."""
    counts = {v: sum(r.verdict == v for _, r in rows) for v in VERDICTS}
    listed = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    outcome = "FAIL" if counts["regression"] else "OK"
    designed = "" if detect is None else f", detect={_percent(detect)}"
    return (f"pgbench check: {len(rows)} groups: {listed or 'none'} "
            f"({metric}, alpha={alpha:g}, min-effect={_percent(min_effect)} of the reference "
            f"{statistic}{designed}) "
            f"-> {outcome}")


def format_power(rows: list[tuple[GroupKey, dict]], *, alpha: float, min_effect: float,
                 statistic: str, detect: float | None = None) -> str:
    """The ``--power`` section: seeds needed per group, and whether the current run has them."""
    detect = 2 * min_effect if detect is None else detect
    title = (f"Seeds per side for a drop of {_percent(detect)} of the reference {statistic} to "
             f"be called a regression (margin {_percent(min_effect)}) with {POWER:.0%} power at "
             f"alpha={alpha:g} (one-sided, normal approximation, reference spread):")
    header = ["group", "seeds ref/cur", "sd", "margin", "needed", "enough"]
    body = []
    for key, row in rows:
        needed = row["needed"]
        have = min(row["n_ref"], row["n_cur"])
        enough = "-" if not math.isfinite(needed) or row["n_cur"] == 0 else (
            "yes" if have >= needed else "no")
        shown = "-" if math.isnan(needed) else ("inf" if math.isinf(needed) else f"{needed:.0f}")
        body.append([group_label(key), f"{row['n_ref']}/{row['n_cur']}", _num(row["sd"]),
                     _num(row["margin"]), shown, enough])
    return title + "\n" + _aligned(header, body, right={1, 2, 3, 4})


def junit_xml(rows: list[tuple[GroupKey, CheckResult]], *, alpha: float,
              statistic: str) -> bytes:
    """JUnit XML, one testcase per group.

    Regression is a failure; inconclusive, missing and new are skipped with the reason.
    """
    failures = sum(r.verdict == "regression" for _, r in rows)
    skipped = sum(r.verdict in {"inconclusive", "missing", "new"} for _, r in rows)
    suite = ET.Element("testsuite", name="pgbench check", tests=str(len(rows)),
                       failures=str(failures), errors="0", skipped=str(skipped), time="0")
    for key, r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"pgbench.{key[0]}.{key[1]}",
                             name=group_label(key).split("/", 2)[2], time="0")
        detail = (f"{statistic}: ref {_num(r.ref_stat)} ({r.n_ref} seeds), cur {_num(r.cur_stat)} "
                  f"({r.n_cur} seeds), diff {_num(r.diff)} [{_percent(1 - 2 * alpha)} CI "
                  f"{_num(r.ci_low)}, {_num(r.ci_high)}], margin {_num(-r.margin)}, "
                  f"p {_pvalue(r.p_worse)}: {r.verdict}" + (f" ({r.note})" if r.note else ""))
        if r.verdict == "regression":
            ET.SubElement(case, "failure", message=f"regression: {r.note}",
                          type="regression").text = detail
        elif r.verdict in {"inconclusive", "missing", "new"}:
            ET.SubElement(case, "skipped", message=f"{r.verdict}: {r.note}")
        ET.SubElement(case, "system-out").text = detail
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"
