"""engine=numba: each kernel against the torch/NumPy code it stands in for, and whole runs
against engine=torch (same random streams) and against themselves (same seed, same numbers)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from pgbench.core.errors import UserError
from pgbench.rl import engines
from pgbench.rl.config import ENGINES, make_config
from pgbench.rl.policies import PolicySpec, init_policy, log_prob_and_entropy
from pgbench.runs.store import is_complete
from pgbench.training.group import GroupTrainer
from pgbench.training.numba import engine, kernels, update
from pgbench.training.rollout import Batch
from pgbench.training.runner import RunRequest, train_runs
from pgbench.training.update import advantages, policy_loss


def slides(variant="vanilla", **overrides):
    return make_config(variant, {"env_id": "CartPole-v1", "episodes_per_update": 1, "lr": 0.01,
                                 "hidden": [128], "engine": "numba", **overrides})


@pytest.mark.parametrize("returns, baseline, normalize", [
    ("total", "none", False), ("rtg", "none", False), ("total", "mean", False),
    ("rtg", "ema", False), ("total", "ema", True), ("rtg", "whiten", False),
    ("rtg", "whiten", True), ("rtg", "mean", True)])
def test_advantages_match_the_numpy_estimators(returns, baseline, normalize):
    lengths = np.array([7, 1, 12, 3])
    T = 20
    mask = np.arange(T) < lengths[:, None]
    batch = Batch(obs=None, actions=None, rewards=mask.astype(float)[None], mask=mask[None],
                  terminated=np.ones((1, 4), bool), truncated=np.zeros((1, 4), bool),
                  lengths=lengths[None], final_obs=None, dropout_masks=None)
    cfg = make_config("rtg", {"returns": returns, "baseline": baseline, "episodes_per_update": 4,
                              "normalize_advantages": normalize, "gamma": 0.9})
    for previous in (float("nan"), 3.5):  # the EMA baseline's state: none yet, then some
        want, _, want_state = advantages(cfg, batch, None, None, np.array([previous]))
        got, got_state = update.advantages(lengths, engines.NUMBA_RETURNS.index(returns),
                                             engines.NUMBA_BASELINES.index(baseline), 0.9, previous,
                                             cfg.ema_weight, normalize)
        np.testing.assert_allclose(got, want[0, :, :got.shape[1]], rtol=1e-12, atol=1e-12)
        assert np.all(want[0, :, got.shape[1]:] == 0)
        np.testing.assert_allclose(got_state, want_state[0], rtol=1e-12)


def test_rtg_by_hand():
    # three steps of reward 1, gamma 0.5: reward-to-go 1.75, 1.5, 1; the total return 1.75
    adv, _ = update.advantages(np.array([3]), 1, 0, 0.5, float("nan"), 0.05, False)
    np.testing.assert_array_equal(adv, [[1.75, 1.5, 1.0]])
    adv, _ = update.advantages(np.array([3]), 0, 0, 0.5, float("nan"), 0.05, False)
    np.testing.assert_array_equal(adv, [[1.75, 1.75, 1.75]])


@pytest.mark.parametrize("activation, dropout", [("relu", 0.0), ("relu", 0.6), ("tanh", 0.3)])
def test_gradient_matches_autograd(activation, dropout):
    spec = PolicySpec(obs_dim=4, act_dim=2, discrete=True, hidden=(16,), activation=activation)
    params = init_policy(spec, [torch.Generator().manual_seed(3)])
    rng = np.random.default_rng(0)
    n, T, H = 3, 9, 16
    lengths = np.array([9, 4, 6])
    obs = rng.normal(size=(n, T, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=(n, T))
    drop = np.ones((n, T, H), np.float32)
    if dropout:
        drop = ((rng.random((n, T, H)) >= dropout) / (1 - dropout)).astype(np.float32)
    adv = rng.normal(size=(n, T)) * (np.arange(T) < lengths[:, None])

    # torch: the loss of pgbench.train on the flattened valid steps
    flat = torch.cat([params[k].reshape(-1) for k in ("pi.W0", "pi.b0", "pi.W1", "pi.b1")])
    leaf = flat.clone().requires_grad_(True)
    views = {"pi.W0": leaf[:64].view(1, 4, 16), "pi.b0": leaf[64:80].view(1, 1, 16),
             "pi.W1": leaf[80:112].view(1, 16, 2), "pi.b1": leaf[112:].view(1, 1, 2)}
    valid = np.arange(T) < lengths[:, None]
    masks = [torch.from_numpy(drop[valid][None])] if dropout else None
    logp, entropy = log_prob_and_entropy(views, torch.from_numpy(obs[valid][None]),
                                         torch.from_numpy(actions[valid][None]), spec, masks)
    ones = torch.ones(1, int(valid.sum()))
    loss = policy_loss(make_config("rtg", {}), logp, torch.from_numpy(adv[valid][None]).float(),
                       ones, torch.tensor([float(n)]))
    (want,) = torch.autograd.grad(loss.sum(), leaf)

    p = flat.numpy().copy()
    W0, b0, W1, b1 = p[:64].reshape(4, 16), p[64:80], p[80:112].reshape(16, 2), p[112:]
    act = engines.NUMBA_ACTIVATIONS.index(activation)
    z, h = np.zeros((n, T, H), np.float32), np.zeros((n, T, H), np.float32)
    logits = np.zeros((n, T, 2), np.float32)
    for i in range(n):  # the activations the rollout keeps
        for t in range(T):
            kernels.hidden_layer(W0, b0, obs, act, drop, dropout > 0, z, h, i, t)
            kernels.logits_of(W1, b1, h, logits, i, t)
    grad = np.zeros(len(p))
    got_loss, got_entropy = update.gradient(W1, act, obs, actions, drop, dropout > 0, z, h,
                                              logits, lengths, adv, grad)
    np.testing.assert_allclose(grad, want.numpy(), rtol=1e-4, atol=1e-6)
    assert got_loss == pytest.approx(float(loss.detach()), rel=1e-5)
    assert got_entropy == pytest.approx(float(entropy.mean().detach()), rel=1e-5)


def test_adam_is_torch_adam():
    rng = np.random.default_rng(1)
    w = rng.normal(size=50).astype(np.float32)
    ref = torch.tensor(w.copy(), requires_grad=True)
    opt = torch.optim.Adam([ref], lr=0.01)
    mine, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 8):
        g = rng.normal(size=50)
        ref.grad = torch.from_numpy(g.astype(np.float32))
        opt.step()
        update.adam(mine, m, v, g, np.float32(0.1), np.float32(0.999), np.float32(0.001),
                      np.float32(np.sqrt(1 - 0.999**t)), np.float32(-0.01 / (1 - 0.9**t)),
                      np.float32(1e-8))
    np.testing.assert_allclose(mine, ref.detach().numpy(), rtol=1e-6, atol=1e-8)


def test_cartpole_is_gymnasiums():
    engine.check_cartpole.__wrapped__(episodes=32)  # raises on the first state that differs


@pytest.mark.parametrize("variant, overrides", [
    ("vanilla", {"dropout": 0.6}),
    ("rtg_baseline", {"baseline": "whiten"}),
    ("baseline", {"episodes_per_update": 2, "ema_weight": 0.3}),
    ("rtg", {"gamma": 0.9, "normalize_advantages": True, "activation": "tanh", "dropout": 0.2}),
    ("rtg", {"baseline": "mean", "episodes_per_update": 3, "env_id": "CartPole-v0", "lr": 0.03})])
def test_follows_the_torch_engine_while_no_action_flips(variant, overrides):
    """The same seed draws the same resets, action noise and dropout masks under both engines;
    only the network's rounding differs, so the first episodes are the same (every field), and
    the first updates agree to rounding."""
    cfg = slides(variant, total_steps=4000, **overrides)
    ours = engine.NumbaRun(cfg).run()
    theirs = GroupTrainer(replace(cfg, engine="torch")).run()[0]
    assert ours.episode_rows[:20] == theirs.episode_rows[:20]
    np.testing.assert_allclose([r[3:6] for r in ours.update_rows[:3]],
                               [r[3:6] for r in theirs.update_rows[:3]], rtol=1e-4)


def balancing_weights(hidden: int, copies: int, gain: float) -> np.ndarray:
    """Flat weights (W0, b0, W1, b1) of a 4-hidden-2 relu policy whose logit difference is
    ``gain * (3 theta + theta_dot)``, spread over ``copies`` units each way: it keeps the pole
    up, so its episodes run long and often to the time limit."""
    w0, w1 = np.zeros((4, hidden), np.float32), np.zeros((hidden, 2), np.float32)
    c = gain * np.array([0.0, 0.0, 3.0, 1.0], np.float32)
    w0[:, :copies], w0[:, copies:2 * copies] = c[:, None], -c[:, None]
    w1[:copies, 1], w1[copies:2 * copies, 1] = 1.0 / copies, -1.0 / copies
    return np.concatenate([w0.ravel(), np.zeros(hidden, np.float32), w1.ravel(),
                           np.zeros(2, np.float32)])


@pytest.mark.parametrize("env_id, n, dropout", [("CartPole-v0", 3, 0.3), ("CartPole-v1", 2, 0.0)])
def test_long_episodes_and_time_limits_match_the_torch_engine(env_id, n, dropout):
    """A fixed (lr 1e-12) policy that balances: every episode row, through the noise chunks of
    long episodes (16, 32, 64, 128, ... steps), truncation at the env's limit and termination,
    with several sub-envs per seed ending at different steps."""
    cfg = slides("rtg", env_id=env_id, episodes_per_update=n, dropout=dropout, lr=1e-12,
                 hidden=[16], total_steps=3500)
    w = balancing_weights(16, 4, gain=2.0)
    ours = engine.NumbaRun(cfg)
    ours.flat[:] = w
    theirs = GroupTrainer(replace(cfg, engine="torch"))
    theirs.opt.flat[0] = torch.from_numpy(w)
    a, b = ours.run(), theirs.run()[0]
    assert a.episode_rows == b.episode_rows
    truncated = [row[6] for row in a.episode_rows]
    assert any(truncated) and not all(truncated)  # both ends occur
    assert max(row[4] for row in a.episode_rows) == (200 if env_id == "CartPole-v0" else 500)


def test_same_seed_same_numbers_and_seeds_differ():
    a, b = (engine.NumbaRun(slides(total_steps=4000, dropout=0.6)).run() for _ in range(2))
    assert a.episode_rows == b.episode_rows
    assert [r[:6] for r in a.update_rows] == [r[:6] for r in b.update_rows]  # (7th: NaN)
    c = engine.NumbaRun(slides(total_steps=4000, dropout=0.6, seed=1)).run()
    assert c.episode_rows != a.episode_rows


def test_stops_when_solved_or_at_the_budget():
    log = engine.NumbaRun(slides("rtg_baseline", baseline="whiten", total_steps=300_000,
                                      stop_when_solved=True)).run()
    assert log.stop_reason == "solved" and log.solved is not None
    assert log.env_steps < 300_000
    budget = engine.NumbaRun(slides(total_steps=1000)).run()
    assert budget.stop_reason == "budget" and 1000 <= budget.env_steps < 1000 + 500


@pytest.mark.parametrize("overrides, named", [
    ({"env_id": "Acrobot-v1"}, "env_id=Acrobot-v1"),
    ({"baseline": "value"}, "baseline=value"),
    ({"hidden": [64, 64]}, "hidden=64,64"),
    ({"episodes_per_update": 0, "steps_per_update": 500}, "steps_per_update"),
    ({"entropy_coef": 0.01}, "entropy_coef=0.01"),
    ({"num_envs": 3}, "num_envs=3 (accepted: 0 or 1")])
def test_unsupported_configs_are_refused_by_name(overrides, named):
    with pytest.raises(UserError) as err:
        slides("rtg", **overrides)
    message = str(err.value)
    assert named in message and "accepted" in message and "engine=torch" in message


def test_bad_engine_name():
    with pytest.raises(UserError, match="engine='jax'.*accepted: torch, numba"):
        make_config("rtg", {"engine": "jax"})


def test_total_return_with_its_own_mean_is_refused_for_both_engines():
    for engine_name in ENGINES:
        with pytest.raises(UserError,
                           match="returns=total with normalize_advantages.*every advantage 0"):
            make_config("vanilla", {"normalize_advantages": True, "engine": engine_name})
        with pytest.raises(UserError, match="baseline=mean"):
            make_config("vanilla", {"baseline": "mean", "engine": engine_name})
    make_config("vanilla", {"baseline": "mean", "episodes_per_update": 2})  # a batch mean


def test_the_torch_trainer_refuses_numba_configs():
    with pytest.raises(UserError, match="engine=torch"):
        GroupTrainer(slides("rtg", total_steps=1000))


def test_train_runs_sends_numba_runs_to_the_compiled_engine(tmp_path, monkeypatch):
    cfg = slides("rtg", total_steps=2000)
    torch_cfg = replace(cfg, engine="torch", seed=1)
    compiled_seeds = []
    original = engine.NumbaRun.run

    def spy(self, progress=None):
        compiled_seeds.append(self.cfg.seed)
        return original(self, progress)

    monkeypatch.setattr(engine.NumbaRun, "run", spy)
    logs = train_runs([RunRequest(cfg, tmp_path / "a"), RunRequest(torch_cfg, tmp_path / "b")])
    assert [log.seed for log in logs] == [0, 1] and compiled_seeds == [0]
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["config"]["engine"] == "numba" and info["status"] == "complete"
    assert is_complete(tmp_path / "a", cfg) and not is_complete(tmp_path / "a", torch_cfg)
    assert is_complete(tmp_path / "b", torch_cfg)
