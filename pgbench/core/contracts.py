"""The tables pgbench writes, in one place: each table's columns and their dtypes.

docs/contracts.md describes every column; this module is what the code reads. Writers build
their frames with exactly these columns in this order (``*_COLUMNS``: column -> dtype); the
summary reader (:mod:`pgbench.analysis.summary`) requires the ``*_REQUIRED`` subsets, so that a
summary written by an older pgbench still renders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# -- a run directory (pgbench train, train-job, import) -----------------------------------------
# No wall time here: episodes.parquet is bit-identical across reruns of a config and seed.
# Wall time is per update, in updates.parquet (join on `update`).
EPISODE_COLUMNS = ["update", "episode", "env_steps", "return", "length", "terminated", "truncated",
                   "running_reward"]

UPDATE_COLUMNS = ["update", "env_steps", "episodes", "policy_loss", "grad_norm", "entropy",
                  "value_loss", "wall_s"]

# -- a summary directory (pgbench aggregate, claims) --------------------------------------------
#: Column -> dtype of each table, in contract order.
RUNS_COLUMNS: dict[str, str] = {
    "suite": "str", "env": "str", "variant": "str", "arm": "str", "setting": "str",
    "seed": "int64", "config_hash": "str", "run_hash": "str", "stop_reason": "str",
    "threshold": "float64", "budget_steps": "int64", "engine": "str",
    "env_steps": "int64", "episodes": "int64", "updates": "int64",
    "final_return": "float64", "mean_return": "float64",
    "steps_to_threshold": "float64", "episodes_to_threshold": "float64", "censored": "bool",
    "steps_to_threshold_last100": "float64", "episodes_to_threshold_last100": "float64",
    "censored_last100": "bool",
    "gradient_steps": "float64", "gradient_steps_to_threshold": "float64",
    "gradient_steps_to_threshold_last100": "float64",
    "wall_s": "float64", "cpu_s": "float64", "run_dir": "str", "episodes_sha256": "str",
    "packages": "str", "platform": "str", "git_commit": "str",
}

CURVES_COLUMNS: dict[str, str] = {
    "suite": "str", "env": "str", "variant": "str", "arm": "str", "setting": "str",
    "seed": "int64", "env_steps": "int64", "return": "float64", "carried": "bool",
}

COMPUTE_COLUMNS: dict[str, str] = {
    "rule": "str", "suite": "str", "env": "str", "arm": "str", "seeds": "str",
    "s": "float64", "cpu_time": "float64", "max_rss": "float64",
    "env_steps": "Int64", "steps_per_s": "float64",
}

CLAIMS_COLUMNS: dict[str, str] = {
    "claim_id": "str", "source": "str", "quote": "str", "suite": "str", "env": "str",
    "setting": "str", "statistic": "str", "estimate": "float64", "ci_low": "float64",
    "ci_high": "float64", "confidence": "float64", "threshold": "float64", "direction": "str",
    "verdict": "str", "n_seeds": "int64", "seeds_needed": "float64", "detail": "str",
    "test": "str", "quote_kind": "str", "tolerance": "str", "holds_for": "str",
    "estimate_text": "str",
}

#: A claim's verdicts, in the order the report lists them.
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")

# -- the gradient study (pgbench gradstudy) ------------------------------------------------------
GRADSTUDY_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "estimator": "str", "episodes_per_batch": "int64",
    "n_batches": "int64", "total_variance": "float64", "total_variance_ci_low": "float64",
    "total_variance_ci_high": "float64", "bias_norm": "float64",
    "relative_bias_corrected": "float64", "relative_bias_corrected_ci_low": "float64",
    "relative_bias_corrected_ci_high": "float64", "bias_over_noise": "float64",
    "projection": "float64", "projection_ci_low": "float64", "projection_ci_high": "float64",
    "cosine_to_reference": "float64", "mean_grad_norm": "float64", "bias_noise_norm": "float64",
    "reference_norm": "float64", "reference_estimator": "str", "snapshot_env_steps": "int64",
    "snapshot_running_reward": "float64", "mean_episode_length": "float64", "confidence": "float64",
    # exact values (pgbench gradstudy --exact on a small MDP; NaN on the Gymnasium envs)
    "exact_projection": "float64", "exact_relative_bias": "float64",
    "exact_total_variance": "float64",
}

LAYERS_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "estimator": "str", "episodes_per_batch": "int64",
    "layer": "str", "variance": "float64",
}

PAIRS_COLUMNS: dict[str, str] = {
    "env": "str", "snapshot": "str", "episodes_per_batch": "int64", "estimator_a": "str",
    "estimator_b": "str", "n_batches": "int64", "variance_ratio": "float64",
    "variance_ratio_ci_low": "float64", "variance_ratio_ci_high": "float64",
    "mean_diff_norm": "float64", "mean_diff_ci_high": "float64", "mean_diff_pvalue": "float64",
    "mean_diff_relative": "float64", "mean_diff_relative_ci_low": "float64",
    "mean_diff_relative_ci_high": "float64", "confidence": "float64",
    "exact_variance_ratio": "float64", "exact_mean_diff_relative": "float64",
}


def snapshot_order(snapshots: Iterable[str]) -> list[str]:
    """Gradient-study snapshots in training order: ``init``, then ``qNN`` by NN, then any other
    name (``final``, ``exact``) alphabetically.

    >>> snapshot_order(["q75", "init", "q5", "final"])
    ['init', 'q5', 'q75', 'final']
    """
    def key(name: str):
        if name == "init":
            return (0, 0, name)
        match = re.fullmatch(r"q(\d+)", name)
        return (1, int(match.group(1)), name) if match else (2, 0, name)

    return sorted({str(s) for s in snapshots}, key=key)


# -- what the summary reader requires (older summaries may lack the other columns) ---------------
RUNS_REQUIRED = ("suite", "env", "variant", "arm", "setting", "seed", "threshold", "budget_steps",
                "env_steps", "final_return", "steps_to_threshold", "censored", "wall_s", "cpu_s")

CURVES_REQUIRED = ("suite", "env", "arm", "seed", "env_steps", "return", "carried")

COMPUTE_REQUIRED = ("rule", "suite", "env", "arm", "seeds", "s", "cpu_time", "max_rss",
                   "env_steps", "steps_per_s")

CLAIMS_REQUIRED = ("claim_id", "source", "quote", "setting", "statistic", "estimate", "ci_low",
                  "ci_high", "confidence", "threshold", "direction", "verdict", "n_seeds",
                  "seeds_needed", "detail")

GRADSTUDY_REQUIRED = ("env", "snapshot", "estimator", "episodes_per_batch", "n_batches",
                     "total_variance", "total_variance_ci_low", "total_variance_ci_high",
                     "relative_bias_corrected", "relative_bias_corrected_ci_low",
                     "relative_bias_corrected_ci_high", "bias_over_noise", "cosine_to_reference")

PAIRS_REQUIRED = ("env", "snapshot", "episodes_per_batch", "estimator_a", "estimator_b",
                 "variance_ratio", "variance_ratio_ci_low", "variance_ratio_ci_high",
                 "mean_diff_pvalue")
