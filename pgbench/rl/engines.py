"""What each training engine covers.

``engine=torch`` (the default) trains every config; ``engine=numba``, the compiled loop of
:mod:`pgbench.training.numba`, covers REINFORCE on CartPole with one hidden layer. A config it
does not cover is refused by name when the config is made (:meth:`pgbench.rl.config.TrainConfig.validate`),
before anything trains. The tuples' orders are the codes the compiled kernels read.
"""

from __future__ import annotations

from pgbench.core.errors import UserError

NUMBA_CARTPOLES = ("CartPole-v0", "CartPole-v1")


NUMBA_RETURNS = ("total", "rtg")  # codes 0, 1 in the kernels


NUMBA_BASELINES = ("none", "mean", "ema", "whiten")  # codes 0..3


NUMBA_ACTIVATIONS = ("relu", "tanh")  # codes 0, 1


def unsupported(cfg) -> list[str]:
    """What ``cfg`` asks for that ``engine=numba`` does not cover (empty if nothing)."""
    out = []
    if cfg.env_id not in NUMBA_CARTPOLES:
        out.append(f"env_id={cfg.env_id} (accepted: {', '.join(NUMBA_CARTPOLES)})")
    if cfg.loss != "pg":
        out.append(f"loss={cfg.loss} (accepted: pg)")
    if cfg.returns not in NUMBA_RETURNS:
        out.append(f"returns={cfg.returns} (accepted: {', '.join(NUMBA_RETURNS)})")
    if cfg.baseline not in NUMBA_BASELINES:
        out.append(f"baseline={cfg.baseline} (accepted: {', '.join(NUMBA_BASELINES)})")
    if cfg.episodes_per_update < 1:
        out.append(f"steps_per_update={cfg.steps_per_update} (accepted: whole episodes per "
                   "update, episodes_per_update >= 1)")
    elif cfg.num_envs not in (0, cfg.episodes_per_update):
        out.append(f"num_envs={cfg.num_envs} (accepted: 0 or {cfg.episodes_per_update}, the "
                   "episodes per update)")
    if len(cfg.hidden) != 1:
        out.append(f"hidden={','.join(map(str, cfg.hidden))} (accepted: one hidden layer)")
    if cfg.entropy_coef != 0:
        out.append(f"entropy_coef={cfg.entropy_coef} (accepted: 0)")
    if cfg.update_epochs != 1:
        out.append(f"update_epochs={cfg.update_epochs} (accepted: 1)")
    return out


def check_supported(cfg) -> None:
    """Raise UserError if ``cfg`` has ``engine=numba`` and asks for what it does not cover."""
    if cfg.engine == "numba" and (bad := unsupported(cfg)):
        raise UserError("engine=numba does not cover " + "; ".join(bad)
                        + ". Use engine=torch (the default) for this config.")
