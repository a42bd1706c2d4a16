"""Every seeded stream of pgbench starts here: a run's independent streams (network init, env
resets, action noise) and their torch Generators, and Generators keyed by a name (a claim row, a
report section, a check group) so that adding one changes no other's draws.
"""

from __future__ import annotations

import hashlib
import zlib

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads only where a Generator is made (2 s of start-up for the rest)
    import torch


def snapshot_streams(seed: int, snapshot: str) -> dict[str, np.random.SeedSequence]:
    """Independent streams of one snapshot's study, from the seed and the snapshot's *name*
    (not its position), so adding a snapshot changes no other snapshot's numbers."""
    root = np.random.SeedSequence([int(seed), 0x67726164, zlib.crc32(snapshot.encode())])
    names = ("pilot_env", "pilot_noise", "pool_env", "pool_noise", "ref_env", "ref_noise", "bootstrap")
    return dict(zip(names, root.spawn(len(names))))


def seed_sequences(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent streams of one seed: network init, env resets, action noise."""
    init, env, noise = np.random.SeedSequence(seed).spawn(3)
    return {"init": init, "env": env, "noise": noise}


def torch_generator(ss: np.random.SeedSequence) -> torch.Generator:
    """A torch Generator seeded from a SeedSequence (63 bits of its state)."""
    import torch

    return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))


def named_rng(seed: int, *names: str) -> np.random.Generator:
    """A Generator keyed by the user's seed and a name (a claims row's identity, a report
    section's suite and env, a check group's key), not by its position: adding a row, a section
    or a group changes no other one's draws."""
    digest = hashlib.sha256("\x1f".join(names).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])
