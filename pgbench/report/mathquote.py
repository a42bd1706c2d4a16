"""The sources' LaTeX in a quote, rendered legibly offline: Unicode letters and symbols, with
HTML ``<sub>``/``<sup>`` for indices (HTML and GitHub Markdown both show them). No network, no
script, no raw ``$...$`` left.

Only what the sources' quotes use is covered (Greek letters, sums, arrows, primes, sub- and
superscripts, a few operators); an unknown command keeps its name without the backslash, so
nothing is silently dropped. Every piece of text is escaped before the tags are added.

>>> str(quote_html(r"advantage denotes $\\sum_{t' = t}^T r_{t'}- V^{\\pi}(s_t)$"))
'advantage denotes ∑<sub>t′ = t</sub><sup>T</sup> r<sub>t′</sub>− V<sup>π</sup>(s<sub>t</sub>)'
>>> str(quote_html(r"we don't care about $< t$ \\leftarrow Causality"))
'we don&#39;t care about &lt; t ← Causality'
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

SYMBOLS = {
    "sum": "∑", "prod": "∏", "int": "∫", "pi": "π", "theta": "θ", "tau": "τ", "gamma": "γ",
    "lambda": "λ", "mu": "μ", "sigma": "σ", "alpha": "α", "beta": "β", "delta": "δ",
    "nabla": "∇", "leftarrow": "←", "rightarrow": "→", "to": "→", "cdot": "·", "times": "×",
    "approx": "≈", "leq": "≤", "geq": "≥", "le": "≤", "ge": "≥", "neq": "≠", "infty": "∞",
    "log": "log", "max": "max", "min": "min", "mathbb{E}": "𝔼", "ldots": "…", "dots": "…",
    "sim": "∼", "in": "∈",
}


_COMMAND = re.compile(r"\\(mathbb\{E\}|[A-Za-z]+)")


_MATH = re.compile(r"\$\$?(.+?)\$\$?", re.S)


def _group(text: str, start: int) -> tuple[str, int]:
    """The argument of ``_``/``^`` at ``start``: a braced group or one character."""
    if start < len(text) and text[start] == "{":
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + 1:i], i + 1
        return text[start + 1:], len(text)
    return text[start:start + 1], start + 1


def _math(text: str) -> str:
    """HTML of one LaTeX fragment (already escaped pieces, tags added)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in "_^":
            arg, i = _group(text, i + 1)
            tag = "sub" if ch == "_" else "sup"
            out.append(f"<{tag}>{_math(arg)}</{tag}>")
        elif ch == "\\":
            m = _COMMAND.match(text, i)
            if m:
                out.append(str(escape(SYMBOLS.get(m.group(1), m.group(1)))))
                i = m.end()
                if i < len(text) and text[i] == " " and m.group(1) in ("sum", "prod", "int"):
                    i += 1
            else:
                i += 1  # an escaped space or brace: keep what follows
        elif ch in "{}":
            i += 1
        elif ch in "'-":
            out.append("′" if ch == "'" else "−")
            i += 1
        else:
            out.append(str(escape(ch)))
            i += 1
    return "".join(out)


def quote_html(quote: str) -> Markup:
    """The quote with its maths rendered (see the module docstring); safe to insert in HTML."""
    parts, last = [], 0
    for m in _MATH.finditer(quote):
        parts.append(_text(quote[last:m.start()]))
        parts.append(_math(m.group(1)))
        last = m.end()
    parts.append(_text(quote[last:]))
    return Markup("".join(parts))


def _text(text: str) -> str:
    """Plain text with any bare LaTeX command (outside $...$) turned into its symbol."""
    pieces, last = [], 0
    for m in _COMMAND.finditer(text):
        pieces.append(str(escape(text[last:m.start()])))
        pieces.append(str(escape(SYMBOLS.get(m.group(1), m.group(1)))))
        last = m.end()
    pieces.append(str(escape(text[last:])))
    return "".join(pieces)
