"""Activations: plain functions from `jax.nn` (NNX has no activation Modules)."""
from jax.nn import (celu, elu, gelu, glu, hard_sigmoid, hard_silu, hard_swish, hard_tanh,
                    leaky_relu, log_sigmoid, log_softmax, logsumexp, one_hot, relu, relu6,
                    selu, sigmoid, silu, soft_sign, softmax, softplus, standardize, swish)
from jax.numpy import tanh
