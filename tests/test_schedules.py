"""Learning-rate schedules: the formulas (PyTorch's LinearLR, MultiStepLR, CosineAnnealingLR
counted in optimizer steps), bad arguments, and bnlib.train taking a schedule and recording it."""
import math

import numpy as np
import pytest

import bnlib
from bnlib.schedules import as_schedule


def test_constant():
    s = bnlib.Constant(0.3)
    assert s(0) == s(1000) == 0.3 and repr(s) == "Constant(0.3)"


def test_warmup_climbs_linearly_then_hands_over():
    s = bnlib.Warmup(1.0, steps=4, start_factor=0.2)
    np.testing.assert_allclose(s.values(7), [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0])
    # in front of a decay: the warm-up factor multiplies the schedule after it
    w = bnlib.Warmup(bnlib.StepDecay(1.0, milestones=[2], factor=0.5), steps=4, start_factor=0.2)
    np.testing.assert_allclose(w.values(6), [0.2, 0.4, 0.3, 0.4, 0.5, 0.5])
    assert "Warmup(StepDecay(1" in repr(w)


def test_goyal_gradual_warmup_reaches_k_eta():
    """Goyal et al. 2017 §2.2: start at η, add a constant amount each step, reach k·η."""
    k, eta, n = 8, 0.1, 50
    s = bnlib.Warmup(k * eta, steps=n, start_factor=1 / k)
    v = s.values(n + 1)
    assert math.isclose(v[0], eta) and math.isclose(v[n], k * eta)
    np.testing.assert_allclose(np.diff(v[:n + 1]), (k * eta - eta) / n)


def test_step_decay():
    s = bnlib.StepDecay(0.5, milestones=[3, 5], factor=0.1)
    np.testing.assert_allclose(s.values(7), [0.5, 0.5, 0.5, 0.05, 0.05, 0.005, 0.005])


def test_cosine_matches_pytorch_closed_form():
    s = bnlib.Cosine(1.0, total=10, final=0.1)
    t = np.arange(13)
    want = 0.1 + 0.9 * (1 + np.cos(np.pi * np.minimum(t, 10) / 10)) / 2
    np.testing.assert_allclose(s.values(13), want)
    assert s(0) == 1.0 and math.isclose(s(5), 0.55) and s(12) == pytest.approx(0.1)


@pytest.mark.parametrize("make, match", [
    (lambda: bnlib.Constant(0), "lr must be positive"),
    (lambda: bnlib.Constant(float("nan")), "lr must be positive"),
    (lambda: bnlib.Warmup(0.1, steps=0), "whole number of steps"),
    (lambda: bnlib.Warmup(0.1, steps=10, start_factor=0), "start_factor"),
    (lambda: bnlib.Warmup(0.1, steps=10, start_factor=2), r"\(0, 1\]"),
    (lambda: bnlib.StepDecay(0.1, milestones=[5, 3]), "increasing"),
    (lambda: bnlib.StepDecay(0.1, milestones=[0]), "milestone"),
    (lambda: bnlib.StepDecay(0.1, milestones=[3], factor=1.5), "factor"),
    (lambda: bnlib.Cosine(0.1, total=10, final=0.2), "final"),
    (lambda: bnlib.Cosine(0.1, total=2.5), "total"),
    (lambda: bnlib.Constant(0.1)(-1), "step number"),
])
def test_bad_arguments_say_what_is_wrong(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_as_schedule():
    assert isinstance(as_schedule(0.1), bnlib.Constant)
    f = lambda t: 0.1                                   # noqa: E731 — any function of the step
    assert as_schedule(f) is f
    with pytest.raises(TypeError, match="number or a schedule"):
        as_schedule("0.1")


def test_train_takes_a_schedule_and_records_each_steps_rate():
    data = bnlib.load_digits()
    schedule = bnlib.Warmup(bnlib.Cosine(0.4, total=40), steps=10)
    h = bnlib.train(bnlib.MLP([64, 32, 10], norm="batch"), data, steps=40, batch_size=32, lr=schedule,
                    record_every=20, progress=False)
    np.testing.assert_allclose(h.lr, schedule.values(40))
    assert h.config["lr"] is schedule


def test_a_number_and_constant_train_the_same():
    data = bnlib.load_digits()
    runs = [bnlib.train(bnlib.MLP([64, 32, 10], norm="batch"), data, steps=30, batch_size=32, lr=lr,
                        record_every=30, progress=False) for lr in (0.2, bnlib.Constant(0.2), lambda t: 0.2)]
    for h in runs[1:]:
        np.testing.assert_array_equal(h.loss, runs[0].loss)
    np.testing.assert_array_equal(runs[0].lr, np.full(30, 0.2))


def test_schedule_that_breaks_mid_run_is_named():
    data = bnlib.load_digits()
    with pytest.raises(ValueError, match="at step 5"):
        bnlib.train(bnlib.MLP([64, 32, 10]), data, steps=10, batch_size=32, lr=lambda t: 0.1 if t < 5 else -1.0,
                    progress=False)
