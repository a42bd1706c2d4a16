"""The surrogate loss's gradient is the policy gradient: checked on a two-armed bandit.

The bandit has one (constant) observation and two arms paying r = (1, 0). With logits z and
pi = softmax(z), J = sum_a pi_a r_a and dJ/dz_j = pi_j (r_j - J). The output bias of the policy
MLP adds to z directly, so the gradient of J with respect to it is exactly that.
"""

import numpy as np
import torch

from pgbench.rl.config import make_config
from pgbench.rl.policies import PolicySpec, init_policy, log_prob_and_entropy, sample_actions
from pgbench.training.update import policy_loss

REWARD = torch.tensor([1.0, 0.0])
SPEC = PolicySpec(obs_dim=1, act_dim=2, discrete=True, hidden=(8,))
CFG = make_config("vanilla", {})


def bandit_policy(seed=0):
    params = init_policy(SPEC, [torch.Generator().manual_seed(seed)])
    with torch.no_grad():
        params["pi.b1"] += torch.tensor([[[0.3, -0.2]]])  # make the arms unequal
    return {k: v.requires_grad_(True) for k, v in params.items()}


def probs(params):
    with torch.no_grad():
        logp, _ = log_prob_and_entropy(params, torch.ones(1, 2, 1), torch.tensor([[0, 1]]), SPEC)
    return logp.exp()[0]


def surrogate_grad(params, actions, weights, n_episodes):
    """Gradient of J estimated by the surrogate: -d(loss)/d(output bias)."""
    for p in params.values():
        p.grad = None
    B = actions.shape[1]
    logp, _ = log_prob_and_entropy(params, torch.ones(1, B, 1), actions, SPEC)
    loss = policy_loss(CFG, logp, weights, torch.ones(1, B), torch.tensor([float(n_episodes)]))
    loss.sum().backward()
    return -params["pi.b1"].grad[0, 0].clone()


def test_exact_expectation_equals_analytic_gradient():
    params = bandit_policy()
    pi = probs(params)
    J = (pi * REWARD).sum()
    analytic = pi * (REWARD - J)
    # Expectation over actions, written as one "episode" per arm weighted by its probability.
    actions = torch.tensor([[0, 1]])
    weights = (pi * REWARD).unsqueeze(0) * 2  # loss divides by n_episodes = 2
    got = surrogate_grad(params, actions, weights, n_episodes=2)
    torch.testing.assert_close(got, analytic, rtol=1e-6, atol=1e-7)


def test_monte_carlo_gradient_and_constant_baseline():
    params = bandit_policy()
    pi = probs(params)
    analytic = pi * (REWARD - (pi * REWARD).sum())
    n = 40_000
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        actions = sample_actions(params, torch.ones(1, n, 1), SPEC, torch.rand(1, n, 1, generator=gen))
    r = REWARD[actions]
    # per-sample gradients of log pi(a) wrt the output bias: onehot(a) - pi
    score = torch.nn.functional.one_hot(actions[0], 2).float() - pi
    per_sample = score * r[0].unsqueeze(1)
    se = per_sample.std(0) / np.sqrt(n)
    no_baseline = surrogate_grad(params, actions, r, n)
    torch.testing.assert_close(no_baseline, per_sample.mean(0), rtol=1e-4, atol=1e-6)
    assert torch.all((no_baseline - analytic).abs() < 4 * se), (no_baseline, analytic, se)
    # A constant baseline changes each sample's gradient but not the expectation.
    with_baseline = surrogate_grad(params, actions, r - 0.5, n)
    diff = (score * 0.5).std(0) / np.sqrt(n)
    assert torch.all((with_baseline - no_baseline).abs() < 4 * diff)
    assert torch.all((with_baseline - analytic).abs() < 4 * se)
    # ... and it must actually differ sample by sample (the test could not fail otherwise).
    assert not torch.allclose(with_baseline, no_baseline, rtol=0, atol=1e-9)
