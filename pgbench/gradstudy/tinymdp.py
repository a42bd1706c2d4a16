"""Small tabular MDPs whose every trajectory can be listed: the exact gradient study's ground truth.

A :class:`TabularMDP` has a fixed horizon H (every episode lasts exactly H steps: no early end,
no time limit), an initial-state distribution, transition probabilities ``P[s, a, s']`` and a
deterministic reward ``r[s, a]``. The policy is pgbench's own MLP policy with no hidden layer
(``PolicySpec(hidden=())``) fed the one-hot state: ``logits(s) = W0[s] + b0``, a tabular softmax
with the trainer's parameter layout, so the gradient study's code (``torch.func`` per-episode
gradients, the estimators) runs on it unchanged.

With S states, A actions and horizon H there are ``S * (A * S)^(H-1) * A`` trajectories (the state
after the last action is not part of the episode): 256 for the shipped two-state chain.

Shapes: params are the stacked one-seed policy dict ``{"pi.W0": (1, S, A), "pi.b0": (1, 1, A)}``;
a flat gradient ``(P,)`` is in :func:`pgbench.gradstudy.terms.parameter_layout` order (names sorted).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from pgbench.core.errors import choice_error
from pgbench.rl.policies import PolicySpec, init_policy, policy_output
from pgbench.training.rollout import Batch


@dataclass(frozen=True)
class TabularMDP:
    """A finite-horizon MDP. initial ``(S,)``; transition ``(S, A, S)``; reward ``(S, A)``."""

    name: str
    initial: tuple[float, ...]
    transition: tuple  # nested (S, A, S) probabilities
    reward: tuple  # nested (S, A)
    horizon: int
    description: str = ""

    @property
    def n_states(self) -> int:
        return len(self.initial)

    @property
    def n_actions(self) -> int:
        return len(self.reward[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(initial ``(S,)``, transition ``(S, A, S)``, reward ``(S, A)``) as float64 arrays."""
        return (np.asarray(self.initial, float), np.asarray(self.transition, float),
                np.asarray(self.reward, float))

    def policy_spec(self) -> PolicySpec:
        """The tabular softmax policy: pgbench's MLP with no hidden layer on the one-hot state."""
        return PolicySpec(obs_dim=self.n_states, act_dim=self.n_actions, discrete=True, hidden=())

    def policy_params(self, seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
        """The studied policy: pgbench's initialisation from ``seed`` (logits times ``scale``)."""
        params = init_policy(self.policy_spec(), [torch.Generator().manual_seed(int(seed))])
        return {k: v * scale for k, v in params.items()}


#: The MDPs ``pgbench gradstudy --exact --env NAME`` accepts.
TINY_MDPS: dict[str, TabularMDP] = {
    "TwoStateChain": TabularMDP(
        name="TwoStateChain",
        initial=(1.0, 0.0),
        # action 0 "stay left" leads to state 0 with probability 0.8, action 1 "go right" leads
        # to state 1 with probability 0.8
        transition=(((0.8, 0.2), (0.2, 0.8)), ((0.8, 0.2), (0.2, 0.8))),
        # state 1 pays 1; going right costs 0.1: rewards now and later pull apart, so
        # reward-to-go, time baselines and whole-episode returns differ
        reward=((0.0, -0.1), (1.0, 0.9)),
        horizon=4,
        description="two states, two actions, 4 steps; state 1 pays 1, going right costs 0.1",
    ),
}


def get_mdp(name: str) -> TabularMDP:
    if name not in TINY_MDPS:
        raise choice_error("exact-study MDP (--env with --exact)", name, TINY_MDPS)
    return TINY_MDPS[name]


def action_probabilities(mdp: TabularMDP, params) -> np.ndarray:
    """``pi[s, a]`` ``(S, A)`` float64, from the policy's own forward pass on each one-hot state."""
    eye = torch.eye(mdp.n_states, dtype=params["pi.W0"].dtype).unsqueeze(0)
    with torch.no_grad():
        logits = policy_output(params, eye, mdp.policy_spec())[0].double()
    return torch.softmax(logits, -1).numpy()


def _as_batch(mdp: TabularMDP, states: np.ndarray, actions: np.ndarray) -> Batch:
    """One-seed :class:`Batch` of full-horizon episodes ``states, actions (E, H)``."""
    S, reward = mdp.n_states, mdp.arrays()[2]
    E, H = states.shape
    obs = torch.nn.functional.one_hot(torch.from_numpy(states), S).float()
    return Batch(
        obs=obs.unsqueeze(0), actions=torch.from_numpy(actions).long().unsqueeze(0),
        rewards=reward[states, actions][None], mask=np.ones((1, E, H), dtype=bool),
        terminated=np.ones((1, E), dtype=bool), truncated=np.zeros((1, E), dtype=bool),
        lengths=np.full((1, E), H), final_obs=torch.zeros(1, E, S), dropout_masks=None,
    )


def enumerate_trajectories(mdp: TabularMDP, params) -> tuple[Batch, np.ndarray]:
    """Every trajectory as one pool ``(Batch with E = N, p (N,))``; ``p`` sums to 1.

    Trajectories of probability 0 (an impossible start or transition) are left out.
    """
    initial, transition, _ = mdp.arrays()
    pi = action_probabilities(mdp, params)
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    states, actions, probs = [], [], []
    for s_seq in itertools.product(range(S), repeat=H):
        for a_seq in itertools.product(range(A), repeat=H):
            p = initial[s_seq[0]]
            for t in range(H):
                p *= pi[s_seq[t], a_seq[t]]
                if t + 1 < H:
                    p *= transition[s_seq[t], a_seq[t], s_seq[t + 1]]
            if p > 0:
                states.append(s_seq)
                actions.append(a_seq)
                probs.append(p)
    return _as_batch(mdp, np.array(states), np.array(actions)), np.array(probs)


def sample_episodes(mdp: TabularMDP, params, n_episodes: int, rng: np.random.Generator) -> Batch:
    """``n_episodes`` independent episodes of the policy, drawn with ``rng`` (vectorised)."""
    initial, transition, _ = mdp.arrays()
    pi = action_probabilities(mdp, params)
    H = mdp.horizon
    states = np.empty((n_episodes, H), dtype=np.int64)
    actions = np.empty((n_episodes, H), dtype=np.int64)

    def draw(p_rows):  # one categorical draw per row of probabilities (n, k)
        u = rng.random(p_rows.shape[0])[:, None]
        return np.minimum((u >= p_rows.cumsum(-1)).sum(-1), p_rows.shape[-1] - 1)

    s = draw(np.broadcast_to(initial, (n_episodes, len(initial))))
    for t in range(H):
        a = draw(pi[s])
        states[:, t], actions[:, t] = s, a
        if t + 1 < H:
            s = draw(transition[s, a])
    return _as_batch(mdp, states, actions)


def exact_policy_gradient(mdp: TabularMDP, params, gamma: float = 1.0) -> np.ndarray:
    """``grad J`` ``(P,)`` by the policy-gradient theorem, with no trajectory listed.

    Dynamic programming: state distributions ``d_t`` forward, action values ``Q_t(s, a)``
    backward; then ``grad J = sum_t gamma^t sum_s d_t(s) sum_a pi(a|s) Q_t(s, a) grad log pi(a|s)``
    with the softmax's own derivative ``d log pi(a|s) / d logits(s) = e_a - pi(s)``:
    ``d/dW0[s, :]`` collects state s's terms, ``d/db0`` all states'. J is the expected
    (discounted) sum of the H rewards.
    """
    initial, transition, reward = mdp.arrays()
    pi = action_probabilities(mdp, params)
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    d = [initial]
    for _ in range(H - 1):
        d.append(np.einsum("s,sa,sat->t", d[-1], pi, transition))
    q = [None] * H
    v_next = np.zeros(S)
    for t in reversed(range(H)):
        q[t] = reward + gamma * transition @ v_next
        v_next = (pi * q[t]).sum(-1)
    grad_logits = np.zeros((S, A))  # d J / d logits(s)
    for t in range(H):
        adv = q[t] - (pi * q[t]).sum(-1, keepdims=True)
        grad_logits += gamma ** t * d[t][:, None] * pi * adv
    grads = {"pi.W0": grad_logits, "pi.b0": grad_logits.sum(0)}  # logits(s) = W0[s] + b0
    return np.concatenate([grads[k].reshape(-1) for k in sorted(grads)])


def exact_return(mdp: TabularMDP, params, gamma: float = 1.0) -> float:
    """``J``: the expected (discounted) return, by the same dynamic programming."""
    initial, transition, reward = mdp.arrays()
    pi = action_probabilities(mdp, params)
    v = np.zeros(mdp.n_states)
    for _ in range(mdp.horizon):
        v = (pi * (reward + gamma * transition @ v)).sum(-1)
    return float(initial @ v)
