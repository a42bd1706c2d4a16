"""``pgbench claims SUMMARY``: evaluate every claim and write ``SUMMARY/claims.parquet``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pgbench.claims.evaluate import evaluate_claims, format_table
from pgbench.claims.model import load_claims
from pgbench.core.contracts import VERDICTS
from pgbench.core.io import write_parquet_atomic


# --------------------------------------------------------------------------- command line
def configure_parser(parser) -> None:
    parser.add_argument("summary", metavar="SUMMARY", help="summary directory written by `pgbench aggregate`")
    parser.add_argument("--claims", metavar="FILE", help="claims file (default: the packaged claims.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every bootstrap (default: 0)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the intervals (default: 0.95)")
    parser.add_argument("--n-resamples", type=int, default=2000,
                        help="bootstrap resamples per interval (default: 2000)")


def run(args) -> int:
    claims = load_claims(args.claims)
    table = evaluate_claims(claims, args.summary, seed=args.seed, confidence=args.confidence,
                            n_resamples=args.n_resamples)
    out = Path(args.summary) / "claims.parquet"
    write_parquet_atomic(out, table)
    print(format_table(table))
    counts = table["verdict"].value_counts()
    print("\n" + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + f" -> {out}",
          file=sys.stderr)
    return 0


