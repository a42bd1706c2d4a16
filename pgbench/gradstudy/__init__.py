"""``pgbench gradstudy``: bias and variance of policy-gradient estimators, measured directly.

The sources claim that a constant baseline leaves the gradient's expectation unchanged and that
a baseline and reward-to-go ("causality") reduce its variance. Learning curves only show these
effects through training; here they are measured at *fixed* policy parameters:

1. Policies: the initial parameters, and snapshots taken while pgbench's own trainer learns (by
   default variant ``rtg_baseline`` with 8 episodes per update), at the first update after which
   the sources' running reward reaches 25% and 75% of the env's reward threshold (snapshots
   ``q25``, ``q75``: a level of performance, not a fraction of the training budget).
2. At each snapshot, a *pool* of ``M * max(K)`` independent episodes is collected (one vector env,
   :class:`pgbench.training.rollout.Collector`) and split into batches of K episodes for every K of
   ``--episodes`` (so a smaller K gets more batches of the same episodes). Every estimator's batch
   gradient is computed on the *same* batches: common random numbers, so differences between
   estimators are paired and far more precise than between independent samples.
3. An independent *reference* pool of ``R * max(K)`` episodes gives the reference gradient
   that bias and direction are measured against: the grand mean of one unbiased estimator,
   ``loo_time_baseline`` by default. Every unbiased estimator has the gradient as its mean; vanilla,
   the textbook choice, has up to 1000x the variance once episodes reach the time limit, so
   its mean over the same episodes would be a far noisier reference.
4. ``--max-steps`` caps the env steps of both pools (InvertedPendulum's MuJoCo steps cost ~30x
   CartPole's vectorised ones): M and R shrink in proportion, sized from a separate pilot.

Per-episode gradients come from batched ``torch.func`` calls (``vjp`` of each episode's
log-probabilities, ``vmap`` over episodes; the weightings share one forward pass), never a
backward per episode.

Estimators (the batch gradient is the mean of K per-episode terms; ``g_i`` is episode i's score
``sum_t grad log pi(a_t|s_t)``, ``R_i`` its return, ``G_it`` its reward-to-go; ``gamma = 1`` by
default so that every unbiased estimator estimates the gradient of the same objective):

====================== ====================================================================
vanilla                ``g_i R_i``
batch_mean_baseline    ``g_i (R_i - mean_j R_j)``, the slides' baseline, mean *including*
                       episode i. It is biased: its expectation is exactly ``(1 - 1/K)`` times
                       the gradient (a pure rescaling; K=1 gives 0, so it is not reported at
                       K=1). Kept to show the bias and that the equal-means test detects it.
loo_baseline           ``g_i (R_i - mean_{j != i} R_j)``: leave-one-out mean, unbiased for every
                       K (the baseline is independent of episode i). It equals
                       ``K/(K-1)`` times batch_mean_baseline; with K=1 there is no other
                       episode, the baseline is 0 and it equals vanilla.
ema_baseline           ``g_i (R_i - b)``, b the trainer's running mean (weight ``--ema-weight``
                       on the newest batch's mean return, :func:`pgbench.rl.estimators.ema_baseline`)
                       of the batches *before* this one: unbiased at every K, K=1 included
fixed_baseline         ``g_i (R_i - b)``, b the mean return of the reference pool: a constant
                       known in advance, as the textbook derivation assumes
loo_optimal_baseline   ``g_i (R_i - b_i)`` with Levine's variance-minimising constant
                       ``b = E[|g|^2 R] / E[|g|^2]`` (CS285 lecture 5), estimated leave-one-out
                       from the other episodes of the batch (unbiased; K=1: b=0)
fixed_optimal_baseline the same constant estimated on the reference pool: Levine's baseline as
                       derived (a constant), without the noise of estimating it from K episodes
rtg                    ``sum_t G_it grad log pi_t`` (reward-to-go, causality)
rtg_loo_baseline       ``rtg - g_i b_i``: b the leave-one-out mean over the other episodes of
                       their mean reward-to-go
rtg_ema_baseline       ``rtg - g_i b``: b the trainer's running mean of past batches' mean
                       reward-to-go (what variant ``rtg_baseline`` trains with)
loo_time_baseline      ``sum_t (G_it - b_t) grad log pi_t``: b_t the mean reward-to-go at step t
                       of the *other* episodes of the batch still running at t
====================== ====================================================================

The value baseline is not studied: it needs a critic trained alongside, which the snapshots'
trainer does not have.

Statistics (docs/contracts.md, "Gradient study"): per (snapshot, estimator, K) the total
variance ``tr Cov[batch gradient]`` with a percentile bootstrap CI over batches (one explicit
Generator), the per-tensor variance, the mean gradient's distance and cosine to the reference;
per pair of estimators on the same batches, the variance ratio with a *paired* bootstrap CI
(the same resampled batches for both) and a test of equal mean gradients (see
:func:`mean_difference_test`).
"""
