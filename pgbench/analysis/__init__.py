"""``pgbench aggregate``: many run directories -> the tidy summary tables of docs/contracts.md.

Reads every complete run under the given directories and writes, each file atomically, into
SUMMARY: ``runs.parquet`` (one row per run), ``curves.parquet`` (learning curves on a common
env-step grid), ``compute.parquet`` (one row per Snakemake job, from its ``benchmark:`` file),
``provenance.json``, and copies of the gradient-study tables given with ``--gradstudy``.

Rules that the contract leaves to this module (documented here, checked in tests):
- A directory is a run when it holds a ``run.json`` whose status is ``complete``. Directories
  with another status, or with episode files but no ``run.json`` (a run still going or killed),
  are skipped with a ``SkippedRunWarning``. Hidden directories (names starting with ``.``) are
  never searched: they are the staging directories of atomic writes.
- The same run (same ``run_hash``) found in two places is counted once (the first path in sorted
  order), with a warning; two copies would double its weight in every statistic.
- ``final_return``: mean return of the last ``max(1, n // 10)`` of the run's n episodes.
- ``episodes_to_threshold`` counts episodes (the 0-based ``solved.episode`` index + 1).
- Both rules of "solved" are read from run.json, as the trainer judged them
  (:func:`pgbench.runs.log.record_episode`): the running reward, and the last-100 rule (the
  first episode i >= 99, 0-based, at which the mean return of episodes i-99..i is >= the
  threshold; only full windows count).
- A run without ``meta.suite`` (``pgbench train`` run by hand) gets suite ``adhoc``.
"""
