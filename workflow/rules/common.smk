# Config validation and the grid of jobs. Everything the rules need is computed here, once,
# when the workflow loads: a bad config stops Snakemake before any job runs.

import itertools
import json
import os
import shlex

from snakemake.utils import validate

from pgbench.core.errors import UserError
from pgbench.envs.registry import check_env_id
from pgbench.training.job import build_requests

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

RESULTS = config["results"]
REPORTS = config["reports"]
LOGS = config["logs"]
SUMMARY = f"{RESULTS}/summary"


class ConfigError(ValueError):
    """A config value the schema cannot judge (an env id, a setting's range)."""


def seed_list(suite_cfg):
    seeds = suite_cfg["seeds"]
    return list(range(seeds)) if isinstance(seeds, int) else sorted(seeds)


def env_settings(suite_cfg):
    """env id -> settings for that env (suite settings, then the env's own)."""
    envs = suite_cfg["envs"]
    if isinstance(envs, list):
        envs = {env: {} for env in envs}
    return {env: {**suite_cfg.get("settings", {}), **(extra or {})} for env, extra in envs.items()}


def setting_value(value):
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def arms(suite_cfg):
    """(variant, varied settings, arm name) for every combination the suite asks for."""
    out = []
    for variant in suite_cfg["variants"]:
        vary = {**suite_cfg.get("vary", {}), **suite_cfg.get("vary_per_variant", {}).get(variant, {})}
        keys = sorted(vary)
        for values in itertools.product(*(vary[k] for k in keys)):
            setting = dict(zip(keys, values))
            name = "__".join([variant] + [f"{k}={setting_value(v)}" for k, v in setting.items()])
            out.append((variant, setting, name))
    return out


def run_dir(suite, env, arm, seed):
    return f"{RESULTS}/runs/{suite}/{env}/{arm}/seed{seed}"


def build_train_jobs():
    """(suite, env, block) -> the `pgbench train-job` spec of that job: every arm, the block's seeds."""
    jobs = {}
    for suite, suite_cfg in config["suites"].items():
        if suite_cfg["kind"] != "train":
            continue
        blocks = {}
        for seed in seed_list(suite_cfg):
            blocks.setdefault(seed // suite_cfg["seeds_per_job"], []).append(seed)
        for env, settings in env_settings(suite_cfg).items():
            env_arms = [dict(arm=arm, variant=variant, overrides={**settings, **setting},
                             setting=setting, out=run_dir(suite, env, arm, "{seed}"))
                        for variant, setting, arm in arms(suite_cfg)]
            try:  # the train job's own checks (pgbench.training.job): one copy of each
                build_requests(dict(suite=suite, env=env,
                                    arms=[{**a, "seeds": seed_list(suite_cfg)[:1]} for a in env_arms]))
            except UserError as err:
                raise ConfigError(f"config error in suite {suite!r}, env {env!r}: {err}") from None
            for block, block_seeds in blocks.items():
                jobs[(suite, env, str(block))] = dict(
                    suite=suite, env=env, arms=[{**a, "seeds": block_seeds} for a in env_arms])
    return jobs


TRAIN_JOBS = build_train_jobs()


def gradstudy_envs():
    envs = []
    for suite_cfg in config["suites"].values():
        if suite_cfg["kind"] == "gradstudy":
            for env, settings in env_settings(suite_cfg).items():
                if settings.get("exact"):  # a small MDP of pgbench.gradstudy.tinymdp, not a Gymnasium env
                    envs.append(env)
                    continue
                try:
                    check_env_id(env)
                except UserError as err:
                    raise ConfigError(f"config error in the gradstudy suite: {err}") from None
                envs.append(env)
    return envs


GRADSTUDY_ENVS = gradstudy_envs()


def gradstudy_args(wildcards):
    for suite_cfg in config["suites"].values():
        if suite_cfg["kind"] == "gradstudy" and wildcards.env in env_settings(suite_cfg):
            settings = env_settings(suite_cfg)[wildcards.env]
            seed = seed_list(suite_cfg)[0]
            args = [f"--seed {seed}"]
            for key, value in settings.items():
                flag = f"--{key.replace('_', '-')}"
                values = value if isinstance(value, list) else [value]
                if value is True or value is False:  # a switch, e.g. --exact
                    args += [flag] if value else []
                elif key == "set":  # --set takes one KEY=VALUE each time
                    args += [f"{flag} {shlex.quote(str(v))}" for v in values]
                else:  # the other options take their values together (e.g. --episodes 1 4 16)
                    args.append(f"{flag} {' '.join(shlex.quote(str(v)) for v in values)}")
            return " ".join(args)
    raise ValueError(f"no gradstudy settings for {wildcards.env}")


def train_marker(key):
    suite, env, block = key
    return f"{RESULTS}/runs/{suite}/{env}/block{block}.done"


def train_job(wildcards):
    return TRAIN_JOBS[(wildcards.suite, wildcards.env, wildcards.block)]


def train_spec_path(key):
    suite, env, block = key
    return f"{RESULTS}/specs/train/{suite}/{env}/block{block}.json"


def write_train_specs():
    """Write each training job's `pgbench train-job` spec to its file, when the workflow loads.

    A file is rewritten only when its spec changed: the job's input is then newer than its
    marker, so Snakemake reruns exactly the jobs whose spec changed (and each rerun trains only
    the runs that changed). The spec is a file, not a command-line argument, so the console and
    the job's command line stay one short line.
    """
    from pgbench.core.io import write_text_atomic

    for key, spec in TRAIN_JOBS.items():
        path = train_spec_path(key)
        text = json.dumps(spec, indent=1, sort_keys=True) + "\n"
        try:
            with open(path) as fh:
                if fh.read() == text:
                    continue
        except OSError:
            pass
        write_text_atomic(path, text)


write_train_specs()


def train_spec(wildcards):
    return train_spec_path((wildcards.suite, wildcards.env, wildcards.block))


def train_inputs(wildcards):
    """The job's spec, and the compiled kernels when one of its arms runs `engine: numba`
    (compiled once by `pgbench compile`, so that jobs started together do not each compile)."""
    inputs = {"spec": train_spec(wildcards)}
    if any(arm["overrides"].get("engine") == "numba" for arm in train_job(wildcards)["arms"]):
        inputs["kernels"] = f"{RESULTS}/compiled-engine.ready"
    return inputs


def train_summary(wildcards):
    """One line for the console: what the job trains."""
    job = train_job(wildcards)
    seeds = job["arms"][0]["seeds"]
    span = f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))
    return f"{len(job['arms'])} arms x seeds {span} ({sum(len(a['seeds']) for a in job['arms'])} runs)"


def train_runtime(wildcards):
    """Minutes to ask a cluster for: generous, from the env-step budget of all the job's runs."""
    steps = sum(int(arm["overrides"].get("total_steps", 500_000)) * len(arm["seeds"])
                for arm in train_job(wildcards)["arms"])
    return max(10, int(steps / 5_000 / 60 * 3))  # >= 5k steps/s, times 3 for safety


def all_run_dirs():
    return [run_dir(job["suite"], job["env"], arm["arm"], seed)
            for job in TRAIN_JOBS.values() for arm in job["arms"] for seed in arm["seeds"]]


def report_configfile_arg():
    """``--configfile PATH`` for `pgbench report` (its Reproduce section names the config), for
    the last config file snakemake read, relative to the working directory when inside it; empty
    for the default config."""
    files = list(getattr(workflow, "configfiles", None) or [])
    if not files:
        return ""
    path = os.path.relpath(os.path.abspath(str(files[-1])))
    if path.startswith(".."):
        path = os.path.abspath(str(files[-1]))
    return "" if os.path.normpath(path) == os.path.normpath("config/config.yaml") else f"--configfile {shlex.quote(path)}"


def final_targets():
    # The summary tables are targets too, so that a reports/ directory holding a report (not
    # made by this results/ directory) does not make `snakemake` a no-op.
    return [f"{SUMMARY}/runs.parquet", f"{SUMMARY}/claims.parquet",
            f"{REPORTS}/index.html", f"{REPORTS}/README.md"]
