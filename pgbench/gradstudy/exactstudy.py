"""``pgbench gradstudy --exact``: the gradient study on a small MDP, against its exact values.

On an MDP of :mod:`pgbench.gradstudy.tinymdp` every trajectory is listed, so each estimator's batch
gradient has an exact mean and covariance (:mod:`pgbench.gradstudy.exactgrad`) and the policy gradient a
closed form (:func:`pgbench.gradstudy.tinymdp.exact_policy_gradient`). The same policy is then studied by
sampling, with the machinery the Gymnasium envs use (:func:`pgbench.gradstudy.terms.episode_terms`,
:func:`pgbench.gradstudy.study.study_snapshot`: pool and reference pool, bootstrap intervals), and the
tables get the exact values beside the sampled ones:

- gradstudy.parquet: ``exact_projection`` (``E[X] . grad J / |grad J|^2``: 1 for an unbiased
  estimator, ``1 - 1/K`` for the slides' batch mean), ``exact_relative_bias``
  (``|E[X] - grad J| / |grad J|``) and ``exact_total_variance`` (``tr Cov[X]``);
- gradstudy_pairs.parquet: ``exact_variance_ratio`` and ``exact_mean_diff_relative``
  (``|E[a] - E[b]| / |grad J|``).

NaN marks what has no exact value (``loo_optimal_baseline`` at K > 1, see
:mod:`pgbench.gradstudy.exactgrad`). The snapshot is called ``exact``: one policy, pgbench's
initialisation from ``--seed``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from pgbench.core.contracts import GRADSTUDY_COLUMNS, LAYERS_COLUMNS, PAIRS_COLUMNS
from pgbench.core.errors import UserError
from pgbench.core.io import write_json_atomic, write_parquet_atomic
from pgbench.core.provenance import provenance
from pgbench.core.seeding import snapshot_streams
from pgbench.gradstudy import exactgrad as xg
from pgbench.gradstudy import tinymdp
from pgbench.gradstudy.batches import Reference
from pgbench.gradstudy.study import StudySettings, frame, study_snapshot
from pgbench.gradstudy.terms import FIXED, episode_terms
from pgbench.rl import estimators as est
from pgbench.rl.gradients import parameter_layout

SNAPSHOT = "exact"


def exact_forms(mdp, params, gamma: float = 1.0, ema_weight: float = 0.05,
                constants: dict | None = None):
    """``(grad_J (P,), forms, p)``: the closed-form gradient, each estimator's
    :class:`pgbench.gradstudy.exactgrad.Form` and the trajectories' probabilities ``p (N,)``.
    ``constants``: other baselines for the ``fixed_*`` estimators than the exact ones (see
    :func:`pgbench.gradstudy.exactgrad.estimator_forms`)."""
    pool, p = tinymdp.enumerate_trajectories(mdp, params)
    spec = mdp.policy_spec()
    terms = episode_terms(params, spec, pool, (1,), gamma, with_time_baseline=False)
    mask = pool.mask[0]
    rtg = est.reward_to_go(pool.rewards[0], mask, gamma)
    forms = xg.estimator_forms(terms, p, xg.step_scores(params, spec, pool), rtg, mask, ema_weight,
                               constants)
    return tinymdp.exact_policy_gradient(mdp, params, gamma), forms, p


def exact_moments(forms, p, ks, estimators) -> dict:
    """``{(name, K): (mean (P,), cov (P, P))}`` for every (estimator, K) with an exact law; the
    slides' batch mean at K = 1 is identically 0 and left out, as in the sampled study."""
    out = {}
    for k in sorted(set(ks)):
        for name in estimators:
            if name in forms and xg.is_exact(name, k) and not (name == "batch_mean_baseline"
                                                               and k == 1):
                out[name, k] = xg.moments(forms[name], p, k)
    return out


def exact_values(mdp, params, ks, estimators, gamma: float = 1.0, ema_weight: float = 0.05,
                 constants: dict | None = None):
    """``(grad_J (P,), {(name, K): (mean (P,), cov (P, P))})`` for every exact (estimator, K)
    (:func:`exact_forms`, :func:`exact_moments`)."""
    grad_j, forms, p = exact_forms(mdp, params, gamma, ema_weight, constants)
    return grad_j, exact_moments(forms, p, ks, estimators)


def add_exact_columns(rows, pair_rows, grad_j, exact) -> None:
    """Fill the ``exact_*`` columns of the sampled study's rows in place (NaN where none)."""
    norm_sq = float(grad_j @ grad_j)
    for r in rows:
        m = exact.get((r["estimator"], r["episodes_per_batch"]))
        r["exact_projection"] = float(m[0] @ grad_j / norm_sq) if m else np.nan
        r["exact_relative_bias"] = (float(np.linalg.norm(m[0] - grad_j) / np.sqrt(norm_sq))
                                    if m else np.nan)
        r["exact_total_variance"] = float(np.trace(m[1])) if m else np.nan
    for r in pair_rows:
        k = r["episodes_per_batch"]
        a, b = exact.get((r["estimator_a"], k)), exact.get((r["estimator_b"], k))
        ok = a is not None and b is not None
        r["exact_variance_ratio"] = float(np.trace(a[1]) / np.trace(b[1])) if ok else np.nan
        r["exact_mean_diff_relative"] = (float(np.linalg.norm(a[0] - b[0]) / np.sqrt(norm_sq))
                                         if ok else np.nan)


def sampled_study(mdp, params, settings: StudySettings, seed: int):
    """The sampled study of the policy, as on a Gymnasium env: ``(rows, layer_rows, pair_rows,
    info)`` with ``batches`` and ``reference_batches`` batches of max(K) episodes (no step cap:
    the episodes cost microseconds)."""
    streams = snapshot_streams(seed, SNAPSHOT)
    spec = mdp.policy_spec()
    k_max = max(settings.episodes)
    pool = tinymdp.sample_episodes(mdp, params, settings.batches * k_max,
                                   np.random.default_rng(streams["pool_env"]))
    reference_pool = tinymdp.sample_episodes(mdp, params, settings.reference_batches * k_max,
                                             np.random.default_rng(streams["ref_env"]))
    terms = episode_terms(params, spec, pool, settings.episodes, settings.gamma,
                             with_time_baseline="loo_time_baseline" in settings.estimators)
    ref_terms = episode_terms(params, spec, reference_pool, (k_max,), settings.gamma,
                                 with_time_baseline=settings.reference_estimator == "loo_time_baseline")
    reference = Reference.from_terms(ref_terms, k_max, settings.reference_estimator,
                                        settings.episodes, settings.ema_weight)
    rng = np.random.default_rng(streams["bootstrap"])
    rows, layer_rows, pair_rows = study_snapshot(
        terms, reference, settings.episodes, settings.estimators, parameter_layout(params), rng,
        settings.n_resamples, settings.confidence)
    info = {"pool_episodes": int(settings.batches * k_max),
            "reference_episodes": int(settings.reference_batches * k_max),
            "fixed_constants": {name: float(reference.constants[name]) for name in FIXED}}
    return rows, layer_rows, pair_rows, info


#: The sampled study's intervals that have exact values: (kind, table, exact column).
COVERAGE_KINDS = (("projection", "rows", "exact_projection"),
                  ("total_variance", "rows", "exact_total_variance"),
                  ("variance_ratio", "pairs", "exact_variance_ratio"))


def coverage_cells(mdp, params, settings: StudySettings, seed: int, forms, p, grad_j,
                   exact) -> dict[str, list[tuple[float, float, float]]]:
    """One replication of the sampled study against the exact values (from :func:`exact_forms`
    and :func:`exact_moments`): kind -> ``(low, exact value, high)`` of each of its intervals.

    The fixed_* estimators are compared with their exact moments *given* the constants this
    replication's reference pool estimated; intervals of zero width (a K=1 pair of twins, ratio
    1 exactly) and rows without an exact value are left out.
    """
    rows, _, pair_rows, info = sampled_study(mdp, params, settings, seed)
    given = exact_moments({name: dataclasses.replace(forms[name], b_mean=info["fixed_constants"][name])
                           for name in FIXED}, p, settings.episodes, FIXED)
    add_exact_columns(rows, pair_rows, grad_j, {**exact, **given})
    tables = {"rows": rows, "pairs": pair_rows}
    return {kind: [(r[f"{kind}_ci_low"], r[column], r[f"{kind}_ci_high"]) for r in tables[table]
                   if np.isfinite(r[column]) and r[f"{kind}_ci_high"] > r[f"{kind}_ci_low"]]
            for kind, table, column in COVERAGE_KINDS}


def exact_study(mdp, params, settings: StudySettings, seed: int):
    """Exact and sampled study of one policy: ``(rows, layer_rows, pair_rows, info)`` with the
    contract's columns (env and snapshot included)."""
    grad_j, exact = exact_values(mdp, params, settings.episodes, settings.estimators,
                                 settings.gamma, settings.ema_weight)
    rows, layer_rows, pair_rows, info = sampled_study(mdp, params, settings, seed)
    add_exact_columns(rows, pair_rows, grad_j, exact)
    extra = {"snapshot_env_steps": 0, "snapshot_running_reward": np.nan,
             "mean_episode_length": float(mdp.horizon),
             "reference_estimator": settings.reference_estimator,
             "confidence": settings.confidence}
    ident = {"env": mdp.name, "snapshot": SNAPSHOT}
    rows = [{**ident, **r, **extra} for r in rows]
    layer_rows = [{**ident, **r} for r in layer_rows]
    pair_rows = [{**ident, **r, "confidence": settings.confidence} for r in pair_rows]
    info = {**info, "grad_j": grad_j.tolist(),
            "expected_return": tinymdp.exact_return(mdp, params, settings.gamma)}
    return rows, layer_rows, pair_rows, info


def run(args, settings: StudySettings) -> int:
    """The ``--exact`` mode of ``pgbench gradstudy``: ``args`` of
    :func:`pgbench.gradstudy.cli.configure_parser`, ``settings`` read from them."""
    mdp = tinymdp.get_mdp(args.env)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    started = time.perf_counter()
    params = mdp.policy_params(args.seed)
    rows, layer_rows, pair_rows, info = exact_study(mdp, params, settings, args.seed)
    write_parquet_atomic(out / "gradstudy_layers.parquet", frame(layer_rows, LAYERS_COLUMNS))
    write_parquet_atomic(out / "gradstudy_pairs.parquet", frame(pair_rows, PAIRS_COLUMNS))
    write_parquet_atomic(out / "gradstudy.parquet", frame(rows, GRADSTUDY_COLUMNS))
    write_json_atomic(out / "gradstudy.json", {
        "schema": 1, "env": mdp.name, "seed": args.seed, "exact": True,
        "mdp": {"description": mdp.description, "initial": mdp.initial,
                "transition": mdp.transition, "reward": mdp.reward, "horizon": mdp.horizon},
        "settings": settings.__dict__,
        "snapshots": {SNAPSHOT: info},
        "provenance": provenance(elapsed_s=round(time.perf_counter() - started, 3),
                                 command=" ".join(["pgbench", "gradstudy", *sys.argv[2:]])),
    })
    print(f"pgbench gradstudy --exact: {mdp.name}: {len(rows)} estimator rows, {len(pair_rows)} "
          f"pairs -> {out} ({time.perf_counter() - started:.1f}s)")
    return 0
