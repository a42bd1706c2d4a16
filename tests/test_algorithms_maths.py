"""The standard algorithms' core maths against values computed by hand (pgbench/rl/algorithms.py, pgbench/training/algorithms/).

Every expected number below is worked out in the docstring or comment beside it.
"""

import math

import numpy as np
import pytest
import torch

from pgbench.training.algorithms.a2c import actor_critic_loss
from pgbench.training.algorithms.advantages import gae
from pgbench.training.algorithms.core import Dist
from pgbench.training.algorithms.ppo import clipped_surrogate, value_loss
from pgbench.training.algorithms.trpo import conjugate_gradient, kl_line_search

F64 = torch.float64


def test_clipped_surrogate_value_and_gradient():
    """Five samples, logp_old = 0, clip 0.2 (ratio r = exp(logp)):

    ====  ===  ===  =====  ===================  ======  ==========================
    case  r    A    r A    clip(r, .8, 1.2) A   min     d min / d logp
    ====  ===  ===  =====  ===================  ======  ==========================
    a     1.5  +2   3.0    2.4                  2.4     0 (clipped term is smaller)
    b     1.5  -2   -3.0   -2.4                 -3.0    r A = -3
    c     0.5  +2   1.0    1.6                  1.0     r A = 1
    d     0.5  -2   -1.0   -1.6                 -1.6    0 (clipped)
    e     1.1  +1   1.1    1.1                  1.1     r A = 1.1 (inside the range)
    ====  ===  ===  =====  ===================  ======  ==========================

    loss = -(2.4 - 3.0 + 1.0 - 1.6 + 1.1) / 5 = 0.02; d loss / d logp = -(column) / 5
    = (0, 0.6, -0.2, 0, -0.22).
    """
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1], dtype=F64)
    adv = torch.tensor([2.0, -2.0, 2.0, -2.0, 1.0], dtype=F64)
    logp = ratio.log().requires_grad_(True)
    loss = clipped_surrogate(logp, torch.zeros(5, dtype=F64), adv, 0.2)
    loss.backward()
    assert loss.item() == pytest.approx(0.02, abs=1e-12)
    assert logp.grad.tolist() == pytest.approx([0.0, 0.6, -0.2, 0.0, -0.22], abs=1e-12)


def test_clipped_surrogate_uses_the_old_log_probabilities():
    """The same ratios from logp_old = -1: the loss and gradient are unchanged (0.02)."""
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1], dtype=F64)
    adv = torch.tensor([2.0, -2.0, 2.0, -2.0, 1.0], dtype=F64)
    old = torch.full((5,), -1.0, dtype=F64)
    loss = clipped_surrogate(old + ratio.log(), old, adv, 0.2)
    assert loss.item() == pytest.approx(0.02, abs=1e-12)


def test_value_loss_with_and_without_clipping():
    """values_old (0, 0), new (1, -0.1), returns (2, 0): unclipped MSE = (1 + 0.01) / 2 = 0.505;
    clipped to old +- 0.5 the new values are (0.5, -0.1): ((1.5)^2 + 0.1^2) / 2 = 1.13."""
    new, old = torch.tensor([1.0, -0.1], dtype=F64), torch.zeros(2, dtype=F64)
    returns = torch.tensor([2.0, 0.0], dtype=F64)
    assert value_loss(new, old, returns, 0.0).item() == pytest.approx(0.505, abs=1e-12)
    assert value_loss(new, old, returns, 0.5).item() == pytest.approx(1.13, abs=1e-12)


def test_actor_critic_loss():
    """A = (1, -2), logp = (-0.5, -1): -mean(A logp) = -(-0.5 + 2) / 2 = -0.75; V = (0, 1),
    R = (1, 3): mean((R - V)^2) = (1 + 4) / 2 = 2.5."""
    pg, vl = actor_critic_loss(torch.tensor([-0.5, -1.0], dtype=F64), torch.tensor([1.0, -2.0], dtype=F64),
                               torch.tensor([0.0, 1.0], dtype=F64), torch.tensor([1.0, 3.0], dtype=F64))
    assert pg.item() == pytest.approx(-0.75, abs=1e-12)
    assert vl.item() == pytest.approx(2.5, abs=1e-12)


def test_conjugate_gradient_on_a_2x2_spd_system():
    """A = [[4, 1], [1, 3]], b = (1, 2): x = A^-1 b = (1/11) [[3, -1], [-1, 4]] b = (1/11, 7/11),
    reached in 2 steps. After 1 step x = alpha b with alpha = b.b / b.Ab = 5 / 20: (0.25, 0.5)."""
    A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=F64)
    b = torch.tensor([1.0, 2.0], dtype=F64)
    calls = []

    def matvec(v):
        calls.append(v)
        return A @ v

    assert conjugate_gradient(matvec, b, 1).tolist() == pytest.approx([0.25, 0.5], abs=1e-15)
    x = conjugate_gradient(matvec, b, 10)
    assert x.tolist() == pytest.approx([1 / 11, 7 / 11], abs=1e-12)
    assert len(calls) == 1 + 2  # the second solve stopped once the residual vanished


def test_line_search_takes_the_first_step_inside_the_trust_region_that_improves():
    """Full step: KL 0.05 > 0.01 (rejected); half: KL 0.02 (rejected); quarter: KL 0.005 but the
    surrogate 0.9 < 1.0 (rejected); eighth: KL 0.001, surrogate 1.2 (accepted): coef 0.125."""
    table = {1.0: (2.0, 0.05), 0.5: (1.8, 0.02), 0.25: (0.9, 0.005), 0.125: (1.2, 0.001)}
    tried = []

    def evaluate(coef):
        tried.append(coef)
        return table[coef]

    assert kl_line_search(evaluate, 1.0, 0.01, 0.5, 10) == (0.125, 1.2, 0.001)
    assert tried == [1.0, 0.5, 0.25, 0.125]


def test_line_search_rejects_the_update_when_no_step_is_acceptable():
    """Every step breaks the KL bound: after max_iter = 3 tries the policy stays (coef 0)."""
    tried = []

    def evaluate(coef):
        tried.append(coef)
        return 5.0, 1.0

    assert kl_line_search(evaluate, 1.0, 0.01, 0.8, 3) == (0.0, 1.0, 0.0)
    assert tried == pytest.approx([1.0, 0.8, 0.64])


def test_kl_of_gaussians_in_closed_form():
    """KL(N(0, 1) || N(1, 1)) = 1/2; KL(N(0, 1) || N(0, 2^2)) = log 2 + 1/8 - 1/2."""
    old = Dist(torch.zeros(1, 1, dtype=F64), torch.zeros(1, dtype=F64))
    shifted = Dist(torch.ones(1, 1, dtype=F64), torch.zeros(1, dtype=F64))
    wider = Dist(torch.zeros(1, 1, dtype=F64), torch.full((1,), math.log(2.0), dtype=F64))
    assert shifted.kl_from(old).item() == pytest.approx(0.5, abs=1e-12)
    assert wider.kl_from(old).item() == pytest.approx(math.log(2) + 1 / 8 - 1 / 2, abs=1e-12)


def test_kl_of_categoricals():
    """KL((1/2, 1/2) || (1/4, 3/4)) = 1/2 log 2 + 1/2 log(2/3)."""
    old = Dist(torch.log(torch.tensor([[0.5, 0.5]], dtype=F64)), None)
    new = Dist(torch.log(torch.tensor([[0.25, 0.75]], dtype=F64)), None)
    assert new.kl_from(old).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-12)
    assert old.kl_from(old).item() == 0.0


def _col(x):
    return np.asarray(x, dtype=np.float64)[:, None]


def test_gae_worked_example_truncated_bootstraps():
    """The module docstring's example: gamma 0.5, lambda 1, rewards 1, values 0, next values
    (0, 4, 8), truncated at t = 1: A = (2.5, 3, 5)."""
    adv, ret = gae(_col([1, 1, 1]), _col([0, 0, 0]), _col([0, 4, 8]), _col([0, 0, 0]) > 0,
                   _col([0, 1, 0]) > 0, 0.5, 1.0)
    assert adv[:, 0].tolist() == pytest.approx([2.5, 3.0, 5.0], abs=1e-12)
    assert ret[:, 0].tolist() == pytest.approx([2.5, 3.0, 5.0], abs=1e-12)


def test_gae_terminated_does_not_bootstrap():
    """As above but terminated at t = 1: A_1 = 1 (V of the next state is ignored), A_0 = 1.5."""
    adv, _ = gae(_col([1, 1, 1]), _col([0, 0, 0]), _col([0, 4, 8]), _col([0, 1, 0]) > 0,
                 _col([0, 0, 0]) > 0, 0.5, 1.0)
    assert adv[:, 0].tolist() == pytest.approx([1.5, 1.0, 5.0], abs=1e-12)


def test_a2c_n_step_targets_terminal_vs_truncated():
    """lambda = 1, gamma 0.9, rewards 1, V(s_t) = (3, 7, 2), and the value after the rollout 10.
    The n-step target R_t = sum gamma^k r + gamma^(n) V(bootstrap) does not depend on the
    intermediate values:
    - no episode end: R_2 = 1 + 9 = 10, R_1 = 1 + 0.9 R_2 = 10, R_0 = 10;
    - terminated at t = 1: R_1 = 1, R_0 = 1 + 0.9 = 1.9, R_2 = 10;
    - truncated at t = 1 with V(final obs) = 5: R_1 = 1 + 4.5 = 5.5, R_0 = 1 + 4.95 = 5.95.
    """
    values = _col([3, 7, 2])
    nxt = _col([7, 2, 10])  # V(s_{t+1}) inside the episode; the last is after the rollout
    none = _col([0, 0, 0]) > 0
    at1 = _col([0, 1, 0]) > 0
    _, ret = gae(_col([1, 1, 1]), values, nxt, none, none, 0.9, 1.0)
    assert ret[:, 0].tolist() == pytest.approx([10.0, 10.0, 10.0], abs=1e-12)
    _, ret = gae(_col([1, 1, 1]), values, nxt, at1, none, 0.9, 1.0)
    assert ret[:, 0].tolist() == pytest.approx([1.9, 1.0, 10.0], abs=1e-12)
    truncated_next = _col([7, 5, 10])
    adv, ret = gae(_col([1, 1, 1]), values, truncated_next, none, at1, 0.9, 1.0)
    assert ret[:, 0].tolist() == pytest.approx([5.95, 5.5, 10.0], abs=1e-12)
    np.testing.assert_allclose(adv + values, ret, atol=1e-12)


def test_gae_sub_envs_are_independent_and_lambda_zero_is_td():
    """Two sub-envs side by side give each one's own answer; lambda = 0 gives the one-step TD
    error r + gamma V' - V: (1 + 0.5 * 4 - 1, 1 + 0.5 * 8 - 2) = (2, 3) for env 1."""
    r = np.array([[1.0, 1.0], [1.0, 1.0]])
    v = np.array([[0.0, 1.0], [0.0, 2.0]])
    nv = np.array([[0.0, 4.0], [0.0, 8.0]])
    f = np.zeros((2, 2), dtype=bool)
    adv, _ = gae(r, v, nv, f, f, 0.5, 0.0)
    assert adv[:, 1].tolist() == pytest.approx([2.0, 3.0])
    assert adv[:, 0].tolist() == pytest.approx([1.0, 1.0])
