"""The report's figures: matplotlib (object API, Agg canvas, no pyplot) styled with seaborn.

Every ``*_figure`` function takes tidy frames in the shapes of docs/contracts.md for one
(suite, env) or one gradient-study env and returns a :class:`matplotlib.figure.Figure`;
:func:`save_png` writes it. Nothing here touches pyplot's global figure registry, so figures are
freed as soon as they go out of scope and importing this module never changes the caller's
backend.

Colours come from :func:`arm_palette`: one mapping from arm (or estimator) name to colour for the
whole report, so an arm has the same colour in every figure and in the tables beside them.

All randomness (bootstrap resamples, strip-plot jitter) is drawn from an explicit
``numpy.random.Generator``; the same data and seed give the same pixels.
"""
