"""Gymnasium vector environments with per-episode seeding.

Every episode starts from a reset seeded by its own seed's generator, so a seed's episodes are
the same whether it runs alone or in a group with other seeds, in one vector env.
"""
