"""dtype handling shared by the layers: cast inputs and parameters to one dtype."""
import jax.numpy as jnp


def canonicalize_dtype(*args, dtype=None, inexact=True):
    if dtype is None:
        dtype = jnp.result_type(*[a for a in args if a is not None])
        if inexact and not jnp.issubdtype(dtype, jnp.inexact):
            dtype = jnp.promote_types(jnp.float32, dtype)
    return dtype


def promote_dtype(args, /, *, dtype=None, inexact=True):
    """Cast every non-None entry of `args` to `dtype`, or to their common dtype."""
    dtype = canonicalize_dtype(*args, dtype=dtype, inexact=inexact)
    return type(args)(None if a is None else jnp.asarray(a, dtype) for a in args)
