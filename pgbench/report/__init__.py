"""``pgbench report SUMMARY_DIR --out reports/``: the human-readable report of a summary.

Writes ``OUT/index.html`` (self-contained: inline CSS, no scripts, figures as PNG files beside it
in ``OUT/figures/``; opens offline without a single network request) and ``OUT/README.md`` (the
same content for a code host: Markdown tables, figures linked as ``figures/x.png``).

The work is split so that each part can be tested alone:

* :func:`load_summary` reads and checks the summary tables of docs/contracts.md;
* :func:`build_report` draws the figures into a directory and returns the template context:
  finished tables (lists of dicts of formatted strings) and figure file names, never raw data;
* :func:`render_html` / :func:`render_markdown` turn that context into text (HTML autoescaped;
  Markdown escaped by the environment's ``finalize`` hook, so a template cannot forget to);
* :func:`render_report` does all of it and replaces the output files atomically.
"""
