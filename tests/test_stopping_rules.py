"""The two rules of "solved" and when a run stops, on hand-made sequences of returns."""

import pytest

from pgbench.rl.config import make_config
from pgbench.runs.log import (
    LAST100_GRACE_EPISODES,
    LAST100_WINDOW,
    SeedLog,
    record_episode,
    stop_reason,
)


def feed(log, returns, length=10, threshold=195.0):
    for ret in returns:
        record_episode(log, float(ret), length, terminated=True, truncated=False,
                       threshold=threshold)


def test_last_100_rule_fires_at_the_100th_episode_whose_window_reaches_the_threshold():
    """99 returns of 200 and one of 100 (episode 0): the window of episodes 0..99 sums to
    99*200 + 100 = 19,900 >= 100*195 = 19,500, so the rule fires at episode 99 (the first with
    100 returns), after 100 episodes of 10 steps."""
    log = SeedLog(seed=0)
    feed(log, [100] + [200] * 98)
    assert log.solved_last100 is None  # 99 episodes: no window yet
    feed(log, [200])
    assert log.solved_last100 == {"update": 0, "episode": 99, "env_steps": 1000}


def test_last_100_rule_uses_only_the_last_100_returns():
    """Ten returns of 0, then returns of 199. A window of k zeros and 100-k returns of 199
    sums to 199*(100-k) >= 19,500 iff k <= 2. The window of episodes e-99..e holds 10-(e-99)
    zeros for e in 99..109, so the rule fires at e = 107, not before."""
    log = SeedLog(seed=0)
    feed(log, [0] * 10 + [199] * 97)
    assert log.solved_last100 is None  # e = 106: 3 zeros, 97*199 = 19,303
    feed(log, [199])
    assert log.solved_last100["episode"] == 107  # 2 zeros: 98*199 = 19,502


def test_running_reward_rule_fires_exactly_at_the_threshold():
    """From 10, one return of 10 + (t - 10)/0.05 brings the running reward to t exactly."""
    log = SeedLog(seed=0)
    feed(log, [10 + (20 - 10) / 0.05], threshold=20.0)  # = 210: 0.05*210 + 0.95*10 = 20
    assert log.running_reward == pytest.approx(20.0, rel=1e-12)
    assert log.solved == {"update": 0, "episode": 0, "env_steps": 10}
    log = SeedLog(seed=0)
    feed(log, [209.0], threshold=20.0)  # 19.95: not yet
    assert log.solved is None


def test_no_threshold_no_rule():
    log = SeedLog(seed=0)
    feed(log, [1000] * 100, threshold=None)
    assert log.solved is None and log.solved_last100 is None


def test_stop_reason_waits_for_the_last_100_rule_for_at_most_the_grace_episodes():
    cfg = make_config("rtg", {"stop_when_solved": True, "total_steps": 10**6})
    log = SeedLog(seed=0, episodes=50, env_steps=500)
    assert stop_reason(cfg, log) is None  # nothing fired, budget left
    log.solved = {"update": 7, "episode": 40, "env_steps": 400}
    log.episodes = 40 + LAST100_GRACE_EPISODES  # exactly the grace: go on
    assert stop_reason(cfg, log) is None
    log.episodes += 1  # one more than the grace: stop
    assert stop_reason(cfg, log) == "solved"
    log.episodes = 41
    log.solved_last100 = {"update": 7, "episode": 40, "env_steps": 400}
    assert stop_reason(cfg, log) == "solved"  # both rules fired: stop at once
    # without stop_when_solved the rules are recorded but only the budget stops a run
    assert stop_reason(make_config("rtg", {"total_steps": 10**6}), log) is None


def test_stop_reason_budget_is_reached_at_exactly_total_steps():
    cfg = make_config("rtg", {"total_steps": 1000})
    assert stop_reason(cfg, SeedLog(seed=0, env_steps=999)) is None
    assert stop_reason(cfg, SeedLog(seed=0, env_steps=1000)) == "budget"
    assert stop_reason(cfg, SeedLog(seed=0, env_steps=1001)) == "budget"
    solved = SeedLog(seed=0, env_steps=1000, solved_last100={"episode": 3})
    assert stop_reason(cfg, solved) == "budget"  # stop_when_solved off: the rules do not stop it
    assert LAST100_WINDOW == 100


def test_last_100_rule_fires_when_the_mean_equals_the_threshold():
    """100 returns of exactly 195: the sum 19,500 equals 100 * 195, which counts as solved."""
    log = SeedLog(seed=0)
    feed(log, [195] * 100)
    assert log.solved_last100 == {"update": 0, "episode": 99, "env_steps": 1000}


def test_running_reward_starts_from_the_first_return_where_10_is_past_the_threshold():
    """Acrobot-v1's threshold is -100: a running reward that starts at 10 (the PyTorch example's
    start, made for CartPole) would 'solve' it at the first episode. There the running reward
    starts from the first return: returns -500, -500 never reach -100, and the rule fires only
    once the returns have pulled it up. CartPole's threshold (475) keeps the start of 10."""
    log = SeedLog(seed=0)
    for _ in range(2):
        record_episode(log, -500.0, 500, False, True, threshold=-100.0)
    assert log.running_reward == -500.0 and log.solved is None
    # with returns of -60 the running reward climbs from -500 by 5% of the gap per episode:
    # after n episodes it is -60 - 440 * 0.95**n, which passes -100 first at n = 47
    for n in range(1, 60):
        record_episode(log, -60.0, 60, True, False, threshold=-100.0)
        if log.solved is not None:
            break
    assert n == 47 and log.solved["episode"] == 2 + 46
    cartpole = SeedLog(seed=0)
    record_episode(cartpole, 20.0, 20, True, False, threshold=475.0)
    assert cartpole.running_reward == 0.05 * 20.0 + 0.95 * 10.0
