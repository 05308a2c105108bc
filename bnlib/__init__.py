"""bnlib: batch normalisation, hands-on — a small numpy library behind the notebook series.

    norm.py      batch/layer/instance/group norm: one normalisation over chosen axes
    conv.py      2-D convolution and max pooling: im2col and one matrix product
    layers.py    Linear, Conv2d, MaxPool2d, Flatten, activations, BatchNorm/GhostBatchNorm/LayerNorm/
                 GroupNorm/InstanceNorm layers, cross-entropy, folding
    model.py     MLP with optional normalisation before or after the activation and optional skip
                 connections (residual blocks); a small CNN
    train.py     SGD (momentum, weight decay), the training loop and per-layer distribution records
    statistics.py recompute_statistics: population statistics from unlabeled data (precise BN, AdaBN)
    schedules.py learning-rate schedules: Constant, Warmup, StepDecay, Cosine (functions of the step)
    data.py      MNIST-5k and 8×8 digits (shipped), spirals and blobs, minibatches
    gradcheck.py numerical gradients and the relative error
    checks.py    exercise checks and self-checking claims for the notebooks
    i18n.py      set_language("ja" | "en"): the language of every string a learner reads
"""
from threadpoolctl import threadpool_limits

from .checks import check, claim
from .conv import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward
from .data import Dataset, load_digits, load_mnist5k, make_blobs, make_spirals, minibatches
from .gradcheck import grad_check, rel_error
from .i18n import get_language, set_language
from .layers import (BatchNorm, BatchRenorm, Conv2d, Flatten, GhostBatchNorm, GroupNorm, InstanceNorm, LayerNorm,
                     Linear, MaxPool2d, ReLU, Sigmoid, Tanh, fold_batchnorm, softmax_cross_entropy)
from .model import CNN, MLP
from .norm import (batchnorm_backward, batchnorm_backward_graph, batchnorm_forward, groupnorm_backward,
                   groupnorm_forward, instancenorm_backward, instancenorm_forward, layernorm_backward,
                   layernorm_forward)
from .schedules import Constant, Cosine, Schedule, StepDecay, Warmup
from .statistics import recompute_statistics
from .train import SGD, History, train
from .validate import NonFiniteError

# The matrices here are small (batch 60 × 100 units): one BLAS thread was measured 4–10× faster
# than OpenBLAS's default of one per core, which spends its time waking and syncing threads.
threadpool_limits(limits=1, user_api="blas")

__version__ = "0.1.0"
