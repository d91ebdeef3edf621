"""Errors the layers raise for a learner's common mistakes, worded the same way everywhere."""
import numpy as np

def check_rngs(rngs, layer: str, *args, **kwargs):
    """Raise if a layer got no `rngs=`, showing the call `layer(*args, **kwargs, rngs=...)`."""
    if rngs is None:
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        raise TypeError(f"minnx.{layer} needs `rngs=`: NNX makes parameters eagerly, in __init__. "
                        f"Write {layer}({', '.join(shown)}, rngs=minnx.Rngs(0)) or pass your rngs.")

class FeatureMismatchError(ValueError, TypeError):
    """An input whose feature axis does not fit the layer (flax raises TypeError from JAX)."""
def check_features(layer: str, x, expected: int, fix, axis_name: str = "feature"):
    """Raise if the last axis of `x` is not `expected`; `fix(got)` says what to write instead."""
    shape = np.shape(x)
    got = shape[-1] if shape else None
    if got != expected:
        raise FeatureMismatchError(
            f"minnx.{layer} expected inputs whose last axis ({axis_name}s) has size {expected}, "
            f"got an input of shape {tuple(shape)}. {fix(got)}")
