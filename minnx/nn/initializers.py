"""Initializers: functions `(key, shape, dtype) -> array`, JAX's own, under flax's names."""
from jax.nn.initializers import (Initializer, constant, delta_orthogonal,  # noqa: F401
                                 glorot_normal, glorot_uniform, he_normal, he_uniform,
                                 kaiming_normal, kaiming_uniform, lecun_normal, lecun_uniform,
                                 normal, ones, orthogonal, truncated_normal, uniform,
                                 variance_scaling, xavier_normal, xavier_uniform, zeros)

def zeros_init():
    """flax's name for the `zeros` initializer."""
    return zeros

def ones_init():
    """flax's name for the `ones` initializer."""
    return ones
