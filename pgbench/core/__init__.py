"""What every layer uses: errors, atomic writes, the --out rule, seeding, the tables'
contracts, CPU-dispatch pinning, provenance and platform fingerprints, progress lines.
"""
