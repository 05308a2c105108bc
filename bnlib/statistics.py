"""Population statistics for batch norm, recomputed from data after training — no labels needed.

    recompute_statistics(model, data.x_train, batch_size=60)    # the BN paper's Algorithm 2 ("precise BN")
    recompute_statistics(model, x_new)                          # AdaBN: statistics of the new data

A model's running averages are a moving average kept while the weights changed, so they lag the
final weights (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3: EMA vs precise BN). The
BN paper's Algorithm 2 (Ioffe & Szegedy 2015, §3.1) fixes the weights and averages the statistics
of many training batches B of size m, for every BN layer:

    E[x]   = mean over the batches of μ_B
    Var[x] = m/(m − 1) · mean over the batches of σ²_B          (σ²_B biased: divided by m)

Computed on unlabeled images of a new domain instead, the same statistics adapt the model to it:
AdaBN (Li et al. 2016, "Revisiting Batch Normalization for Practical Domain Adaptation",
Algorithm 1), which computes each unit's mean and variance over the target-domain images.
"""
import numpy as np

from .i18n import _
from .layers import BatchNorm
from .validate import as_float_array


def recompute_statistics(model, x, batch_size=None):
    """Replace every batch norm layer's running statistics with statistics recomputed on x.

    x: (n, ...) inputs of the model (no labels). batch_size=None puts all n samples in one batch:
    then BN layer 1 gets the exact mean and unbiased variance of its input over x, and each later
    layer those of its input with the layers before it normalised by the whole of x (AdaBN's
    statistics). batch_size=m cuts x into ⌊n/m⌋ consecutive batches (a last incomplete batch is
    left out, so every batch weighs the same) and averages as the BN paper's Algorithm 2 does:
    E[x] = mean of μ_B, Var[x] = m/(m − 1) · mean of σ²_B, every layer normalising each batch with
    its own statistics as in training. The batches are taken in x's order: shuffle x first if it
    is sorted (batches of one class have too small variances).

    The model is changed in place — running_mean, running_var, num_batches_tracked — and returned;
    weights, γ, β, momentum and every layer's mode are as before. (PyTorch: reset_running_stats()
    and momentum=None on each BN layer, forward the batches in train mode under torch.no_grad();
    fvcore's update_bn_stats does this for "precise BN".)
    """
    x = as_float_array(x)
    n = len(x)
    m = n if batch_size is None else batch_size
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 2 <= m <= n:
        raise ValueError(_("recompute_statistics needs batches of at least 2 of the {n} samples (batch_size "
                           "between 2 and {n}, or None for one batch of all of them), got batch_size={size!r}")
                         .format(n=n, size=batch_size))
    bns = [layer for layer in model.layers if isinstance(layer, BatchNorm)]
    if not bns:
        raise ValueError(_("{model} has no batch norm layer: there are no statistics to recompute")
                         .format(model=model.label()))
    kept = [(bn.momentum, bn.track_running_stats, bn.frozen) for bn in bns]
    modes = [layer.training for layer in model.layers]
    try:
        model.train()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum, bn.track_running_stats, bn.frozen = None, True, False   # None: the plain mean over batches
        for start in range(0, n - m + 1, m):
            model.forward(x[start:start + m])
    finally:
        for bn, (momentum, track, frozen) in zip(bns, kept):
            bn.momentum, bn.track_running_stats, bn.frozen = momentum, track, frozen
        for layer, mode in zip(model.layers, modes):
            layer.training = mode
    return model
