"""SGD, the training loop, and a History recording how each layer's distribution moves.

    history = train(MLP([784, 100, 100, 100, 10], norm="batch"), load_mnist5k(),
                    steps=2000, batch_size=60, lr=0.1)

    history = train(CNN((1, 8, 16), norm="batch"), load_mnist5k(images=True),
                    steps=300, batch_size=32, lr=0.1)

Every `record_every` steps the loop runs a fixed probe batch (the first `probe_size` test
images) through the model and records, per hidden layer (MLP) or stage (CNN), the
pre-activation z (what the activation receives) and the activation output: 15th/50th/85th
percentiles (pooled, and per unit — per channel in a CNN, over its N·H·W values), mean, std,
a histogram on fixed bins, and the fraction of saturated units.
Batch norm layers normalise the probe with its own statistics and leave their running
averages untouched, so recording never changes training. At every record the History also
keeps ‖∂L/∂W‖ of each weight layer on that step's training batch (History.grad_norms), and
for every step the learning rate it used (History.lr): `lr` may be a number or a schedule,
a function of the step (bnlib.schedules: Constant, Warmup, StepDecay, Cosine).
A record stays cheap for deep networks: one sort of each pre-activation gives its percentiles
and histogram, and (activations never decrease) those of the activation output too. A record
of a 24-hidden-layer MLP (48 tensors of 500 × 64 values) costs about ten of its training steps
(34 ms here; np.percentile and np.histogram took 110 ms for the same numbers).
"""
import time
from dataclasses import dataclass, field

import numpy as np

from .data import minibatches
from .i18n import _
from .layers import softmax_cross_entropy
from .schedules import as_schedule
from .validate import NonFiniteError, as_float_array

PERCENTILES = (15, 50, 85)
PRE_RANGE = (-8.0, 8.0)
ACT_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, 8.0)}
BINS = 64


class SGD:
    """Stochastic gradient descent with optional momentum and weight decay (PyTorch's form):
        g ← g + λ · p          (weight decay λ: the gradient of (λ/2)‖p‖², only where `decay` says)
        v ← momentum · v + g,    p ← p − lr · v
    decay: one True/False per parameter (default: every parameter, as torch.optim.SGD does for
    its parameter group); `train` decays only the weight matrices, see there.
    Parameters that fill one buffer in order (a Network's do, see Network._pack_parameters) are
    updated as that one array: the same numbers, with one numpy call where there were dozens.
    """

    def __init__(self, params, grads, lr, momentum=0.0, weight_decay=0.0, decay=None):
        if not lr > 0:
            raise ValueError(_("lr must be positive, got {value!r}").format(value=lr))
        if not 0 <= momentum < 1:
            raise ValueError(_("SGD momentum must be in [0, 1), got {value!r}").format(value=momentum))
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            raise ValueError(_("weight_decay must be a number ≥ 0, got {value!r}").format(value=weight_decay))
        decay = [True] * len(params) if decay is None else [bool(d) for d in decay]
        if len(decay) != len(params):
            raise ValueError(_("decay needs one True/False per parameter: {params} parameters, {decay} flags")
                             .format(params=len(params), decay=len(decay)))
        self.params, self.grads, self.lr, self.momentum = params, grads, lr, momentum
        self.weight_decay, self.decay = weight_decay, decay
        # (parameter, gradient, λ per value or None) per update: one for a packed model, else one per array
        rates = [weight_decay if d else 0.0 for d in decay]
        flat_p, flat_g = one_buffer(params), one_buffer(grads)
        if flat_p is not None and flat_g is not None:
            rate = np.concatenate([np.full(p.size, r, p.dtype) for p, r in zip(params, rates)])
            self._updates = [(flat_p, flat_g, rate if weight_decay else None)]
        else:
            self._updates = [(p, g, r or None) for p, g, r in zip(params, grads, rates)]
        self.velocity = [np.zeros_like(update[0]) for update in self._updates] if momentum else None
        self._scratch = [np.empty_like(update[0]) for update in self._updates]   # reused: no large temporaries per step

    def step(self):
        velocities = self.velocity or [None] * len(self._updates)
        for (p, g, rate), v, tmp in zip(self._updates, velocities, self._scratch):
            if rate is not None:                       # g + λ·p in the scratch array; the gradient stays as computed
                g = np.add(g, np.multiply(p, rate, out=tmp), out=tmp)
            if v is not None:
                v *= self.momentum
                v += g
                g = v
            np.multiply(g, self.lr, out=tmp)
            p -= tmp


def one_buffer(arrays):
    """The 1-D array that `arrays` fill one after another, without gaps, as views of one buffer;
    None if they do not (arrays of their own, a gap, another order)."""
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        return None
    base = arrays[0].base
    if base is None or base.ndim != 1 or any(a.base is not base or not a.flags.c_contiguous for a in arrays):
        return None
    address = base.__array_interface__["data"][0]
    starts = [(a.__array_interface__["data"][0] - address) // base.itemsize for a in arrays]
    stops = [start + a.size for start, a in zip(starts, arrays)]
    if starts[1:] != stops[:-1]:
        return None
    return base[starts[0]:stops[-1]]


@dataclass
class TensorStats:
    """One tensor (pre-activation or activation) of one layer, at each of R records."""
    percentiles: np.ndarray        # (R, 3): 15th, 50th, 85th over all units and samples
    unit_percentiles: np.ndarray   # (R, units, 3): the same for each unit (CNN: each channel) separately
    mean: np.ndarray               # (R,)
    std: np.ndarray                # (R,)
    hist: np.ndarray               # (R, BINS): fraction of values per bin (clipped into range)
    bin_edges: np.ndarray          # (BINS + 1,)


@dataclass
class LayerRecord:
    pre: TensorStats               # z, what the activation receives
    act: TensorStats               # the activation's output
    saturated: np.ndarray          # (R,) fraction of values in the activation's flat tails


@dataclass
class History:
    """What `train` measured. steps/loss per step; record_steps, accuracies and layers per record."""
    steps: np.ndarray
    loss: np.ndarray
    record_steps: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    layers: list
    config: dict = field(default_factory=dict)
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0
    lr: np.ndarray = None          # (steps,) the learning rate each step used
    grad_norms: np.ndarray = None  # (R, weight layers) ‖∂L/∂W‖ per weight layer, input side first
    weight_norms: np.ndarray = None  # (R, weight layers) ‖W‖ per weight layer at each record

    @property
    def final_test_acc(self):
        return float(self.test_acc[-1])

    def __repr__(self):
        if self.diverged:
            state = _("diverged at step {step}").format(step=self.steps[-1] + 1 if len(self.steps) else 0)
        else:
            state = _("test accuracy {acc:.1%}").format(acc=self.final_test_acc)
        return _("History({model}, {steps} steps, {records} records, {state})").format(
            model=self.config.get("model", ""), steps=len(self.steps), records=len(self.record_steps), state=state)


_QUANTILES = np.true_divide(PERCENTILES, 100)


def _sorted_percentiles(ordered):
    """np.percentile(x, PERCENTILES, axis=0) for x already sorted along axis 0: numpy's default
    ("linear") method with numpy's own arithmetic, so the numbers are bit for bit the same, but
    without numpy partitioning the data once more for every call."""
    n = len(ordered)
    virtual = (n - 1) * _QUANTILES
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    gamma = (virtual - below).reshape((-1,) + (1,) * (ordered.ndim - 1))
    a, b = ordered[below], ordered[above]
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def _per_unit(values):
    """(N, units) as it is; (N, C, H, W) as (N·H·W, C): one column per channel."""
    return values if values.ndim == 2 else np.moveaxis(values, 1, -1).reshape(-1, values.shape[1])


def _tensor_stats(values, value_range, ordered=None, ordered_units=None):
    """Statistics of one (N, units) or (N, C, H, W) tensor; returns a dict of per-record pieces.
    For images a "unit" is a channel: its percentiles run over all N·H·W of its values.
    One sort of all values gives the pooled percentiles and the histogram (values outside
    `value_range` count in the end bins, as np.histogram of the clipped values does).
    ordered, ordered_units: the values already sorted (all of them; each unit's), if known."""
    flat = values.reshape(-1)
    edges = np.linspace(*value_range, BINS + 1)
    ordered = np.sort(flat) if ordered is None else ordered
    ordered_units = np.sort(_per_unit(values), axis=0) if ordered_units is None else ordered_units
    counts = np.diff(np.searchsorted(ordered, edges[1:-1], side="left"), prepend=0, append=flat.size)
    return dict(percentiles=_sorted_percentiles(ordered), unit_percentiles=_sorted_percentiles(ordered_units).T,
                mean=flat.mean(), std=flat.std(), hist=counts / flat.size, bin_edges=edges)


def _stack(pieces):
    """List of per-record dicts → TensorStats of stacked arrays."""
    out = {k: np.array([p[k] for p in pieces]) for k in pieces[0] if k != "bin_edges"}
    return TensorStats(bin_edges=pieces[0]["bin_edges"], **out)


class _Recorder:
    def __init__(self, model, x_probe):
        self.model, self.x_probe = model, x_probe
        self.act_range = ACT_RANGE[model.activation]
        self.pre, self.act, self.sat = [[] for _ in model.hidden], [[] for _ in model.hidden], []

    def record(self):
        with self.model.batch_statistics():
            _, pre, act = self.model.forward(self.x_probe, keep=True)
        for l, (z, h, (_, _, act_layer)) in enumerate(zip(pre, act, self.model.hidden)):
            ordered, ordered_units = np.sort(z.reshape(-1)), np.sort(_per_unit(z), axis=0)
            self.pre[l].append(_tensor_stats(z, PRE_RANGE, ordered, ordered_units))
            # h = act(z), and an activation never decreases, so act(sorted z) is h sorted: no
            # second sort (a fresh copy of the layer computes it; the model's keeps its state)
            f = type(act_layer)().forward
            self.act[l].append(_tensor_stats(h, self.act_range, f(ordered), f(ordered_units)))
        self.sat.append([act_layer.saturated(h).mean() for h, (_, _, act_layer) in zip(act, self.model.hidden)])

    def layers(self):
        sat = np.array(self.sat).reshape(len(self.sat), -1)
        return [LayerRecord(_stack(p), _stack(a), sat[:, l]) for l, (p, a) in enumerate(zip(self.pre, self.act))]


class _Progress:
    """One self-overwriting line, shown only if the run takes longer than `delay` seconds."""

    def __init__(self, total, enabled, delay=2.0):
        self.total, self.enabled, self.delay = total, enabled, delay
        self.start = self.last = time.perf_counter()
        self.shown = False

    def update(self, step, loss):
        now = time.perf_counter()
        if self.enabled and now - self.start > self.delay and now - self.last > 0.5:
            self.last, self.shown = now, True
            line = _("step {step:>6}/{total}  loss {loss:.3f}  ({seconds:.0f} s)")
            print("\r" + line.format(step=step, total=self.total, loss=loss, seconds=now - self.start),
                  end="", flush=True)

    def close(self):
        if self.shown:
            line = _("trained {steps} steps in {seconds:.1f} s")
            print("\r" + line.format(steps=self.total, seconds=time.perf_counter() - self.start) + " " * 20,
                  flush=True)
        return time.perf_counter() - self.start


def _check_data(data, model):
    for name in ("x_train", "y_train", "x_test", "y_test"):
        if not hasattr(data, name):
            raise TypeError(_("data needs x_train, y_train, x_test and y_test (missing {name}); "
                              "bnlib.Dataset(x_train, y_train, x_test, y_test) wraps your own arrays").format(name=name))
    classes, sample = model.classes, model.input_shape
    for split in ("train", "test"):
        x = as_float_array(getattr(data, f"x_{split}"), f"x_{split}")
        y = np.asarray(getattr(data, f"y_{split}"))
        if x.shape[1:] != sample and len(sample) > 1 and x.ndim == 2:
            raise ValueError(_("x_{split} holds flat rows {shape}, but this model takes images (N, {inputs}); "
                               "load the data as images, e.g. bnlib.load_mnist5k(images=True)")
                             .format(split=split, shape=x.shape, inputs=", ".join(map(str, sample))))
        if x.shape[1:] != sample:
            raise ValueError(_("x_{split} must be (N, {inputs}) for this model, got {shape}")
                             .format(split=split, inputs=", ".join(map(str, sample)), shape=x.shape))
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
            raise ValueError(_("y_{split} must hold {n} integer labels, got {dtype} of shape {shape}")
                             .format(split=split, n=len(x), dtype=y.dtype, shape=y.shape))
        if y.min() < 0 or y.max() >= classes:
            raise ValueError(_("y_{split} has labels {low}..{high}, but the model has {classes} outputs "
                               "(labels must be 0..{last})")
                             .format(split=split, low=y.min(), high=y.max(), classes=classes, last=classes - 1))


def in_stored_order(n, batch_size):
    """Endless index batches in the order the data are stored, the same every epoch: 0..B−1,
    B..2B−1, … (the incomplete last batch is dropped, as in `minibatches`). This is what a data
    loader without shuffling gives — PyTorch's DataLoader unless shuffle=True is passed."""
    next(minibatches(n, batch_size))                  # the same checks of batch_size
    while True:
        for start in range(0, n - batch_size + 1, batch_size):
            yield np.arange(start, start + batch_size)


def train(model, data, steps, batch_size, lr, momentum=0.0, record_every=None, seed=0,
          probe_size=500, eval_size=1000, patience=20, progress="auto", weight_decay=0.0,
          parameters=None, shuffle=True):
    """Train `model` with minibatch SGD on softmax cross-entropy; return a History.

    steps: parameter updates. batch_size: samples per step (shuffled each epoch, seeded;
    shuffle=False takes the batches in the order the data are stored, see in_stored_order).
    lr: a number, or a schedule — any function of the step t = 0, 1, … that returns η_t, such as
    bnlib.Warmup(0.5, steps=100); History.lr holds the rate of every step.
    record_every: steps between records (default: about 50 records per run; step 0 and the
    last step are always recorded). progress: "auto" prints one updating line for runs longer
    than 2 s, False never. eval_size: training images used for train accuracy at each record.
    History.grad_norms[r, l] = ‖∂L/∂W_l‖ (the square root of the sum of squares of the gradient
    of weight layer l, input side first) on the training batch of step record_steps[r] — for
    the last record, on the batch that would come next, in batch-statistics mode (the model's
    running averages and weights stay as trained).
    A run stops early with diverged=True when its loss becomes NaN/inf, or stays above ten times
    the loss of a uniform guess (10·ln K for K classes) for `patience` steps in a row (a run that
    spikes and recovers, as BN at a large learning rate can, keeps going).
    weight_decay: λ of SGD's g + λ·W, for the weight matrices W only (every parameter with two or
    more axes); biases, γ and β (one axis each) are exempt, the usual practice (Goyal et al. 2017,
    §5.1, for γ and β). History.weight_norms[r, l] = ‖W_l‖ at record r.
    parameters: the arrays SGD may change, e.g. model.layers[-1].parameters() to train only the
    output layer (default: all of model.parameters()). The others stay as they are — but batch norm
    in training mode still updates its running statistics, as in PyTorch with requires_grad=False;
    `with model.frozen_statistics():` freezes those too.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(_("steps must be a positive integer, got {value!r}").format(value=steps))
    _check_data(data, model)
    dt = model.dtype
    x_train, y_train = np.asarray(data.x_train, dt), np.asarray(data.y_train)
    x_test, y_test = np.asarray(data.x_test, dt), np.asarray(data.y_test)
    batches = minibatches(len(x_train), batch_size, seed) if shuffle else in_stored_order(len(x_train), batch_size)
    schedule = as_schedule(lr)
    params, grads = _trained_parameters(model, parameters)
    opt = SGD(params, grads, _rate(schedule, 0), momentum, weight_decay, decay=[p.ndim >= 2 for p in params])
    weights = [layer for layer in model.layers if hasattr(layer, "dW")]
    record_every = record_every or max(1, steps // 50)
    recorder = _Recorder(model, x_test[:probe_size])
    x_eval, y_eval = x_train[:eval_size], y_train[:eval_size]
    losses, rec_steps, train_acc, test_acc, rates, grad_norms, weight_norms = [], [], [], [], [], [], []
    diverged, message = False, ""
    bar = _Progress(steps, progress == "auto" or progress is True, delay=0.0 if progress is True else 2.0)

    def record(step):
        rec_steps.append(step)
        weight_norms.append([np.linalg.norm(layer.W) for layer in weights])
        recorder.record()
        train_acc.append(np.mean(model.predict(x_eval) == y_eval))
        test_acc.append(np.mean(model.predict(x_test) == y_test))

    blow_up, steps_above = 10 * np.log(model.classes), 0
    model.train()
    for step in range(steps):
        if step % record_every == 0:
            record(step)
        idx = next(batches)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                loss, dlogits = softmax_cross_entropy(model.forward(x_train[idx]), y_train[idx])
        except NonFiniteError as e:
            diverged, message, loss = True, str(e), np.nan
        steps_above = steps_above + 1 if loss > blow_up else 0
        if diverged or not np.isfinite(loss) or steps_above >= patience:
            diverged = True
            message = message or _("loss {loss:.3g} at step {step}, above {limit:.3g} for {count} steps "
                                   "(a uniform guess scores {guess:.2f}): the learning rate is too large").format(
                loss=loss, step=step, limit=blow_up, count=steps_above, guess=np.log(model.classes))
            break
        model.backward(dlogits)
        if len(grad_norms) < len(rec_steps):          # this step was recorded: keep its gradient norms
            grad_norms.append([np.linalg.norm(layer.dW) for layer in weights])
        opt.lr = _rate(schedule, step)
        opt.step()
        rates.append(opt.lr)
        losses.append(loss)
        bar.update(step + 1, loss)
    if not diverged:
        record(len(losses))
        idx = next(batches)                           # the gradient the next step would take
        try:
            with model.batch_statistics(), np.errstate(over="ignore", invalid="ignore"):
                model.backward(softmax_cross_entropy(model.forward(x_train[idx]), y_train[idx])[1])
            grad_norms.append([np.linalg.norm(layer.dW) for layer in weights])
        except NonFiniteError:
            pass                                      # NaN norms, below
    if len(grad_norms) < len(rec_steps):              # a run that stopped at a recorded step
        grad_norms.append([np.nan] * len(weights))
    seconds = bar.close()
    config = dict(model=model.label(), steps=steps,
                  batch_size=batch_size, lr=lr, momentum=momentum, seed=seed, weight_decay=weight_decay,
                  shuffle=shuffle, trained=len(params))
    return History(np.arange(len(losses)), np.array(losses), np.array(rec_steps), np.array(train_acc),
                   np.array(test_acc), recorder.layers(), config, diverged, message, seconds,
                   lr=np.array(rates), grad_norms=np.array(grad_norms, dtype=float).reshape(len(rec_steps), len(weights)),
                   weight_norms=np.array(weight_norms, dtype=float).reshape(len(rec_steps), len(weights)))


def _trained_parameters(model, parameters):
    """(params, grads): the model's parameters that `parameters` names (by identity), with their gradients."""
    pairs = list(zip(model.parameters(), model.gradients()))
    wanted = {id(p) for p in (model.parameters() if parameters is None else parameters)}
    chosen = [(p, g) for p, g in pairs if id(p) in wanted]
    if not chosen or len(chosen) != len(wanted):
        raise ValueError(_("parameters must be arrays of this model, e.g. model.layers[-1].parameters(); "
                           "{found} of the {given} given belong to it").format(found=len(chosen), given=len(wanted)))
    return [p for p, g in chosen], [g for p, g in chosen]


def _rate(schedule, step):
    """η for this step, checked: a schedule that returns something else would fail deep inside SGD."""
    rate = schedule(step)
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not np.isfinite(rate) or rate < 0:
        raise ValueError(_("the learning-rate schedule gave {value!r} at step {step}; it must return a "
                           "number ≥ 0 for every step").format(value=rate, step=step))
    return rate
