"""Learning-rate schedules: the learning rate η as a function of the training step t = 0, 1, 2, …

    train(model, data, steps=600, batch_size=60, lr=0.5)                        # constant: η_t = 0.5
    train(model, data, steps=600, batch_size=60, lr=Warmup(0.5, steps=100))    # climbs to 0.5 in 100 steps
    train(model, data, steps=600, batch_size=60, lr=Cosine(0.5, total=600))    # falls from 0.5 towards 0
    train(..., lr=Warmup(StepDecay(0.5, milestones=[400]), steps=100))         # warm-up, then a step decay

`train` takes a number or any function of the step (a schedule); History.lr keeps the rate
each step used. The classes here are small callables that print what they do. Their PyTorch
counterparts (torch.optim.lr_scheduler) are ConstantLR, LinearLR, MultiStepLR, CosineAnnealingLR
and SequentialLR; the formulas below are the same, but PyTorch steps a scheduler once per call
of scheduler.step() (often once per epoch) where these count optimizer steps.
"""
import math

import numpy as np

from .i18n import _


def _positive_number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(_("{name} must be a positive number, got {value!r}").format(name=name, value=value))
    return float(value)


def _positive_steps(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(_("{name} must be a positive whole number of steps, got {value!r}")
                         .format(name=name, value=value))
    return int(value)


def _fraction(value, name):
    value = _positive_number(value, name)
    if value > 1:
        raise ValueError(_("{name} must lie in (0, 1], got {value!r}").format(name=name, value=value))
    return value


class Schedule:
    """η as a function of the step. Subclasses define rate(t); calling the schedule checks t."""

    def __call__(self, step):
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(_("a schedule takes the step number t = 0, 1, 2, …, got {value!r}").format(value=step))
        return self.rate(int(step))

    def rate(self, t):
        raise NotImplementedError

    def values(self, steps):
        """η_t for t = 0 … steps − 1, as an array (to plot a schedule before training with it)."""
        return np.array([self(t) for t in range(_positive_steps(steps, "steps"))])


def as_schedule(lr):
    """A number becomes Constant(lr); a schedule or any other function of the step stays as it is."""
    if isinstance(lr, Schedule) or (callable(lr) and not isinstance(lr, type)):
        return lr
    if isinstance(lr, (int, float, np.integer, np.floating)) and not isinstance(lr, bool):
        return Constant(lr)
    raise TypeError(_("lr must be a number or a schedule (a function of the step such as "
                      "bnlib.Warmup(0.5, steps=100)), got {type}").format(type=type(lr).__name__))


class Constant(Schedule):
    """η_t = lr at every step."""

    def __init__(self, lr):
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) \
                or not math.isfinite(lr) or lr <= 0:
            raise ValueError(_("lr must be positive, got {value!r}").format(value=lr))   # as SGD says it
        self.lr = lr                         # kept as given: SGD then computes exactly as with a number

    def rate(self, t):
        return self.lr

    def __repr__(self):
        return f"Constant({self.lr:g})"


class Warmup(Schedule):
    """Linear warm-up (Goyal et al. 2017, §2.2 "gradual warmup") in front of another schedule:

        η_t = after(t) · (start_factor + (1 − start_factor) · t / steps)   for t < steps
        η_t = after(t)                                                     from t = steps on

    after: a number (the rate to reach) or a schedule to follow once warmed up. The rate starts
    at start_factor · after(0) and grows by the same amount every step. PyTorch: LinearLR(opt,
    start_factor, total_iters=steps), chained with the scheduler after it.
    """

    def __init__(self, after, steps, start_factor=0.1):
        self.after = as_schedule(after)
        self.steps = _positive_steps(steps, "steps")
        self.start_factor = _fraction(start_factor, "start_factor")

    def rate(self, t):
        if t >= self.steps:
            return self.after(t)
        return self.after(t) * (self.start_factor + (1 - self.start_factor) * t / self.steps)

    def __repr__(self):
        return f"Warmup({self.after!r}, steps={self.steps}, start_factor={self.start_factor:g})"


class StepDecay(Schedule):
    """Step decay: η_t = lr · factor^k, with k the number of milestones ≤ t.

    StepDecay(0.5, milestones=[300, 450]) gives 0.5, then 0.05 from step 300, 0.005 from 450 (the
    ImageNet recipe divides by 10 a few times, e.g. Goyal et al. 2017). PyTorch: MultiStepLR(opt,
    milestones, gamma=factor) — called `factor` here, so as not to be confused with BN's γ.
    """

    def __init__(self, lr, milestones, factor=0.1):
        self.lr = _positive_number(lr, "lr")
        milestones = list(milestones)
        for m in milestones:
            _positive_steps(m, "every milestone")
        if milestones != sorted(set(milestones)):
            raise ValueError(_("milestones must be increasing step numbers, got {value!r}").format(value=milestones))
        self.milestones = [int(m) for m in milestones]
        self.factor = _fraction(factor, "factor")

    def rate(self, t):
        return self.lr * self.factor ** sum(m <= t for m in self.milestones)

    def __repr__(self):
        return f"StepDecay({self.lr:g}, milestones={self.milestones}, factor={self.factor:g})"


class Cosine(Schedule):
    """Cosine decay (Loshchilov & Hutter 2017, without restarts) from lr to `final` over `total` steps:

        η_t = final + (lr − final) · (1 + cos(π t / total)) / 2   for t ≤ total, then final.

    PyTorch: CosineAnnealingLR(opt, T_max=total, eta_min=final).
    """

    def __init__(self, lr, total, final=0.0):
        self.lr = _positive_number(lr, "lr")
        self.total = _positive_steps(total, "total")
        if isinstance(final, bool) or not isinstance(final, (int, float, np.integer, np.floating)) \
                or not 0 <= final < self.lr:
            raise ValueError(_("final must be a number in [0, lr) = [0, {lr:g}), got {value!r}")
                             .format(lr=self.lr, value=final))
        self.final = float(final)

    def rate(self, t):
        t = min(t, self.total)
        return self.final + (self.lr - self.final) * (1 + math.cos(math.pi * t / self.total)) / 2

    def __repr__(self):
        return f"Cosine({self.lr:g}, total={self.total}, final={self.final:g})"
