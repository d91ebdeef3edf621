"""Pooling: slide a window over the spatial axes of a channels-last input and reduce each window
(max, min, mean). Plain functions, not layers: they have no parameters."""
import jax.numpy as jnp
import numpy as np
from jax import lax

def pool(inputs, init, reduce_fn, window_shape, strides, padding):
    """Reduce each window of `inputs` (batch..., *window, features) with `reduce_fn` from `init`."""
    n = len(window_shape) if isinstance(window_shape, (tuple, list)) else -1
    if strides is None:
        strides = (1,) * n
    strides = tuple(strides) if isinstance(strides, (tuple, list)) else None
    batch = inputs.ndim - n - 1
    if n < 0 or batch < 0 or strides is None or len(strides) != n:
        raise ValueError("pool expected inputs (batch..., *window axes, features) and "
                         "window_shape, strides as tuples like (2, 2), got inputs of shape "
                         f"{inputs.shape}, {window_shape=}, {strides=}.")
    if not isinstance(padding, str):
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        padding = ((0, 0),) * batch + pads + ((0, 0),)
    dims = (1,) * batch + tuple(window_shape) + (1,)
    strides = (1,) * batch + strides + (1,)
    return lax.reduce_window(inputs, init, reduce_fn, dims, strides, padding)

def avg_pool(inputs, window_shape, strides=None, padding="VALID", count_include_pad=True):
    """Mean over each window; `count_include_pad=False` leaves padded positions out of the count."""
    y = pool(inputs, 0.0, lax.add, window_shape, strides, padding)
    if count_include_pad:
        return y / np.prod(window_shape)
    # Count the real (unpadded) positions in each window of one example.
    real = jnp.ones(inputs.shape[inputs.ndim - len(window_shape) - 1:-1] + (1,))
    return y / pool(real, 0.0, lax.add, window_shape, strides, padding)

def max_pool(inputs, window_shape, strides=None, padding="VALID"):
    """Maximum over each window, like `torch.nn.MaxPool2d` but channels last."""
    return pool(inputs, -jnp.inf, lax.max, window_shape, strides, padding)

def min_pool(inputs, window_shape, strides=None, padding="VALID"):
    """Minimum over each window."""
    return pool(inputs, jnp.inf, lax.min, window_shape, strides, padding)
