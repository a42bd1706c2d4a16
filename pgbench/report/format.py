"""How the report writes numbers, intervals, step counts and durations, and how it escapes
Markdown.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from markupsafe import Markup

from pgbench.report.figures import style

DASH = "—"


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _number(x: Any) -> bool:
    """A real number, finite or infinite (an unbounded CI end is a result, not a gap)."""
    try:
        return x is not None and not math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, digits: int = 3) -> str:
    """A number for a table: thousands separators for large values, ``digits`` significant
    digits otherwise, ∞ for infinity, an em dash for missing/NaN.

    >>> fmt_num(160231), fmt_num(0.91234), fmt_num(5.0), fmt_num(float("nan")), fmt_num(-math.inf)
    ('160,231', '0.912', '5', '—', '−∞')
    """
    if not _number(x):
        return DASH
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if 1e-3 <= abs(x) else f"{x:.2e}"


def fmt_steps(x: Any) -> str:
    """Env steps, compact: 950, 12.3k, 1.5M."""
    if not _finite(x):
        return DASH
    return style.format_steps(float(x))


def fmt_seconds(x: Any) -> str:
    """A duration: 12.3 s, 4m 05s, 2h 03m."""
    if not _finite(x):
        return DASH
    s = float(x)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_ci(low: Any, high: Any) -> str:
    """``low – high``; an unbounded end shows as ∞, a missing one makes the whole CI a dash."""
    if not (_number(low) and _number(high)):
        return DASH
    return f"{fmt_num(low)} – {fmt_num(high)}"


def slug(*parts: str) -> str:
    """A file-name/anchor-safe id, readable and unique: ``slides-cartpole-v1-1a2b3c``.

    Only ``[a-z0-9-]``, so it needs no escaping in HTML attributes, URLs or Markdown links; the
    short hash keeps two names that slugify alike apart.
    """
    text = "-".join(parts)
    readable = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:6]
    return f"{readable}-{digest}" if readable else digest


# Characters with a meaning in GitHub-flavoured Markdown inline text or tables. `<`, `>` and `&`
# become entities (so raw HTML never starts); the others get a backslash, which CommonMark
# defines for every ASCII punctuation character.
_MD_BACKSLASH = re.compile(r"([\\`*_\[\]|~$])")


def md_escape(value: Any) -> str:
    """Escape text for a Markdown paragraph or table cell: it renders as exactly that text.

    >>> md_escape("<b>a|b</b> *x*")
    '&lt;b&gt;a\\\\|b&lt;/b&gt; \\\\*x\\\\*'
    """
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_BACKSLASH.sub(r"\\\1", text)
    return re.sub(r"\s*[\r\n]+\s*", " ", text)  # a newline would end a table row


def md_code_block(text: Any, lang: str = "") -> Markup:
    """A fenced code block whose fence is longer than any backtick run inside ``text``."""
    text = str(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return Markup(f"{fence}{lang}\n{text}\n{fence}")


def _md_finalize(value: Any) -> Any:
    """Escape every ``{{ expression }}`` of the Markdown templates unless marked safe (Markup)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return md_escape(value)


def shorten_command(command: str, limit: int = 400) -> str:
    """``command`` cut after the argument that passes ``limit`` characters, saying how many
    arguments were left out (the pipeline's aggregate command lists every run directory).

    >>> shorten_command("pgbench aggregate a b c --out s", limit=20)
    'pgbench aggregate a ... (4 more arguments; the whole command is in provenance.json)'
    """
    if len(command) <= limit:
        return command
    words = command.split(" ")
    kept, length = [], -1
    for word in words:
        if kept and length + 1 + len(word) > limit:
            break
        kept.append(word)
        length += 1 + len(word)
    return (" ".join(kept) + f" ... ({len(words) - len(kept)} more arguments; the whole "
            "command is in provenance.json)")
