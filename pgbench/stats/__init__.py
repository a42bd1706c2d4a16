"""Pure statistics, no pgbench types: metrics, bootstrap intervals, survival (Kaplan-Meier),
and small-sample permutation intervals. Every random draw comes from a Generator passed in.
"""
