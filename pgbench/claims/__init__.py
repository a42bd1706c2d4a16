"""``pgbench claims``: evaluate the sources' claims (``claims.yaml``) on a summary directory.

A claim is data: which runs are compared (suite, env, variants), which statistic, which
direction and threshold. A statistic is a function registered by name in ``STATISTICS``; it gets
a ``ClaimContext`` (the runs of each compared arm, or a summary table, a seeded Generator, the
confidence level) and returns a ``StatisticResult`` (estimate, CI, seeds, words). The verdict is
then the same rule for every claim:

- reproduced: the whole CI is strictly on the claim's side of the threshold;
- not reproduced: the whole CI is on the other side (touching the threshold counts as this side);
- inconclusive: the CI straddles the threshold; ``seeds_needed`` estimates how many seeds per arm
  would settle it (``pgbench.stats.survival.seeds_needed``);
- not run: the suite, env, variant or table is not in the summary, or the statistic is not
  available; ``detail`` says which.

Statistics register themselves with ``@register_statistic("name")`` in
:mod:`pgbench.claims.run_statistics` and :mod:`pgbench.claims.gradient_statistics`;
:mod:`pgbench.claims.catalog` imports both, and a claim naming any other statistic fails to load.
A statistic for a
``table:`` claim receives ``ctx.table`` (that table, restricted to the claim's env when it has an
``env`` column) and ``ctx.claim.params``; it may return a list of results, each with its own
``setting`` label, e.g. one per snapshot.

Every (claim, env, setting) row draws from its own Generator, seeded from ``--seed`` and the
row's identity, so one summary always gives the same table and adding a claim changes no other row.
"""
