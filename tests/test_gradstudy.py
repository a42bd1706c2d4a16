"""The gradient study: exact answers on a bandit, vmap against a loop, the CLI, claims.

The bandit has one step, one constant observation and three arms paying ``r = (2, 0.5, 1)``
(with two arms every score is parallel and Levine's baseline would make the variance 0). With
``s_a = grad log pi(a)`` (computed by autograd at the one observation) everything has a closed
form: the gradient ``sum_a pi_a r_a s_a``, the per-episode variance of every constant-baseline
estimator ``sum_a pi_a (r_a - b)^2 |s_a|^2 - |grad|^2``, and the variance of the leave-one-out
baseline, a U-statistic of order 2 (Hoeffding's variance formula).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pgbench.claims import gradient_statistics as gradclaims
from pgbench.claims.evaluate import evaluate_claims
from pgbench.claims.model import load_claims
from pgbench.cli import main
from pgbench.core.seeding import seed_sequences
from pgbench.gradstudy import batches, study
from pgbench.gradstudy import terms as gterms
from pgbench.rl.gradients import parameter_layout, per_episode_grads, weighted_episode_grads
from pgbench.rl.policies import PolicySpec, init_policy, log_prob_and_entropy
from pgbench.stats.bootstrap import resample_counts
from pgbench.training.rollout import Batch, Collector

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import run_rows, write_summary  # noqa: E402

SPEC = PolicySpec(obs_dim=1, act_dim=3, discrete=True, hidden=(4,))
REWARD = np.array([2.0, 0.5, 1.0])
KS = (1, 4, 16)


# --------------------------------------------------------------------------- the bandit
def bandit_params():
    params = init_policy(SPEC, [torch.Generator().manual_seed(0)])
    params["pi.b1"] = params["pi.b1"] + torch.tensor([[[0.4, -0.3, 0.1]]])  # unequal arms
    return params


def exact_terms(params):
    """pi (3,) and s (3, P): each arm's probability and score, flat in the study's order."""
    pi, scores = [], []
    for a in range(SPEC.act_dim):
        p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        logp, _ = log_prob_and_entropy(p, torch.ones(1, 1, 1), torch.tensor([[a]]), SPEC)
        grads = torch.autograd.grad(logp.sum(), [p[k] for k in sorted(p)])
        scores.append(torch.cat([g.reshape(-1) for g in grads]).double().numpy())
        pi.append(float(logp.detach().exp()))
    return np.array(pi), np.stack(scores)


def exact_gradient(pi, s):
    return (pi * REWARD) @ s


def constant_baseline_variance(pi, s, b):
    """Per-episode tr Cov of ``s_a (r_a - b)``."""
    g = exact_gradient(pi, s)
    return float(pi @ ((REWARD - b) ** 2 * (s ** 2).sum(1)) - g @ g)


def leave_one_out_variance(pi, s, k):
    """tr Cov of the batch gradient with the leave-one-out mean baseline, batches of k.

    The batch gradient is the U-statistic with kernel h(x, y) = (r_x - r_y)(s_x - s_y) / 2, so
    Var = 2 / (k (k-1)) * (2 (k-2) zeta_1 + zeta_2) (traces of zeta_1, zeta_2).
    """
    g = exact_gradient(pi, s)
    h = 0.5 * (REWARD[:, None, None] - REWARD[None, :, None]) * (s[:, None, :] - s[None, :, :])
    zeta2 = np.einsum("a,b,abp->", pi, pi, h ** 2) - g @ g
    inner = np.einsum("b,abp->ap", pi, h)
    zeta1 = pi @ (inner ** 2).sum(1) - g @ g
    return float(2 / (k * (k - 1)) * (2 * (k - 2) * zeta1 + zeta2))


def bandit_pool(params, n, seed):
    """A one-seed Batch of n one-step episodes, built by hand (no Gymnasium)."""
    pi, _ = exact_terms(params)
    draws = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    actions = (draws[:, None] >= torch.from_numpy(np.cumsum(pi)[:-1])[None, :]).sum(1)
    return Batch(obs=torch.ones(1, n, 1, 1), actions=actions.view(1, n, 1),
                 rewards=REWARD[actions.numpy()].reshape(1, n, 1), mask=np.ones((1, n, 1), bool),
                 terminated=np.ones((1, n), bool), truncated=np.zeros((1, n), bool),
                 lengths=np.ones((1, n), np.int64), final_obs=torch.ones(1, n, 1),
                 dropout_masks=None)


@pytest.fixture(scope="module")
def bandit_study():
    params = bandit_params()
    n_batches = 2000
    pool = bandit_pool(params, n_batches * max(KS), seed=1)
    reference_pool = bandit_pool(params, n_batches * max(KS), seed=2)
    terms = gterms.episode_terms(params, SPEC, pool, KS)
    reference = batches.Reference.from_terms(gterms.episode_terms(params, SPEC, reference_pool, (16,)),
                                        16, "loo_time_baseline", KS)
    rows, layers, pairs = study.study_snapshot(terms, reference, KS, list(gterms.ESTIMATORS),
                                            parameter_layout(params), np.random.default_rng(3),
                                            n_resamples=400)
    return params, terms, reference, pd.DataFrame(rows), pd.DataFrame(layers), pd.DataFrame(pairs)


def _row(frame, estimator, k):
    return frame[(frame["estimator"] == estimator) & (frame["episodes_per_batch"] == k)].iloc[0]


def _pair(frame, a, b, k):
    return frame[(frame["estimator_a"] == a) & (frame["estimator_b"] == b)
                 & (frame["episodes_per_batch"] == k)].iloc[0]


@pytest.mark.parametrize("k", KS)
def test_vanilla_variance_matches_the_closed_form(bandit_study, k):
    params, *_, rows, _, _ = bandit_study
    pi, s = exact_terms(params)
    exact = constant_baseline_variance(pi, s, 0.0) / k
    row = _row(rows, "vanilla", k)
    assert row["total_variance"] == pytest.approx(exact, rel=0.08)
    assert row["total_variance_ci_low"] <= exact <= row["total_variance_ci_high"]


@pytest.mark.parametrize("k", [4, 16])
def test_leave_one_out_baseline_variance_matches_the_u_statistic_formula(bandit_study, k):
    params, *_, rows, _, _ = bandit_study
    pi, s = exact_terms(params)
    exact = leave_one_out_variance(pi, s, k)
    row = _row(rows, "loo_baseline", k)
    assert row["total_variance"] == pytest.approx(exact, rel=0.08)
    assert row["total_variance_ci_low"] <= exact <= row["total_variance_ci_high"]
    # ... and the formula itself is not vanilla's (the test could not fail otherwise)
    assert exact < 0.8 * constant_baseline_variance(pi, s, 0.0) / k


def test_fixed_baselines_match_their_closed_forms(bandit_study):
    params, _, reference, rows, _, pairs = bandit_study
    pi, s = exact_terms(params)
    b_mean = reference.constants["fixed_baseline"]
    b_opt = reference.constants["fixed_optimal_baseline"]
    sq = (s ** 2).sum(1)
    assert b_mean == pytest.approx(pi @ REWARD, abs=0.02)
    assert b_opt == pytest.approx((pi * sq) @ REWARD / (pi @ sq), abs=0.02)
    for name, b in (("fixed_baseline", b_mean), ("fixed_optimal_baseline", b_opt)):
        exact = constant_baseline_variance(pi, s, b) / 16
        assert _row(rows, name, 16)["total_variance"] == pytest.approx(exact, rel=0.08)
    exact_ratio = constant_baseline_variance(pi, s, b_opt) / constant_baseline_variance(pi, s, b_mean)
    pair = _pair(pairs, "fixed_optimal_baseline", "fixed_baseline", 16)
    assert exact_ratio < 1  # Levine's constant beats the mean here
    assert pair["variance_ratio_ci_low"] <= exact_ratio <= pair["variance_ratio_ci_high"]


def test_study_means_are_unbiased_and_the_slides_batch_mean_is_shrunk_by_one_over_k(bandit_study):
    params, terms, reference, rows, _, pairs = bandit_study
    pi, s = exact_terms(params)
    g = exact_gradient(pi, s)
    for k in (4, 16):
        grads = batches.batch_gradients(terms, k, list(gterms.ESTIMATORS), reference.constants)
        for name, x in grads.items():
            expected = g * (1 - 1 / k) if name == "batch_mean_baseline" else g
            se = x.std(0, ddof=1) / np.sqrt(len(x))
            assert np.all(np.abs(x.mean(0) - expected) < 4.5 * se + 1e-9), (name, k)
        # the equivalence statistic recovers the 1/K shrinkage, and flags it
        pair = _pair(pairs, "batch_mean_baseline", "loo_baseline", k)
        assert pair["mean_diff_relative_ci_low"] <= 1 / k <= pair["mean_diff_relative_ci_high"]
        assert pair["mean_diff_pvalue"] < 0.01
        unbiased = _pair(pairs, "loo_baseline", "vanilla", k)
        assert unbiased["mean_diff_pvalue"] > 0.01
        assert unbiased["mean_diff_relative_ci_high"] < 0.25
    # bias against the reference is within what noise gives for every unbiased estimator
    unbiased = rows[rows["estimator"].isin(gterms.UNBIASED)]
    assert (unbiased["bias_norm"] < 3 * unbiased["bias_noise_norm"]).all()
    assert (unbiased["cosine_to_reference"] > 0.99).all()


def test_layers_add_up_and_k1_baselines_are_vanilla(bandit_study):
    *_, rows, layers, pairs = bandit_study
    summed = layers.groupby(["estimator", "episodes_per_batch"])["variance"].sum()
    for _, r in rows.iterrows():
        assert summed[(r["estimator"], r["episodes_per_batch"])] == pytest.approx(r["total_variance"])
    assert set(layers["layer"]) == {"pi.W0", "pi.W1", "pi.b0", "pi.b1"}
    one = _pair(pairs, "loo_baseline", "vanilla", 1)
    assert one["variance_ratio"] == 1.0 and one["mean_diff_pvalue"] == 1.0  # no other episode


# --------------------------------------------------------------------------- pure helpers
def test_leave_one_out_helpers_match_brute_force():
    rng = np.random.default_rng(0)
    k, n = 4, 8
    x = rng.normal(size=(2, k))
    loo = gterms.leave_one_out_mean(x)
    for b in range(2):
        for i in range(k):
            assert loo[b, i] == pytest.approx(np.delete(x[b], i).mean())
    sq = rng.uniform(0.5, 2.0, size=(2, k))
    opt = gterms.leave_one_out_optimal_baseline(x, sq)
    for i in range(k):
        keep = np.arange(k) != i
        assert opt[0, i] == pytest.approx((sq[0, keep] @ x[0, keep]) / sq[0, keep].sum())
    psi = rng.normal(size=(n, 5))
    mask = np.arange(5)[None, :] < rng.integers(1, 6, size=n)[:, None]
    tb = gterms.leave_one_out_time_baseline(psi, mask, k)
    for e in range(n):
        start = (e // k) * k
        others = [j for j in range(start, start + k) if j != e]
        for t in range(5):
            running = [j for j in others if mask[j, t]]
            want = np.mean([psi[j, t] for j in running]) if running and mask[e, t] else 0.0
            assert tb[e, t] == pytest.approx(want)


def test_mean_difference_test_is_calibrated_and_has_power():
    rng = np.random.default_rng(0)
    n, p = 32, 40
    scales = np.linspace(0.2, 3.0, p)  # unequal variances, as for gradient coordinates
    pvalues = []
    for _ in range(200):
        d = rng.normal(size=(n, p)) * scales
        pvalues.append(batches.mean_difference_test(d, resample_counts(n, 300, rng), 0.95).pvalue)
    rate = np.mean(np.array(pvalues) < 0.05)
    assert 0.01 <= rate <= 0.10, rate
    shifted = rng.normal(size=(n, p)) * scales + 0.6 * scales
    result = batches.mean_difference_test(shifted, resample_counts(n, 300, rng), 0.95)
    assert result.pvalue < 0.01 and result.norm > result.null_high


# --------------------------------------------------------------------------- vmap vs a loop
def loop_grads(params, spec, obs, actions, weights, masks=None):
    """One backward per episode and weighting: what the vmap path must reproduce."""
    names = sorted(params)
    out = torch.zeros(weights.shape[0], weights.shape[1], sum(params[k][0].numel() for k in names))
    for e in range(weights.shape[0]):
        for w in range(weights.shape[1]):
            p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
            m = None if masks is None else [x[e:e + 1] for x in masks]
            logp, _ = log_prob_and_entropy(p, obs[e:e + 1], actions[e:e + 1], spec, m)
            grads = torch.autograd.grad((logp[0] * weights[e, w]).sum(), [p[k] for k in names])
            out[e, w] = torch.cat([g.reshape(-1) for g in grads])
    return out


def test_vmap_grads_equal_a_per_episode_backward_loop_on_cartpole_with_dropout():
    spec = PolicySpec(obs_dim=4, act_dim=2, discrete=True, hidden=(16,), dropout=0.5)
    streams = seed_sequences(0)
    params = init_policy(spec, [torch.Generator().manual_seed(0)])
    collector = Collector("CartPole-v1", spec, 6, {"env": [streams["env"]],
                                                       "noise": [streams["noise"]]})
    try:
        batch = gterms.trim(collector.collect_round(params), 6)
    finally:
        collector.close()
    mask = torch.from_numpy(batch.mask[0]).float()
    weights = torch.stack([mask, mask * torch.arange(mask.shape[1]), -2.0 * mask], dim=1)
    masks = [m[0] for m in batch.dropout_masks]
    fast = weighted_episode_grads(params, spec, batch.obs[0], batch.actions[0], weights, masks)
    slow = loop_grads(params, spec, batch.obs[0], batch.actions[0], weights, masks)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    # the project's own per-episode gradients agree on the score
    score = per_episode_grads(params, spec, batch, torch.from_numpy(batch.mask).float())[0]
    torch.testing.assert_close(fast[:, 0], score, rtol=1e-5, atol=1e-5)
    # chunks padded only to their own longest episode change nothing
    chunked = weighted_episode_grads(params, spec, batch.obs[0], batch.actions[0], weights,
                                        masks, rows_per_call=40)
    torch.testing.assert_close(chunked, fast, rtol=1e-5, atol=1e-5)


def test_vmap_grads_equal_the_loop_for_a_gaussian_policy_with_padding():
    spec = PolicySpec(obs_dim=3, act_dim=2, discrete=False, hidden=(8,))
    params = init_policy(spec, [torch.Generator().manual_seed(1)])
    gen = torch.Generator().manual_seed(2)
    E, T = 5, 7
    obs, actions = torch.randn(E, T, 3, generator=gen), torch.randn(E, T, 2, generator=gen)
    lengths = torch.tensor([7, 1, 3, 5, 2])
    valid = (torch.arange(T)[None, :] < lengths[:, None]).float()
    weights = torch.randn(E, 2, T, generator=gen) * valid[:, None, :]
    fast = weighted_episode_grads(params, spec, obs, actions, weights, rows_per_call=8)
    slow = loop_grads(params, spec, obs, actions, weights)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert fast[:, :, parameter_layout(params)["pi.log_std"]].abs().sum() > 0


# --------------------------------------------------------------------------- command line
CONTRACT = {
    "gradstudy.parquet": ["env", "snapshot", "estimator", "episodes_per_batch", "n_batches",
                          "total_variance", "total_variance_ci_low", "total_variance_ci_high",
                          "bias_norm", "relative_bias_corrected", "relative_bias_corrected_ci_low",
                          "relative_bias_corrected_ci_high", "bias_over_noise", "projection",
                          "cosine_to_reference", "mean_grad_norm"],
    "gradstudy_layers.parquet": ["env", "snapshot", "estimator", "episodes_per_batch", "layer",
                                 "variance"],
    "gradstudy_pairs.parquet": ["env", "snapshot", "episodes_per_batch", "estimator_a",
                                "estimator_b", "variance_ratio", "variance_ratio_ci_low",
                                "variance_ratio_ci_high", "mean_diff_norm", "mean_diff_ci_high",
                                "mean_diff_pvalue"],
}
SMALL = ["--env", "CartPole-v1", "--batches", "3", "--reference-batches", "2", "--episodes", "1",
         "2", "--snapshots", "init,q5", "--n-resamples", "100"]


def test_cli_writes_the_three_tables_with_the_contract_columns_deterministically(tmp_path):
    assert main(["gradstudy", *SMALL, "--out", str(tmp_path / "a")]) == 0
    tables = {name: pd.read_parquet(tmp_path / "a" / name) for name in CONTRACT}
    for name, columns in CONTRACT.items():
        assert set(columns) <= set(tables[name].columns), name
        assert tables[name]["episodes_per_batch"].dtype == np.int64
    grad = tables["gradstudy.parquet"]
    assert set(grad["snapshot"]) == {"init", "q5"}
    assert set(grad["estimator"]) == set(gterms.ESTIMATORS)
    assert set(grad["episodes_per_batch"]) == {1, 2}
    assert (grad.loc[grad["episodes_per_batch"] == 2, "n_batches"] == 3).all()
    # R - mean(R) over one episode is 0: that degenerate estimator is left out at K = 1
    assert set(grad.loc[grad["episodes_per_batch"] == 1, "estimator"]) == set(gterms.ESTIMATORS) - {
        "batch_mean_baseline"}
    assert (grad["total_variance"] > 0).all()
    q5 = grad[grad["snapshot"] == "q5"].iloc[0]
    assert q5["snapshot_env_steps"] > 0 and q5["snapshot_running_reward"] >= 0.05 * 475
    assert (tmp_path / "a" / "gradstudy.json").is_file()
    assert main(["gradstudy", *SMALL, "--out", str(tmp_path / "b")]) == 0
    for name in CONTRACT:
        pd.testing.assert_frame_equal(tables[name], pd.read_parquet(tmp_path / "b" / name))


@pytest.mark.parametrize("argv, words", [
    (["--env", "CartPole-v9"], "CartPole-v9"),
    (["--env", "CartPole-v1", "--estimators", "vanilla", "nope"], "nope"),
    (["--env", "CartPole-v1", "--batches", "1"], "--batches 1"),
    (["--env", "CartPole-v1", "--episodes", "0", "4"], "--episodes"),
    (["--env", "CartPole-v1", "--snapshots", "init,q150"], "q150"),
    (["--env", "CartPole-v1", "--reference-estimator", "batch_mean_baseline"], "batch_mean_baseline"),
    (["--env", "CartPole-v1", "--set", "lr=fast"], "lr"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, argv, words):
    assert main(["gradstudy", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- claims
def _pairs_table(rows):
    base = {"env": "CartPole-v1", "n_batches": 40, "mean_diff_norm": 1.0, "mean_diff_ci_high": 2.0,
            "mean_diff_pvalue": 0.5, "confidence": 0.95}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_gradient_claims_give_verdicts_per_snapshot_and_batch_size(tmp_path):
    summary = write_summary(tmp_path / "s", run_rows("vanilla", [1e5] * 3))
    common = {"variance_ratio_ci_low": 0.0, "mean_diff_relative": 0.05,
              "mean_diff_relative_ci_low": 0.0, "mean_diff_relative_ci_high": 0.1}
    _pairs_table([
        # ema_baseline / vanilla: clearly lower at K=16 and K=1 for init, clearly higher at q75
        {"snapshot": "init", "episodes_per_batch": 16, "estimator_a": "ema_baseline",
         "estimator_b": "vanilla", "variance_ratio": 0.3, **common, "variance_ratio_ci_low": 0.2,
         "variance_ratio_ci_high": 0.4},
        {"snapshot": "init", "episodes_per_batch": 1, "estimator_a": "ema_baseline",
         "estimator_b": "vanilla", "variance_ratio": 0.5, **common, "variance_ratio_ci_low": 0.4,
         "variance_ratio_ci_high": 0.6},
        {"snapshot": "q75", "episodes_per_batch": 16, "estimator_a": "ema_baseline",
         "estimator_b": "vanilla", "variance_ratio": 1.5, **common, "variance_ratio_ci_low": 1.2,
         "variance_ratio_ci_high": 1.9, "mean_diff_relative_ci_high": 0.6},
        # stored as vanilla / rtg: the claim rtg / vanilla inverts it
        {"snapshot": "init", "episodes_per_batch": 16, "estimator_a": "vanilla",
         "estimator_b": "rtg", "variance_ratio": 4.0, **common, "variance_ratio_ci_low": 2.0,
         "variance_ratio_ci_high": 5.0},
        # the exact study: exact values beside the sampled ones
        {"env": "TwoStateChain", "snapshot": "exact", "episodes_per_batch": 16,
         "estimator_a": "ema_baseline", "estimator_b": "vanilla", "variance_ratio": 0.4,
         **common, "variance_ratio_ci_low": 0.3, "variance_ratio_ci_high": 0.5,
         "exact_variance_ratio": 0.35, "exact_mean_diff_relative": 1e-7},
        {"env": "TwoStateChain", "snapshot": "exact", "episodes_per_batch": 1,
         "estimator_a": "ema_baseline", "estimator_b": "vanilla", "variance_ratio": 0.4,
         **common, "variance_ratio_ci_low": 0.37, "variance_ratio_ci_high": 0.5,
         "exact_variance_ratio": 0.33, "exact_mean_diff_relative": 0.01},
    ]).to_parquet(summary / "gradstudy_pairs.parquet")
    table = evaluate_claims([c for c in load_claims() if c.table == "gradstudy_pairs"], summary)
    by = {(r["claim_id"], r["setting"]): r for _, r in table.iterrows()}
    label = "env={}, snapshot={}, episodes_per_batch={}"
    variance = by[("baseline-variance", label.format("CartPole-v1", "init", 16))]
    assert variance["verdict"] == "reproduced" and variance["estimate"] == 0.3
    assert variance["n_seeds"] == 40
    assert by[("baseline-variance", label.format("CartPole-v1", "init", 1))]["estimate"] == 0.5
    assert by[("baseline-variance", label.format("CartPole-v1", "q75", 16))]["verdict"] == \
        "not reproduced"
    exact = by[("baseline-variance", label.format("TwoStateChain", "exact", 16))]
    assert (exact["estimate"], exact["ci_low"], exact["ci_high"]) == (0.35, 0.35, 0.35)
    assert exact["verdict"] == "reproduced" and "covers the exact" in exact["detail"]
    assert "does not cover" in by[("baseline-variance",
                                   label.format("TwoStateChain", "exact", 1))]["detail"]
    # the bias claim reads the exact study only: exact zero (rounding) passes, 0.01 does not
    unbiased = table[table["claim_id"] == "baseline-unbiased"].set_index("setting")
    assert unbiased.loc["snapshot=exact, episodes_per_batch=16", "verdict"] == "reproduced"
    assert unbiased.loc["snapshot=exact, episodes_per_batch=1", "verdict"] == "not reproduced"
    causality = by[("causality-variance", label.format("CartPole-v1", "init", 16))]
    assert causality["estimate"] == pytest.approx(0.25)
    assert (causality["ci_low"], causality["ci_high"]) == pytest.approx((0.2, 0.5))
    optimal = table[table["claim_id"] == "optimal-baseline-variance"].iloc[0]
    assert optimal["verdict"] == "not run" and "fixed_optimal_baseline" in optimal["detail"]
    agree = {a["claim_id"]: a for a in gradclaims.agreement(table, ["TwoStateChain"])}
    assert "causality-variance" not in agree  # no exact rtg rows in this table
    assert agree["baseline-variance"]["agree"] is False  # q75 "not reproduced" on CartPole


def test_gradient_claims_refuse_intervals_at_another_confidence(tmp_path):
    summary = write_summary(tmp_path / "s", run_rows("vanilla", [1e5] * 3))
    _pairs_table([{"snapshot": "init", "episodes_per_batch": 16, "estimator_a": "ema_baseline",
                   "estimator_b": "vanilla", "variance_ratio": 0.3, "variance_ratio_ci_low": 0.2,
                   "variance_ratio_ci_high": 0.4, "confidence": 0.9}]).to_parquet(
        summary / "gradstudy_pairs.parquet")
    claim = [c for c in load_claims() if c.id == "baseline-variance"]
    row = evaluate_claims(claim, summary).iloc[0]
    assert row["verdict"] == "not run" and "confidence 0.9" in row["detail"]
