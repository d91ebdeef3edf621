"""dtype handling shared by the layers: cast inputs and parameters to one dtype."""
import jax.numpy as jnp

def canonicalize_dtype(*args, dtype=None, inexact=True):
    """`dtype` if given, else the common dtype of `args` (a float type if `inexact`)."""
    if dtype is None:
        arrays = [jnp.asarray(x) for x in args if x is not None]
        dtype = jnp.result_type(*arrays)
        if inexact and not jnp.issubdtype(dtype, jnp.inexact):
            dtype = jnp.promote_types(jnp.float32, dtype)
    if inexact and not jnp.issubdtype(dtype, jnp.inexact):
        raise ValueError(f"Dtype must be inexact: {dtype}")
    return dtype

def promote_dtype(args, /, *, dtype=None, inexact=True):
    """Cast every non-None entry of `args` (arrays, or lists of numbers) to one dtype."""
    dtype = canonicalize_dtype(*args, dtype=dtype, inexact=inexact)
    return tuple(None if x is None else jnp.asarray(x, dtype) for x in args)
