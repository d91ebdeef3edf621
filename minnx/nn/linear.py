"""Linear: `y = x @ kernel + bias`, with flax's initialisation (lecun_normal, zeros)."""
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..variables import Param
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, need_rngs

default_kernel_init = initializers.lecun_normal()


class Linear(Module):
    """A dense layer, like `torch.nn.Linear` but with the kernel stored as (in, out)."""

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True,
                 dtype=None, param_dtype=jnp.float32, precision=None,
                 kernel_init=default_kernel_init, bias_init=initializers.zeros_init(),
                 dot_general=lax.dot_general, promote_dtype=promote_dtype,
                 preferred_element_type=None, rngs=None):
        if rngs is None:
            raise need_rngs("Linear", f"Linear({in_features}, {out_features}, rngs=minnx.Rngs(0))")
        self.kernel = Param(kernel_init(rngs.params(), (in_features, out_features), param_dtype))
        self.bias = Param(bias_init(rngs.params(), (out_features,), param_dtype)) if use_bias else None
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.dot_general = dot_general
        self.promote_dtype = promote_dtype
        self.preferred_element_type = preferred_element_type

    def __call__(self, inputs):
        check_features("Linear", inputs, self.in_features, lambda got: (
            f"Build it as Linear({got}, {self.out_features}, ...) or reshape the input."))
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        y = self.dot_general(inputs, kernel, (((inputs.ndim - 1,), (0,)), ((), ())),
                             precision=self.precision, preferred_element_type=self.preferred_element_type)
        if bias is not None:
            y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
        return y
