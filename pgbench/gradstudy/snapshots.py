"""Policy snapshots to study (init, and the points where training reached a share of the
threshold), the random streams of each, and the episode pools collected at them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pgbench.core.errors import UserError
from pgbench.gradstudy.terms import collect_pool
from pgbench.training.rollout import Batch


# --------------------------------------------------------------------------- snapshots
@dataclass(frozen=True)
class Snapshot:
    """Policy parameters frozen at one point of the training run, and where that point was."""

    name: str
    params: dict[str, torch.Tensor]  # stacked, one seed: (1, ...)
    update: int  # updates done before the snapshot
    env_steps: int
    running_reward: float


class _AllSnapshotsTaken(Exception):
    """Raised from the trainer's progress callback to end training early."""


def parse_snapshots(text: str, threshold: float | None) -> dict[str, float | None]:
    """``"init,q25,q75"`` -> ``{"init": None, "q25": 0.25, "q75": 0.75}`` (fraction of threshold).

    ``qNN`` (NN in 1..99) is the first update after which the running reward reaches NN% of the
    env's reward threshold. UserError on anything else, or on ``qNN`` for an env without one.
    """
    out: dict[str, float | None] = {}
    for name in (s.strip() for s in text.split(",")):
        if name == "init":
            out[name] = None
            continue
        digits = name[1:]
        if not (name.startswith("q") and digits.isdigit() and 1 <= int(digits) <= 99
                and digits == str(int(digits))):
            raise UserError(f"unknown snapshot {name!r}; accepted: init, or qNN with NN in 1..99 "
                            "(running reward first at NN% of the reward threshold), e.g. init,q25,q75")
        if threshold is None:
            raise UserError(f"snapshot {name!r} needs the env's reward threshold, which it does not "
                            "have; accepted: --snapshots init")
        out[name] = int(digits) / 100
    if len(out) != len(text.split(",")):
        raise UserError(f"repeated snapshot in --snapshots {text!r}; give each once")
    return out


def _frozen(params) -> dict[str, torch.Tensor]:
    """A copy of the trainer's parameters that its later updates do not touch."""
    return {k: v.detach().clone() for k, v in params.items()}


def take_snapshots(cfg, seed: int, wanted: dict[str, float | None]) -> tuple[dict[str, Snapshot], dict]:
    """Train ``cfg`` with pgbench's trainer and freeze the policy at each wanted snapshot.

    Training stops as soon as every snapshot is taken (or at ``cfg.total_steps``). Returns the
    snapshots reached, in training order, and what the run did (for gradstudy.json).
    """
    from pgbench.training.group import GroupTrainer

    trainer = GroupTrainer(cfg, [seed])
    taken = {}
    if "init" in wanted:
        taken["init"] = Snapshot("init", _frozen(trainer.params), 0, 0, trainer.logs[0].running_reward)
    pending = sorted((q, name) for name, q in wanted.items() if q is not None)

    def progress(t) -> None:
        log = t.logs[0]
        while pending and log.running_reward >= pending[0][0] * t.threshold:
            _, name = pending.pop(0)
            taken[name] = Snapshot(name, _frozen(t.params), log.updates, log.env_steps,
                                   log.running_reward)
        if not pending:
            raise _AllSnapshotsTaken

    if pending:
        try:
            trainer.run(progress=progress)  # closes its vector env however it ends
        except _AllSnapshotsTaken:
            pass
    log = trainer.logs[0]
    info = {"updates": log.updates, "env_steps": log.env_steps, "episodes": log.episodes,
            "running_reward": log.running_reward, "threshold": trainer.threshold,
            "missing": [name for _, name in pending]}
    return taken, info


def _collector(env_id, spec, streams, prefix, envs_per_round):
    from pgbench.training.rollout import Collector

    return Collector(env_id, spec, envs_per_round,
                          {"env": [streams[f"{prefix}_env"]], "noise": [streams[f"{prefix}_noise"]]})


def _collect(env_id, spec, params, streams, prefix, n_episodes, envs_per_round) -> Batch:
    collector = _collector(env_id, spec, streams, prefix, min(envs_per_round, n_episodes))
    try:
        return collect_pool(collector, params, n_episodes)
    finally:
        collector.close()


def pool_sizes(mean_length: float, batches: int, reference_batches: int, k_max: int,
               max_steps: int) -> tuple[int, int]:
    """Batches (of ``k_max`` episodes) in the pool and in the reference pool.

    ``max_steps`` caps the expected env steps of both pools together (0: no cap); when it binds,
    both shrink in proportion, never below 2 batches. The expected length comes from a separate
    pilot, so the pool's size does not depend on its own episodes (a size chosen from them would
    be a stopping rule, which biases means at O(1/N)).

    >>> pool_sizes(100.0, 64, 128, 16, 0), pool_sizes(100.0, 64, 128, 16, 96_000)
    ((64, 128), (20, 40))
    """
    if max_steps <= 0:
        return batches, reference_batches
    affordable = max_steps / (max(mean_length, 1.0) * k_max)  # batches of both pools together
    scale = min(1.0, affordable / (batches + reference_batches))
    return (max(2, int(batches * scale)), max(2, int(reference_batches * scale)))
