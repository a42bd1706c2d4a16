"""Tabular Q-learning exactly as the slides write it, and the exact optimal Q to check it against.

Source 001 (``shared/sources/001_784bf18d2f77e7fb.txt``), "Basic Q-learning algorithm", verbatim::

    Initialize $Q(s, a)$ for all s, a .
    Get initial state s
    Repeat until convergence
     Sample action a , get next state s'
     If s' is terminal:
     target = $R(s, a, s')$
     Sample new initial state s'
     else:
     target = $R(s, a, s') + \\gamma \\max_{a'} Q(s', a')$
    $Q(s, a) \\leftarrow (1 - \\alpha)Q(s, a) + \\alpha \\cdot \\text{target}$
    $s \\leftarrow s'$

The slides' environment has no time limit. Gymnasium's toy-text envs do (FrozenLake-v1: 100
steps); a state reached when the time limit cuts an episode is *not* terminal, so its target
bootstraps as in the ``else`` branch, and then a new initial state is sampled (the same trap as
for DQN and critics: truncation is not termination).

"Sample action a" leaves the behaviour policy open; Q-learning is off-policy, so any policy that
tries every action in every reachable state converges. :func:`train_q_learning` uses
epsilon-greedy on the current Q (epsilon = 1: uniformly random actions).

Shapes: ``Q`` is ``(S, A)`` float64; the tabular model of an env (:func:`tabular_model`) is
``P (S, A, S)`` transition probabilities, ``R (S, A, S)`` rewards, ``done (S, A, S)`` whether
reaching ``s'`` by ``(s, a)`` ends the episode (terminal).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from pgbench.core.errors import UserError


def q_learning_target(reward: float, next_q: np.ndarray, terminal: bool, gamma: float) -> float:
    """The slides' target: ``R`` if ``s'`` is terminal, else ``R + gamma * max_a' Q(s', a')``.

    ``next_q`` is ``Q(s', .)`` ``(A,)``. A time-limit cut is not terminal: pass ``terminal=False``.
    """
    if terminal:
        return float(reward)
    return float(reward) + gamma * float(np.max(next_q))


def q_learning_update(q: np.ndarray, s: int, a: int, target: float, alpha: float) -> None:
    """``Q(s, a) <- (1 - alpha) Q(s, a) + alpha * target``, in place on ``q (S, A)``."""
    q[s, a] = (1.0 - alpha) * q[s, a] + alpha * target


@dataclass(frozen=True)
class TabularModel:
    """An env's exact dynamics: ``P, R, done`` all ``(S, A, S)`` (see the module docstring)."""

    P: np.ndarray
    R: np.ndarray
    done: np.ndarray


def tabular_model(env: gym.Env) -> TabularModel:
    """The dynamics a Gymnasium toy-text env (FrozenLake, CliffWalking, Taxi) lists in ``env.P``
    (``P[s][a] = [(prob, s', reward, terminated), ...]``), as arrays."""
    table = getattr(env.unwrapped, "P", None)
    if not isinstance(table, dict):
        raise UserError(f"env {env.spec.id if env.spec else env!r} lists no transition table P; "
                        "accepted: Gymnasium's toy-text envs (FrozenLake-v1, CliffWalking-v1, Taxi-v3)")
    S, A = env.observation_space.n, env.action_space.n
    P, R, done = np.zeros((S, A, S)), np.zeros((S, A, S)), np.zeros((S, A, S), dtype=bool)
    for s in range(S):
        for a in range(A):
            for prob, s2, reward, terminated in table[s][a]:
                P[s, a, s2] += prob
                R[s, a, s2] = reward  # toy-text rewards depend on (s, a, s') only
                done[s, a, s2] = terminated
    return TabularModel(P, R, done)


def optimal_q(model: TabularModel, gamma: float, tol: float = 1e-13) -> np.ndarray:
    """``Q* (S, A)`` by value iteration on the Bellman optimality equation
    ``Q(s, a) = sum_s' P(s'|s, a) [R(s, a, s') + gamma (1 - done) max_a' Q(s', a')]``,
    iterated until no entry moves by more than ``tol`` (a gamma-contraction, so for gamma < 1 the
    error left is at most ``tol * gamma / (1 - gamma)``)."""
    if not 0.0 <= gamma < 1.0:
        raise UserError(f"bad value gamma={gamma!r}; accepted: a number in [0, 1) for value iteration")
    S, A, _ = model.P.shape
    q = np.zeros((S, A))
    for _ in range(100_000):
        v = q.max(axis=1)
        new = np.einsum("sat,sat->sa", model.P, model.R + gamma * (~model.done) * v[None, None, :])
        if np.max(np.abs(new - q)) <= tol:
            return new
        q = new
    raise RuntimeError("value iteration did not converge in 100000 sweeps")


def train_q_learning(env: gym.Env, steps: int, alpha: float, gamma: float, epsilon: float,
                     seed: int) -> np.ndarray:
    """Run the slides' loop for ``steps`` env steps; return ``Q (S, A)`` (initialised to 0).

    Randomness: one ``numpy`` generator from ``SeedSequence(seed)`` draws the behaviour policy's
    coin flips and actions (ties of the greedy action go to the lowest index) and the seed of every
    env reset, so a seed gives the same Q on any machine.
    """
    for name, value, ok in (("alpha", alpha, 0 < alpha <= 1), ("gamma", gamma, 0 <= gamma <= 1),
                            ("epsilon", epsilon, 0 <= epsilon <= 1), ("steps", steps, steps > 0)):
        if not ok:
            raise UserError(f"bad value {name}={value!r}; accepted: alpha in (0, 1], gamma and "
                            "epsilon in [0, 1], steps > 0")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n_actions = env.action_space.n
    q = np.zeros((env.observation_space.n, n_actions))
    s, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
    for _ in range(steps):
        if rng.random() < epsilon:
            a = int(rng.integers(n_actions))
        else:
            a = int(np.argmax(q[s]))
        s2, reward, terminated, truncated, _ = env.step(a)
        q_learning_update(q, s, a, q_learning_target(reward, q[s2], terminated, gamma), alpha)
        if terminated or truncated:  # "Sample new initial state s'"
            s2, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        s = s2
    return q
