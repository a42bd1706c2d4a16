"""The ``pgbench`` command line.

Each subcommand lives in its own module, which exposes ``configure_parser(parser)`` and
``run(args) -> int``. Only the module of the command being run is imported, so ``pgbench --help``
and ``pgbench variants`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pgbench.core.errors import UserError

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "variants": ("pgbench.rl.variants", "list the registered estimator variants"),
    "train": ("pgbench.training.cli", "train one (env, variant, seed) or a group of seeds"),
    "train-job": ("pgbench.training.job", "train every arm of a (suite, env) for a block of seeds "
                  "(the pipeline's training job)"),
    "aggregate": ("pgbench.analysis.aggregate", "turn run directories into tidy summary tables"),
    "claims": ("pgbench.claims.cli", "evaluate the sources' claims on a summary"),
    "report": ("pgbench.report.build", "render reports/index.html and reports/README.md (and digest.json)"),
    "reference": ("pgbench.check.cli", "write a reference of final returns for `pgbench check`"),
    "digest": ("pgbench.report.digest", "write a summary's digest: every run's episodes hash and verdict"),
    "compare": ("pgbench.report.digest", "does your run reproduce the committed report? (runs "
                "byte-identical, verdicts equal)"),
    "check": ("pgbench.check.cli", "statistical regression gate on final returns"),
    "import": ("pgbench.runs.importing", "turn other libraries' results (tidy CSV/Parquet, SB3 "
               "Monitor files) into run directories"),
    "gradstudy": ("pgbench.gradstudy.cli", "measure bias and variance of gradient estimators"),
    "compile": ("pgbench.training.warmup", "compile the numba engine's kernels into Numba's cache"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgbench",
        description="Reproducible benchmark and report generator for policy-gradient methods.",
        epilog="Run `pgbench COMMAND --help` for a command's options.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND",
                        help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        top = _top_parser()
        if not argv:
            top.print_help()
            return 2
        top.parse_args(argv[:1])  # prints help or a clear "invalid choice" error and exits
        return 2
    command, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[command]
    parser = argparse.ArgumentParser(prog=f"pgbench {command}", description=help_text)
    try:
        module = importlib.import_module(module_name)
        getattr(module, f"configure_{command}_parser", getattr(module, "configure_parser", None))(parser)
        args = parser.parse_args(rest)
        runner = getattr(module, f"run_{command}", getattr(module, "run", None))
        return int(runner(args) or 0)
    except UserError as err:
        print(f"pgbench {command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pgbench {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
