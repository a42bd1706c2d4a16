"""Statistical regression gate on final returns: ``pgbench reference`` and ``pgbench check``.

``pgbench reference SUMMARY --out REF.json`` freezes the per-run results of a summary directory
(``runs.parquet``, see docs/contracts.md) into a small JSON file that is committed to the repo.
``pgbench check SUMMARY --reference REF.json`` compares a fresh summary with it, one row per
group ``(suite, env, variant, setting)``, and exits 1 when some group regressed.

Decision rule for one group (docs/check.md explains it for users). Let ``D = S(cur) - S(ref)``
where ``S`` is the mean or the IQM of the per-seed metric (final return, or mean return over
training; higher is better), and let the
margin be ``delta = min_effect * |S(ref)|``: "worse by more than min-effect" means ``D < -delta``.

1. ``identical``: same seeds, and for every seed the same config hash, package versions and
   ``episodes.parquet`` digest, on the same known platform (:mod:`pgbench.core.fingerprint`: pinned
   CPU dispatch, architecture, packages). Nothing to test: the runs are bit-for-bit the
   reference. On another or an unknown platform bytes are not promised, so the group is tested.
2. Otherwise the boundary ``D = -delta`` is tested from both sides at level ``alpha``, and each
   decision needs two kinds of evidence to agree: a permutation test of the location shift
   (exact at any number of seeds) and a percentile bootstrap interval ``[ci_low, ci_high]`` of
   ``D`` with confidence ``1 - 2*alpha`` (each end a one-sided ``1 - alpha`` bound):

   - ``regression``: ``p_worse <= alpha`` and ``ci_high < -delta`` (a drop larger than the
     margin is established);
   - ``pass``: ``p_not_worse <= alpha`` and ``ci_low > -delta`` (a drop larger than the margin is
     excluded); with ``detect`` (the drop the gate is designed to catch, > min-effect), the
     mirror test and the interval's low end use ``delta_d = detect * |S(ref)|`` instead: a pass
     excludes a drop of ``detect``, which sized seeds achieve for unchanged code with the
     power ``--power`` targets;
   - ``inconclusive``: neither (the interval still contains ``-delta``, or there are too few
     seeds for any permutation p-value to reach ``alpha``).

   The two verdicts cannot both hold for ``alpha < 0.5``. Requiring the permutation test as well
   as the interval matters with few seeds: a percentile bootstrap of 2-3 seeds is far too narrow
   and alone would raise false alarms; the exact permutation test cannot reject with 2 seeds a
   side (smallest p = 1/6), so such groups are ``inconclusive``.

Every random draw comes from a ``numpy.random.Generator`` passed in; ``pgbench check --seed``
seeds one per group from the seed and the group's name, so a row does not depend on which other
groups are present.
"""
