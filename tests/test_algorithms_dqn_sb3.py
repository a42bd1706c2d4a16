"""pgbench's DQN against Stable-Baselines3's: one gradient step, and a whole short run in lock-step.

The gradient step: both start from the same weights (SB3's initialisation copied into
pgbench's layout) and take the same gradient steps on the same minibatches (SB3's replay
sampling replaced by the fixed batches), with a target-network copy in between; every weight must agree to float32 rounding
(pgbench multiplies with ``baddbmm``, SB3 with ``nn.Linear``: the same sums, rounded apart by
~1e-7). This checks the TD target (terminal rows masked, truncated rows bootstrapping), the
Huber loss, the gradient clipping and Adam's settings against the reference itself.

The whole run (:func:`test_whole_short_run_matches_sb3_dqn_in_lock_step`): both trainers consume
the same random draws, and every action, stored transition, epsilon, target sync, gradient step
count, weight and recorded episode must agree, so the training loops themselves are the same
(issue 19's validation).
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

sb3 = pytest.importorskip("stable_baselines3")
import stable_baselines3.dqn.dqn as sb3_dqn_module
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv

from pgbench.core.seeding import torch_generator
from pgbench.rl.algorithms import DQNHyper
from pgbench.rl.config import make_config
from pgbench.rl.policies import init_mlp
from pgbench.training.algorithms import dqn
from pgbench.training.algorithms.dqn import DQNLearner
from pgbench.training.algorithms.episodes import EpisodeRecorder
from pgbench.training.algorithms.replay import ReplayBuffer, Transitions
from pgbench.training.algorithms.sb3_reference import LOSS_KEYS, _Recorder, sb3_model

HIDDEN = [16, 16]
BATCH = 8
GAMMA = 0.9
LR = 0.05  # large, so that a wrong clip or a wrong Adam epsilon shows in a few steps
MAX_GRAD_NORM = 0.1  # small, so that the clipping is active


def _batches(n, rng):
    for _ in range(n):
        yield {"obs": rng.normal(size=(BATCH, 4)).astype(np.float32),
               "next_obs": rng.normal(size=(BATCH, 4)).astype(np.float32),
               "actions": rng.integers(0, 2, size=BATCH),
               "rewards": rng.normal(size=BATCH).astype(np.float32) * 3,
               # terminal rows; a truncated row is stored as not terminal
               "terminated": (rng.random(BATCH) < 0.3).astype(np.float32)}


def _copy_sb3_weights(net: torch.nn.Sequential, params: dict) -> None:
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            params[f"W{i}"].copy_(lin.weight.T[None])
            params[f"b{i}"].copy_(lin.bias[None, None])


def test_gradient_steps_match_sb3_dqn_train():
    torch.manual_seed(0)
    model = sb3.DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=LR, gamma=GAMMA,
                    batch_size=BATCH, max_grad_norm=MAX_GRAD_NORM, learning_starts=0,
                    buffer_size=100,
                    policy_kwargs={"net_arch": HIDDEN}, device="cpu", seed=0)
    model.set_logger(configure(None, []))  # train() logs; learn() would have set one
    h = DQNHyper(batch_size=BATCH, max_grad_norm=MAX_GRAD_NORM)
    mine = DQNLearner([4, *HIDDEN, 2], LR, GAMMA, h, np.random.SeedSequence(0))
    _copy_sb3_weights(model.q_net.q_net, mine.online)
    _copy_sb3_weights(model.q_net_target.q_net, mine.target)

    batches = list(_batches(6, np.random.default_rng(7)))
    queue, norms = [], []
    model.replay_buffer.sample = lambda batch_size, env=None: queue.pop(0)
    for step, b in enumerate(batches):
        queue.append(ReplayBufferSamples(
            observations=torch.from_numpy(b["obs"]), actions=torch.from_numpy(b["actions"])[:, None],
            next_observations=torch.from_numpy(b["next_obs"]),
            dones=torch.from_numpy(b["terminated"])[:, None],
            rewards=torch.from_numpy(b["rewards"])[:, None]))
        model.train(gradient_steps=1, batch_size=BATCH)
        _loss, norm = mine.gradient_step(Transitions(
            obs=torch.from_numpy(b["obs"]), actions=torch.from_numpy(b["actions"]),
            rewards=torch.from_numpy(b["rewards"]), next_obs=torch.from_numpy(b["next_obs"]),
            terminated=torch.from_numpy(b["terminated"])))
        norms.append(norm)
        if step == 2:  # a hard target copy on both sides
            model.q_net_target.load_state_dict(model.q_net.state_dict())
            mine.update_target()
    assert sum(n > MAX_GRAD_NORM for n in norms) >= 3, norms  # the clipping acted
    expected = {k: v.clone() for k, v in mine.online.items()}
    _copy_sb3_weights(model.q_net.q_net, expected)
    for name in mine.online:
        torch.testing.assert_close(mine.online[name].detach(), expected[name], rtol=1e-4, atol=1e-5)
    # and the weights did move: the comparison is not of two untouched copies
    start = DQNLearner([4, *HIDDEN, 2], LR, GAMMA, h, np.random.SeedSequence(0)).online
    assert not torch.allclose(start["W0"], mine.online["W0"])


# -- a whole short run in lock-step ------------------------------------------------------------
# Both trainers consume pgbench's draws (SeedSequence(seed).spawn(4): network init, reset seeds,
# an epsilon coin and a random action per env step, replay indices): pgbench's initial weights
# are copied into SB3's q_net and q_net_target, every SB3 reset is seeded from pgbench's env
# stream, SB3's `np.random.rand()` coin and `action_space.sample()` return that step's draws, and
# SB3's `ReplayBuffer.sample` takes its indices from pgbench's replay stream. SB3's own loop
# decides the rest: warm-up, epsilon, which draws it uses, when it trains and syncs, what it
# stores. The runs are short on purpose: float32 rounding (baddbmm against nn.Linear, ~1e-7)
# is amplified by Adam and by ReLU/argmax flips, and a longer run drifts apart from it alone
# (SB3 against itself with one initial weight moved by one ulp parts at a similar point).
SHORT_ID = "pgbench-test/CartPole-limit15-v0"  # Gymnasium's CartPoleEnv cut at 15 steps
if SHORT_ID not in gym.registry:
    gym.register(SHORT_ID, entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
                 max_episode_steps=15)

LOCK_STEP_RUNS = {
    # CartPole-v1 through pgbench's own CartPole equations; the zoo's shape scaled down:
    # learning_starts a multiple of train_freq (the phase ending there must not train: SB3's >),
    # a buffer smaller than the run (the ring wraps), epsilon still falling while training
    "zoo-shape": {"env_id": "CartPole-v1", "total_steps": 1536, "learning_starts": 512,
                  "train_freq": 128, "gradient_steps": 16, "buffer_size": 1000,
                  "exploration_fraction": 0.5},
    # time-limit cuts (next_obs is the real last one, not terminal) and gradient_steps -1
    "truncations": {"env_id": SHORT_ID, "total_steps": 300, "learning_starts": 100,
                    "train_freq": 4, "gradient_steps": -1, "buffer_size": 300,
                    "exploration_fraction": 0.5},
}
COMMON = {"lr": 0.0023, "batch_size": 32, "gamma": 0.99, "target_update_interval": 10,
          "exploration_final_eps": 0.04, "hidden": [64, 64], "seed": 0}


def _weights_of(linears) -> dict:
    """SB3's linear layers in pgbench's layout (``W (in, out)``, ``b (out,)``)."""
    out = {}
    for i, lin in enumerate(linears):
        out[f"W{i}"], out[f"b{i}"] = lin.weight.detach().T.clone(), lin.bias.detach().clone()
    return out


def _pgbench_run(cfg, monkeypatch) -> dict:
    rec = {"transitions": [], "eps": [], "syncs": [], "phases": []}
    learners = []
    add, init = ReplayBuffer.add, DQNLearner.__init__
    sync, end_update, epsilon_at = DQNLearner.update_target, EpisodeRecorder.end_update, dqn.epsilon_at

    def spy_add(self, obs, action, reward, next_obs, terminated):
        rec["transitions"].append((obs.copy(), int(action), reward, next_obs.copy(), terminated))
        add(self, obs, action, reward, next_obs, terminated)

    def spy_init(self, *args):
        init(self, *args)
        learners.append(self)

    def spy_sync(self):
        rec["syncs"].append(len(rec["transitions"]))  # env steps taken so far
        sync(self)

    def spy_end_update(self, **stats):
        if stats["gradient_steps"]:  # a phase that trained
            rec["phases"].append((stats["gradient_steps"], {  # W (1, in, out), b (1, 1, out)
                k: (v[0, 0] if k.startswith("b") else v[0]).detach().clone()
                for k, v in learners[0].online.items()}))
        return end_update(self, **stats)

    def spy_epsilon(*args):
        rec["eps"].append(epsilon_at(*args))
        return rec["eps"][-1]

    monkeypatch.setattr(ReplayBuffer, "add", spy_add)
    monkeypatch.setattr(DQNLearner, "__init__", spy_init)
    monkeypatch.setattr(DQNLearner, "update_target", spy_sync)
    monkeypatch.setattr(EpisodeRecorder, "end_update", spy_end_update)
    monkeypatch.setattr(dqn, "epsilon_at", spy_epsilon)
    rec["log"] = dqn.train(cfg)
    monkeypatch.undo()
    return rec


class _SeededResets(gym.Wrapper):
    """Every reset seeded from pgbench's env stream, one seed per reset as AutoResetEnvs draws."""

    def __init__(self, env, rng):
        super().__init__(env)
        self.rng = rng

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=int(self.rng.integers(0, 2**31 - 1, size=1)[0]))


def _sb3_run(cfg, monkeypatch) -> dict:
    rec = {"transitions": [], "eps": {}, "syncs": [], "phases": [], "random_actions": 0}
    init_ss, env_ss, act_ss, replay_ss = np.random.SeedSequence(cfg.seed).spawn(4)
    act_rng, replay_rng = np.random.default_rng(act_ss), np.random.default_rng(replay_ss)
    env = make_vec_env(cfg.env_id, n_envs=1, seed=cfg.seed, vec_env_cls=DummyVecEnv,
                       wrapper_class=_SeededResets,
                       wrapper_kwargs={"rng": np.random.Generator(np.random.PCG64(env_ss))})
    model = sb3_model(cfg, env)
    n_actions = int(env.action_space.n)
    start = init_mlp([env.observation_space.shape[0], *cfg.hidden, n_actions],
                     [torch_generator(init_ss)])
    with torch.no_grad():
        for net in (model.q_net.q_net, model.q_net_target.q_net):
            for i, lin in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
                lin.weight.copy_(start[f"W{i}"][0].T)
                lin.bias.copy_(start[f"b{i}"][0, 0])

    draws = {}
    sample_action = model._sample_action

    def spy_sample_action(*args, **kwargs):  # pgbench draws the coin, then the action, each step
        draws["coin"], draws["action"] = act_rng.random(), int(act_rng.integers(n_actions))
        draws["step"] = model.num_timesteps
        return sample_action(*args, **kwargs)

    def coin():  # DQN.predict's np.random.rand() < exploration_rate
        rec["eps"][draws["step"]] = model.exploration_rate
        return draws["coin"]

    def random_action(mask=None):
        rec["random_actions"] += 1
        return np.int64(draws["action"])

    buffer = model.replay_buffer
    buffer_add = buffer.add

    def spy_add(obs, next_obs, action, reward, done, infos):
        terminated = bool(done[0]) and not infos[0].get("TimeLimit.truncated", False)
        rec["transitions"].append((obs[0].copy(), int(action.ravel()[0]), float(reward[0]),
                                   next_obs[0].copy(), terminated))
        buffer_add(obs, next_obs, action, reward, done, infos)

    def sample(batch_size, env=None):
        rows = buffer.buffer_size if buffer.full else buffer.pos
        return buffer._get_samples(replay_rng.integers(0, rows, size=batch_size), env=env)

    polyak_update = sb3_dqn_module.polyak_update

    def spy_polyak(params, target_params, tau):
        if params is not model.batch_norm_stats:  # the Q-network's, not the (empty) norm stats
            rec["syncs"].append(model.num_timesteps)
        polyak_update(params, target_params, tau)

    train = model.train

    def spy_train(gradient_steps, batch_size):
        train(gradient_steps=gradient_steps, batch_size=batch_size)
        rec["phases"].append((gradient_steps, _weights_of(
            m for m in model.q_net.q_net if isinstance(m, torch.nn.Linear))))

    monkeypatch.setattr(model, "_sample_action", spy_sample_action)
    monkeypatch.setattr(np.random, "rand", coin)
    monkeypatch.setattr(model.action_space, "sample", random_action)
    monkeypatch.setattr(buffer, "add", spy_add)
    monkeypatch.setattr(buffer, "sample", sample)
    monkeypatch.setattr(sb3_dqn_module, "polyak_update", spy_polyak)
    monkeypatch.setattr(model, "train", spy_train)
    recorder = EpisodeRecorder(cfg, 1, count_gradient_steps=False)
    model.learn(total_timesteps=cfg.total_steps, log_interval=None,
                callback=_Recorder(recorder, LOSS_KEYS["sb3_dqn"]))
    monkeypatch.undo()
    env.close()
    rec["log"] = recorder.log
    return rec


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(LOCK_STEP_RUNS))
def test_whole_short_run_matches_sb3_dqn_in_lock_step(run, monkeypatch):
    settings = {**COMMON, **LOCK_STEP_RUNS[run]}
    mine = _pgbench_run(make_config("dqn", settings), monkeypatch)
    theirs = _sb3_run(make_config("sb3_dqn", settings), monkeypatch)
    h = DQNHyper(**{k: settings[k] for k in ("learning_starts", "train_freq", "gradient_steps")})
    steps = settings["total_steps"]

    # the actions and the transitions stored, step by step (the first difference is named)
    assert len(mine["transitions"]) == len(theirs["transitions"]) == steps
    for t, (a, b) in enumerate(zip(mine["transitions"], theirs["transitions"])):
        assert a[1] == b[1], f"step {t}: action {a[1]} (pgbench) != {b[1]} (SB3)"
        for part, x, y in zip(("obs", "action", "reward", "next_obs", "terminated"), a, b):
            assert np.array_equal(x, y), f"step {t}: {part} {x} (pgbench) != {y} (SB3)"
    terminal = sum(a[4] for a in mine["transitions"])
    cut = sum(not a[4] and not np.array_equal(a[3], b[0])
              for a, b in zip(mine["transitions"], mine["transitions"][1:]))
    assert terminal >= 10 and (cut >= 3 if run == "truncations" else True), (terminal, cut)

    # random actions until learning_starts, then the coin against the same epsilon every step
    assert sorted(theirs["eps"]) == list(range(h.learning_starts, steps))
    for t, eps in theirs["eps"].items():
        assert mine["eps"][t] == pytest.approx(eps, rel=1e-12, abs=1e-15), t
    explored = sum(theirs["eps"][t] > c for t, c in _coins(settings))
    assert theirs["random_actions"] == h.learning_starts + explored

    # target syncs at the same env steps; the same trained phases, gradient steps and weights
    assert mine["syncs"] == theirs["syncs"] == list(range(10, steps + 1, 10))
    per_phase = h.train_freq if h.gradient_steps == -1 else h.gradient_steps
    trained = [k * h.train_freq for k in range(1, steps // h.train_freq + 1)
               if k * h.train_freq > h.learning_starts]
    assert [g for g, _ in mine["phases"]] == [g for g, _ in theirs["phases"]] \
        == [per_phase] * len(trained)
    for k, ((_, a), (_, b)) in enumerate(zip(mine["phases"], theirs["phases"])):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5,
                                       msg=lambda m, k=k, name=name: f"phase {k} {name}: {m}")
    assert not torch.allclose(mine["phases"][-1][1]["W0"], mine["phases"][0][1]["W0"])

    # and the episodes each records (the validation's AUC and final return come from these)
    assert mine["log"].episode_rows == theirs["log"].episode_rows
    assert mine["log"].updates == theirs["log"].updates == steps // h.train_freq


def _coins(settings):
    """``(step, coin)`` for every step from learning_starts on, as pgbench's acting stream."""
    rng = np.random.default_rng(np.random.SeedSequence(settings["seed"]).spawn(4)[2])
    for t in range(settings["total_steps"]):
        coin, _ = rng.random(), rng.integers(2)
        if t >= settings["learning_starts"]:
            yield t, coin
