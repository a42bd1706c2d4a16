"""Train a policy: collect, estimate, update, record. One loop for every variant.

A *group* is several runs trained at once (stacked weights, one set of sub-envs): the seeds of
a config, and the arms that differ from it only in estimator, dropout, budget or stopping rule
(:data:`PER_RUN_FIELDS`). Each seed collects on its own clock and updates when its own batch is
complete, so each run's numbers are those it would get alone; the group only shares the Python
and torch overhead, which dominates networks this small. ``pgbench train --seed 0 1 2`` runs a
group; ``pgbench train-job`` the arms of a suite.
"""
