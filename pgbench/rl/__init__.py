"""The policy-gradient method itself, independent of how it is trained: the config and its
variants, the estimators (returns, baselines, advantages), the policy networks, per-episode
gradients, and what each engine covers.
"""
