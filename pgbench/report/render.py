"""Render a report's context with the Jinja2 templates in ``templates/``: HTML autoescaped,
Markdown escaped by the environment's ``finalize`` hook, so a template cannot forget to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from pgbench.report.format import _md_finalize, md_code_block

TEMPLATES = ("index.html.j2", "README.md.j2")


def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.PackageLoader("pgbench.report", "templates")
    common = dict(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                  lstrip_blocks=True, keep_trailing_newline=True)
    html = jinja2.Environment(autoescape=True, **common)
    markdown = jinja2.Environment(autoescape=False, finalize=_md_finalize, **common)
    markdown.filters["code_block"] = md_code_block
    return html, markdown


def render_html(context: Mapping[str, Any]) -> str:
    """index.html from a context made by :func:`build_report` (autoescaped)."""
    return _environments()[0].get_template("index.html.j2").render(**context)


def render_markdown(context: Mapping[str, Any]) -> str:
    """README.md from a context made by :func:`build_report` (every value Markdown-escaped)."""
    return _environments()[1].get_template("README.md.j2").render(**context)
