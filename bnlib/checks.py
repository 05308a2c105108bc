"""Learner-facing checks: exercises that answer ✓ or give a hint, and claims that must hold.

    check(answer, expected, "μ of the batch", wrong=[(answer_with_n_minus_1, "divide by N, not N−1")])
    claim(bn_acc > plain_acc + 0.2, "BN is far ahead at step 100")

An exercise left as `...` (or None) is reported as not attempted and does not raise, so a
notebook runs top to bottom before the learner has written anything.
"""
import numpy as np

from .i18n import _


class NotYet(AssertionError):
    """A wrong answer to an exercise; the message is the hint."""


class ClaimFailed(AssertionError):
    """Something a notebook says about batch norm did not hold on this run."""


def _close(a, b, rtol, atol):
    try:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _shape_hint(got, want):
    if len(got) == len(want) + 1 and 1 in got:
        return _("your answer has an extra axis of length 1 (drop keepdims=True, or use .ravel())")
    if len(got) > len(want):
        return _("your answer has more axes than expected: did you forget to average or sum over an axis?")
    if len(got) < len(want):
        return _("your answer has fewer axes than expected: did you reduce over an axis you should keep?")
    return _("check which axis you reduced over (axis=0 runs over the batch: one value per feature/column)")


def check(answer, expected, name, wrong=(), rtol=1e-4, atol=1e-6):
    """Compare a learner's answer with the expected value.

    wrong: (wrong_value, hint) pairs for the usual mistakes; an answer matching one of them
    raises NotYet with its hint. Returns True when correct, False when not attempted.
    """
    if answer is None or answer is Ellipsis:
        print(_("… {name}: not attempted yet — replace the ... with your answer and run the cell again")
              .format(name=name))
        return False
    if isinstance(answer, (str, bytes)):          # numpy would quietly turn "75" into 75
        raise NotYet(_("{name}: not yet — your answer {answer} is text (a string), not a number. "
                       "Remove the quotes, or let Python compute it (for example with np.mean)")
                     .format(name=name, answer=repr(answer)))
    if _close(answer, expected, rtol, atol):
        print(_("✓ {name}: correct").format(name=name))
        return True
    a_shape, e_shape = np.shape(answer), np.shape(expected)
    if a_shape != e_shape:
        raise NotYet(_("{name}: expected shape {expected}, got {got} — {hint}")
                     .format(name=name, expected=e_shape, got=a_shape, hint=_shape_hint(a_shape, e_shape)))
    for value, hint in wrong:
        if _close(answer, value, rtol, atol):
            raise NotYet(_("{name}: not yet — {hint}").format(name=name, hint=hint))
    try:
        diff = np.asarray(answer, dtype=np.float64) - np.asarray(expected, dtype=np.float64)
        if diff.size == 1:                       # for one number, how far off would give it away
            detail = _("your answer is too high") if diff.item() > 0 else _("your answer is too low")
        else:
            detail = _("{share:.0%} of the values differ from the correct ones").format(
                share=np.mean(~np.isclose(diff, 0, rtol=0, atol=atol)))
    except (TypeError, ValueError):
        detail = _("your answer is a {type}, not a number or array").format(type=type(answer).__name__)
    # neither the expected value nor the distance to it is shown: either would give the answer away
    raise NotYet(_("{name}: not yet — {detail}; re-read the instructions and try again")
                 .format(name=name, detail=detail))


def claim(condition, statement, detail=""):
    """A self-check: print ✓ and the statement if it holds, raise ClaimFailed if it does not."""
    line = _("{statement} ({detail})").format(statement=statement, detail=detail) if detail else statement
    if not condition:
        raise ClaimFailed(_("claim did not hold: {line}").format(line=line))
    print(f"✓ {line}")
