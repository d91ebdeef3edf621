"""Grading for the exercises: checks that say in words whether an answer is right.

A check cell wraps what it runs in `with grading("hint"):` and tests each property with
`check(ok, good, bad)` (`close(got, expected)` compares arrays without raising):

    with grading("MLP(din, dmid, dout, rngs=...) must build; see exercise 1.1's text"):
        model = MLP(3, 8, 2, rngs=nnx.Rngs(0))
        check(model(x).shape == (5, 2), "the output has shape (5, 2).", "expected shape (5, 2).")

An exception raised by the learner's code inside the block prints a ❌ with the hint, never a
raw traceback. Under test (`COURSE_STRICT_CHECKS=1`, set by the test suite) every ❌ also raises
`CheckFailed`, so that a test run on minnx or on real flax sees a failed check.
"""
import os

import numpy as np


class CheckFailed(AssertionError):
    """A check printed ❌ while the course's tests were running (COURSE_STRICT_CHECKS=1)."""


def strict() -> bool:
    return os.environ.get("COURSE_STRICT_CHECKS") == "1"


def fail(message: str):
    """Print a ❌ with `message`; under test, raise CheckFailed."""
    print("❌ " + message)
    if strict():
        raise CheckFailed(message)


def check(ok, good: str, bad: str) -> bool:
    """Print ✅ `good` if `ok` is true, else ❌ `bad`. Returns `ok` as a bool."""
    if ok:
        print("✅ " + good)
        return True
    fail(bad)
    return False


class grading:
    """A block of checks: an exception from the learner's code becomes a ❌ with `hint`.

    The rest of the block is skipped after such an exception, and the notebook goes on."""

    def __init__(self, hint: str):
        self.hint = hint

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, traceback):
        if error is None or isinstance(error, CheckFailed):
            return False
        if isinstance(error, NotImplementedError):
            message = "not answered yet: write the part that raises NotImplementedError above."
        elif isinstance(error, NameError):
            message = (f"{_first_line(error)}: run the exercise's cells above first (a cell that "
                       f"raised stopped before defining it), or check the spelling.\n"
                       f"   hint: {self.hint}")
        else:
            message = (f"your code raised {error_type.__name__}: {_first_line(error)}\n"
                       f"   hint: {self.hint}")
        print("❌ " + message)
        if strict():
            raise CheckFailed(message) from error
        return True


def close(got, expected, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """True if `got` has `expected`'s shape and values (within `atol` + `rtol` * |expected|).

    Anything that is not array-like, or has another shape, gives False rather than an error, so
    a check can compare whatever the learner's code returned."""
    try:
        got, expected = np.asarray(got), np.asarray(expected)
        if got.shape != expected.shape or got.dtype == object:
            return False
        return bool(np.allclose(got, expected, atol=atol, rtol=rtol))
    except (TypeError, ValueError):
        return False


def _first_line(error) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else "(no message)"
    return first if len(first) <= 300 else first[:297] + "..."


class counting_calls:
    """Count the calls to `owner.name` inside the block (e.g. `nnx.vmap`), to check that an
    answer used the technique an exercise teaches:

        with counting_calls(nnx, "vmap") as calls:
            answer(model, x)
        check(calls.count > 0, "you used nnx.vmap.", "use nnx.vmap, not a Python loop.")
    """

    def __init__(self, owner, name: str):
        self.owner = owner
        self.name = name
        self.count = 0

    def __enter__(self):
        self.original = getattr(self.owner, self.name)
        original = self.original

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        setattr(self.owner, self.name, counted)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.original)
        return False
