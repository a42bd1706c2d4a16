"""Where the compiled loop's time goes, phase by phase, on inputs recorded from a run.

For one slides arm without dropout and one with (dropout 0.6: 129 uniforms per step), the
script plays the run's first ``--steps`` env steps round by round with the compiled kernels
(as :func:`pgbench.training.numba.loop.train_rounds` does, one episode per update), and keeps
each episode's inputs: reset seed, weights and Adam state before the episode, uniforms,
observations, dropout masks, activations, logits. Then it times each phase alone, replaying
every recorded episode in a compiled loop: the reset (SeedSequence -> PCG64 -> 4 uniforms),
the noise (MT19937 in the chunks the loop draws), the rollout kernel as a whole (checked to
replay the recorded episode lengths) and its parts (the dropout mask, the hidden layer, the two
logits' sums, the softmax's exp, the CartPole step), and the update's parts (advantages, the
float64 gradient, Adam). Beside them, the whole loop (:class:`NumbaRun`) on the same config.
Every number is CPU time of this process per env step (the median of ``--repeats``). With
``--against CHECKOUT``, that checkout's kernels and streams are timed too, in the same process,
the two versions taking turns (the whole loop is this tree's only)::

    python benchmarks/compiled_phases.py --steps 30000 --repeats 5 [--against /path/to/old]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

import pgbench  # noqa: F401  (first: pins the CPU dispatch before torch and NumPy load)

sys.path.insert(0, str(Path(__file__).parent))
from engines import cpu_model
from slides_arms import slides_configs

from pgbench.training.numba import kernels as K
from pgbench.training.numba import streams as S
from pgbench.training.numba import update as UP
from pgbench.training.numba.engine import NumbaRun
from pgbench.training.rollout import FIRST_NOISE_CHUNK

jit = numba.njit(nogil=True)


def record(cfg, steps, collapse):
    """Play ``cfg``'s first ``steps`` env steps as the compiled loop does (n = 1); returns the
    run and a dict of per-episode arrays (concatenated over episodes, ``start`` offsets)."""
    run = NumbaRun(cfg)
    if collapse:
        run.b1[:] = (20.0, -20.0)
    S.check_streams()
    mt = np.empty(S.MT_N + 1, np.uint32)
    S.mt_seed(run.noise_gen.initial_seed(), mt)
    U, T = run.uniforms, run.T
    u = np.empty(T * U, np.float32)
    keep = {k: [] for k in ("seed", "flat", "m", "v", "u", "obs", "actions", "drop", "z", "h",
                            "logits", "length")}
    done, upd = 0, 0
    seeds = run.reset_rng.integers(0, 2**31 - 1, size=steps)
    while done < steps:
        keep["seed"].append(seeds[upd])
        for k in ("flat", "m", "v"):
            keep[k].append(getattr(run, k).copy())
        S.reset_state(seeds[upd], -0.05, 0.1, run.state[0])
        run.steps[:], run.alive[:] = 0, True
        t, live, drawn = 0, True, 0
        while live:
            t_end = min(max(2 * t, FIRST_NOISE_CHUNK), T)
            chunk = u[drawn:drawn + (t_end - t) * U]
            S.mt_uniform_float32(mt, chunk)
            drawn += chunk.shape[0]
            t, live = K.rollout(run.W0, run.b0, run.W1, run.b1, run.act, run.state, run.steps,
                                run.alive, t, t_end, chunk.reshape((t_end - t, 1, U)), run.keep,
                                run.scale, run.obs, run.actions, run.drop, run.z, run.h,
                                run.logits, run.lengths, run.terminated, run.truncated,
                                run.phys, run.euler, T)
        L = int(run.lengths[0])
        keep["u"].append(u[:drawn].copy())
        for k in ("obs", "actions", "z", "h", "logits"):
            keep[k].append(getattr(run, k)[0, :L].copy())
        keep["drop"].append(run.drop[0, :L].copy() if run.use_drop else run.drop[0, :1].copy())
        keep["length"].append(L)
        UP.learn(run.flat, run.m, run.v, run.grad, run.W1, run.act, run.obs, run.actions,
                run.drop, run.use_drop, run.z, run.h, run.logits, run.lengths, run.returns,
                run.baseline, run.cfg.gamma, np.nan, run.cfg.ema_weight,
                run.cfg.normalize_advantages, float(upd + 1), run.cfg.lr, run.work)
        done += L
        upd += 1
    rec = {k: np.array(v) if k in ("seed", "length") else np.stack(v) if k in ("flat", "m", "v")
           else np.concatenate(v) for k, v in keep.items()}
    rec["start"] = np.concatenate([[0], np.cumsum(rec["length"])])
    rec["ustart"] = np.concatenate([[0], np.cumsum([len(x) for x in keep["u"]])])
    return run, rec


@jit
def time_mask(u, ustart, start, U, keep, scale, row):
    for e in range(start.shape[0] - 1):
        for t in range(start[e + 1] - start[e]):
            base = ustart[e] + t * U + 1  # as the rollout kernel: on row views
            draws = u[base:base + row.shape[0]]
            for j in range(row.shape[0]):
                row[j] = scale if draws[j] < keep else np.float32(0.0)



def harnesses(K, S, U):
    """The phase timers, compiled against the kernels ``K``, streams ``S`` and update kernels
    ``U`` (this tree's, or another checkout's, loaded by :func:`load_version`); returns them by
    name."""
    reset_state, mt_uniform_float32, rollout = S.reset_state, S.mt_uniform_float32, K.rollout
    hidden_layer, logits_of, softmax, cartpole_step = (K.hidden_layer, K.logits_of, K.softmax,
                                                       K.cartpole_step)
    advantages, gradient, adam = U.advantages, U.gradient, U.adam

    @jit
    def time_reset(seeds, out):
        for s in seeds:
            reset_state(s, -0.05, 0.1, out)


    @jit
    def time_noise(mt, lengths, U, T, buf):
        for L in lengths:
            t = 0
            while t < L:
                t_end = min(max(2 * t, FIRST_NOISE_CHUNK), T)
                mt_uniform_float32(mt, buf[:(t_end - t) * U])
                t = t_end


    @jit
    def time_rollout(flat_all, seeds, u, ustart, lengths, flat, W0, b0, W1, b1, act, state, steps,
                     alive, keep, scale, obs, actions, drop, z, h, logits, out_len, term, trunc,
                     phys, euler, T, U):
        """Replays each episode's rollout; returns how many lengths differ from the recorded."""
        wrong = 0
        for e in range(lengths.shape[0]):
            flat[:] = flat_all[e]
            reset_state(seeds[e], -0.05, 0.1, state[0])
            steps[0], alive[0] = 0, True
            t, live, drawn = 0, True, ustart[e]
            while live:
                t_end = min(max(2 * t, FIRST_NOISE_CHUNK), T)
                chunk = u[drawn:drawn + (t_end - t) * U]
                drawn += (t_end - t) * U
                t, live = rollout(W0, b0, W1, b1, act, state, steps, alive, t, t_end,
                                    chunk.reshape((t_end - t, 1, U)), keep, scale, obs, actions,
                                    drop, z, h, logits, out_len, term, trunc, phys, euler, T)
            wrong += out_len[0] != lengths[e]
        return wrong


    @jit
    def time_forward_in_place(part, flat_all, start, obs, drop, h, logits, act, use_drop, D, H,
                              A, z1, h1, out, p, s, phys, euler, actions):
        """As :func:`time_forward`, for kernels that index ``(i, t)`` in place (the steps as
        ``t`` of one row ``i = 0``: 3-d arrays of one row)."""
        for e in range(start.shape[0] - 1):
            f = flat_all[e]
            W0, b0 = f[:D * H].reshape((D, H)), f[D * H:D * H + H]
            W1, b1 = f[D * H + H:D * H + H + H * A].reshape((H, A)), f[D * H + H + H * A:]
            for k in range(start[e], start[e + 1]):
                if part == 0:
                    hidden_layer(W0, b0, obs, act, drop, use_drop, z1, h1, 0, k)
                elif part == 1:
                    logits_of(W1, b1, h, out, 0, k)
                elif part == 2:
                    softmax(logits, 0, k, p)
                else:
                    for q in range(4):
                        s[0, q] = np.float64(obs[0, k, q])
                    cartpole_step(s, 0, actions[k], phys, euler)


    @jit
    def time_forward(part, flat_all, start, obs, drop, h, logits, act, use_drop, D, H, A, z1, h1,
                     out, p, s, phys, euler, actions):
        """``part`` 0: hidden layer, 1: the two logits, 2: softmax, 3: CartPole step (kernels
        on row views, before they indexed in place)."""
        for e in range(start.shape[0] - 1):
            f = flat_all[e]
            W0, b0 = f[:D * H].reshape((D, H)), f[D * H:D * H + H]
            W1, b1 = f[D * H + H:D * H + H + H * A].reshape((H, A)), f[D * H + H + H * A:]
            for k in range(start[e], start[e + 1]):
                if part == 0:
                    hidden_layer(W0, b0, obs[k], act, drop[k if use_drop else e], use_drop, z1, h1)
                elif part == 1:
                    logits_of(W1, b1, h[k], out)
                elif part == 2:
                    softmax(logits[k], p)
                else:
                    for q in range(4):
                        s[q] = np.float64(obs[k, q])
                    cartpole_step(s, actions[k], phys, euler)


    @jit
    def time_update(part, flat_all, start, lengths, obs, actions, drop, use_drop, z, h, logits, act,
                    returns, baseline, gamma, ema_weight, normalize, D, H, A, grad, flat, m, v):
        """``part`` 0: advantages, 1: advantages + gradient, 2: Adam."""
        n_len = np.zeros(1, np.int64)
        for e in range(lengths.shape[0]):
            L, a, b = lengths[e], start[e], start[e + 1]
            n_len[0] = L
            if part == 2:
                adam(flat, m, v, grad, np.float32(0.1), np.float32(0.999), np.float32(0.001),
                       np.float32(0.5), np.float32(-0.01), np.float32(1e-8))
                continue
            adv, _ = advantages(n_len, returns, baseline, gamma, np.nan, ema_weight, normalize)
            if part == 1:
                f = flat_all[e]
                W1 = f[D * H + H:D * H + H + H * A].reshape((H, A))
                dr = drop[a:b].reshape((1, L, H)) if use_drop else drop[e:e + 1].reshape((1, 1, H))
                gradient(W1, act, obs[a:b].reshape((1, L, D)), actions[a:b].reshape((1, L)), dr,
                           use_drop, z[a:b].reshape((1, L, H)), h[a:b].reshape((1, L, H)),
                           logits[a:b].reshape((1, L, A)), n_len, adv, grad)

    in_place = "t" in inspect.signature(hidden_layer.py_func).parameters
    return {"reset": time_reset, "noise": time_noise, "rollout": time_rollout,
            "forward": time_forward_in_place if in_place else time_forward,
            "forward_in_place": in_place, "update": time_update}


def load_version(root):
    """This tree's kernels and streams, or those of the checkout at ``root`` (as modules of
    their own, so both versions are timed in one process)."""
    if root is None:
        return harnesses(K, S, UP)
    here = Path(root) / "pgbench" / "training" / "numba"
    mods = {}
    for name in ("kernels", "streams", "update"):  # (older checkouts: the update in kernels.py)
        if not (here / f"{name}.py").exists():
            mods[name] = mods["kernels"]
            continue
        spec = importlib.util.spec_from_file_location(f"other_{name}", here / f"{name}.py")
        mods[name] = importlib.util.module_from_spec(spec)
        # the other checkout's update imports from its own kernels, not this tree's
        saved = sys.modules.get("pgbench.training.numba.kernels")
        sys.modules["pgbench.training.numba.kernels"] = mods["kernels"]
        try:
            spec.loader.exec_module(mods[name])
        finally:
            sys.modules["pgbench.training.numba.kernels"] = saved
    return harnesses(mods["kernels"], mods["streams"], mods["update"])


def cpu(name, versions, *args, repeats=5, shapes=None):
    """{version: median CPU seconds of its timer ``name`` on ``args``}, the versions taking
    turns on each repeat (after one call each, which compiles). ``shapes(in_place, args)``
    gives a version its own arguments."""
    own = {v: shapes(timers["forward_in_place"], args) if shapes else args
           for v, timers in versions.items()}
    for v, timers in versions.items():
        timers[name](*own[v])
    spent = {v: [] for v in versions}
    for r in range(repeats):
        for v in (list(versions) if r % 2 == 0 else list(versions)[::-1]):
            t = time.process_time()
            versions[v][name](*own[v])
            spent[v].append(time.process_time() - t)
    return {v: statistics.median(x) for v, x in spent.items()}


def forward_shapes(in_place, args):
    """The forward timers' arguments for kernels on row views, or indexing ``(0, t)`` in place
    (the steps' arrays as one row of 3-d arrays, full-size outputs, a 2-d state)."""
    if not in_place:
        return args
    (part, f, start, obs, drop, h, lg, act, use_drop, D, H, A, _, _, _, p, _, phys, euler,
     actions) = args
    N = obs.shape[0]
    return (part, f, start, obs.reshape(1, N, D), drop.reshape(1, -1, H), h.reshape(1, N, H),
            lg.reshape(1, N, A), act, use_drop, D, H, A, np.empty((1, N, H), np.float32),
            np.empty((1, N, H), np.float32), np.empty((1, N, A), np.float32), p,
            np.empty((1, 4)), phys, euler, actions)


def profile(cfg, steps, collapse, repeats, versions):
    """{phase: {version: CPU-us per env step}} of ``cfg`` on its recorded episodes."""
    run, rec = record(cfg, steps, collapse)
    n_steps, n_ep = int(rec["length"].sum()), len(rec["length"])
    D, H, A = run.obs.shape[2], run.b0.shape[0], run.b1.shape[0]
    U, T = run.uniforms, run.T
    f, obs, drop, h, lg = rec["flat"], rec["obs"], rec["drop"], rec["h"], rec["logits"]
    z1, h1, out, p, s = (np.empty(H, np.float32), np.empty(H, np.float32),
                         np.empty(A, np.float32), np.empty(A, np.float32), np.empty(4))
    mt = np.empty(S.MT_N + 1, np.uint32)
    S.mt_seed(1, mt)
    rows = {}
    rows["reset (SeedSequence, PCG64)"] = cpu("reset", versions, rec["seed"], s, repeats=repeats)
    rows["noise (MT19937 chunks)"] = cpu("noise", versions, mt, rec["length"], U, T,
                                         np.empty(T * U, np.float32), repeats=repeats)
    args = (f, rec["seed"], rec["u"], rec["ustart"], rec["length"], run.flat, run.W0, run.b0,
            run.W1, run.b1, run.act, run.state, run.steps, run.alive, run.keep, run.scale,
            run.obs, run.actions, run.drop, run.z, run.h, run.logits, run.lengths,
            run.terminated, run.truncated, run.phys, run.euler, T, U)
    for timers in versions.values():
        assert timers["rollout"](*args) == 0, "a replayed rollout differs from the recorded one"
    rows["rollout kernel, all of it"] = cpu("rollout", versions, *args, repeats=repeats)
    if run.use_drop:
        mask = {"mask": time_mask}
        rows["  dropout mask from uniforms (this tree's code)"] = cpu(
            "mask", {"this tree": mask}, rec["u"], rec["ustart"], rec["start"], U, run.keep,
            run.scale, h1, repeats=repeats)
    for part, name in enumerate(("  hidden layer (4x128, relu, mask)",
                                 "  two logits (128-term sums)",
                                 "  softmax (exp)", "  CartPole step")):
        rows[name] = cpu("forward", versions, part, f, rec["start"], obs, drop, h, lg, run.act,
                         run.use_drop, D, H, A, z1, h1, out, p, s, run.phys, run.euler,
                         rec["actions"], repeats=repeats, shapes=forward_shapes)
    upd = (f, rec["start"], rec["length"], obs, rec["actions"], drop, run.use_drop, rec["z"], h,
           lg, run.act, run.returns, run.baseline, cfg.gamma, cfg.ema_weight,
           cfg.normalize_advantages, D, H, A, run.grad, f[-1].copy(), rec["m"][-1].copy(),
           rec["v"][-1].copy())
    adv = cpu("update", versions, 0, *upd, repeats=repeats)
    rows["update: advantages"] = adv
    grad = cpu("update", versions, 1, *upd, repeats=repeats)
    rows["update: gradient"] = {v: grad[v] - adv[v] for v in versions}
    rows["update: Adam (898 weights)"] = cpu("update", versions, 2, *upd, repeats=repeats)
    whole = []
    for k in range(1 + repeats):  # the first one loads the loop for this config, untimed
        r = NumbaRun(cfg)
        if collapse:
            r.b1[:] = (20.0, -20.0)
        t = time.process_time()
        log = r.run()
        if k:
            whole.append((time.process_time() - t) / log.env_steps)
    rows["whole loop (NumbaRun.run, this tree)"] = {"this tree": statistics.median(whole)
                                                    * n_steps}
    return ({k: {v: 1e6 * x / n_steps for v, x in row.items()} for k, row in rows.items()},
            n_steps, n_ep)


def cell(row: dict) -> str:
    """``this tree`` alone, or ``other -> this tree (ratio)``."""
    if "other" not in row:
        return f"{row['this tree']:.3f}"
    return (f"{row['other']:.3f} -> {row['this tree']:.3f} "
            f"({row['other'] / row['this tree']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", help="another checkout, timed side by side: its "
                                          "kernels and streams")
    args = parser.parse_args()
    versions = {"this tree": load_version(None)}
    if args.against:
        versions["other"] = load_version(args.against)
    cfgs = slides_configs(1, args.steps, engine="numba")[:2]  # vanilla, dropout 0 and 0.6
    NumbaRun(slides_configs(1, 1000, engine="numba")[1]).run()  # load the kernels
    cols, names = [], []
    for collapse in (False, True):
        for cfg in cfgs:
            rows, n_steps, n_ep = profile(cfg, args.steps, collapse, args.repeats, versions)
            label = (f"{'collapsed' if collapse else 'early'}, dropout {cfg.dropout} "
                     f"({n_steps:,} steps, {n_steps / n_ep:.1f} per episode)")
            cols.append((label, rows))
            names += [k for k in rows if k not in names]
    print(f"# {cpu_model()}, {args.steps} steps per run, median of {args.repeats}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
          + (f"; cells: {args.against} -> this tree" if args.against else "") + "\n")
    print("| phase (CPU-us per env step) | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name in names:
        print(f"| {name} | "
              + " | ".join(cell(r[name]) if name in r else "-" for _, r in cols) + " |")
    for v in versions:
        print(f"| sum of the phases (not the indented parts), {v} | " + " | ".join(
            f"{sum(x[v] for k, x in r.items() if not k.startswith((' ', 'whole')) and v in x):.3f}"
            for _, r in cols) + " |")


if __name__ == "__main__":
    main()
