"""Errors the layers raise for a learner's common mistakes, worded the same way everywhere."""


def need_rngs(layer: str, example: str) -> TypeError:
    return TypeError(
        f"minnx.{layer} needs `rngs=` to draw its initial parameters: NNX creates parameters eagerly, "
        f"in __init__, from an explicit random key. Write {example}, or pass the `rngs` your Module "
        "received.")


def check_features(layer: str, x, expected: int, fix=lambda got: "", axis_name: str = "feature"):
    """Raise if the last axis of `x` is not `expected`; `fix(got)` says what to write instead."""
    got = x.shape[-1] if getattr(x, "ndim", 0) else None
    if got != expected:
        raise ValueError(
            f"minnx.{layer} expected inputs whose last axis ({axis_name}s) has size {expected}, got an input of "
            f"shape {tuple(getattr(x, 'shape', ()))}. {fix(got)}".rstrip())
