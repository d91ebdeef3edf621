"""Linear: `y = x @ kernel + bias` (lecun_normal, zeros); LinearGeneral: over several axes."""
import math
from types import MappingProxyType

import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..variables import Param
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, check_rngs

default_kernel_init = initializers.lecun_normal()

class Linear(Module):
    """A dense layer, like `torch.nn.Linear` but with the kernel stored as (in, out)."""
    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True,
                 dtype=None, param_dtype=jnp.float32, precision=None,
                 kernel_init=default_kernel_init, bias_init=initializers.zeros_init(),
                 dot_general=lax.dot_general, promote_dtype=promote_dtype,
                 preferred_element_type=None, rngs=None):
        check_rngs(rngs, "Linear", in_features, out_features)
        self.kernel = Param(kernel_init(rngs.params(), (in_features, out_features), param_dtype))
        bias = Param(bias_init(rngs.params(), (out_features,), param_dtype)) if use_bias else None
        self.bias = bias
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
        args = (inputs, self.kernel[...], bias)
        inputs, kernel, bias = self.promote_dtype(args, dtype=self.dtype)
        contract = (((inputs.ndim - 1,), (0,)), ((), ()))
        y = self.dot_general(inputs, kernel, contract, precision=self.precision,
                             preferred_element_type=self.preferred_element_type)
        if bias is not None:
            y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
        return y

def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)

class LinearGeneral(Module):
    """Contracts input axes `axis` with a kernel (*batch sizes, *in_features, *out_features)."""
    def __init__(self, in_features, out_features, *, axis=-1, batch_axis=MappingProxyType({}),
                 use_bias=True, dtype=None, param_dtype=jnp.float32,
                 kernel_init=default_kernel_init, bias_init=initializers.zeros_init(),
                 precision=None, promote_dtype=promote_dtype, dot_general=None,
                 preferred_element_type=None, rngs=None):
        self.in_features = _tuple(in_features)
        self.out_features = _tuple(out_features)
        self.axis = _tuple(axis)
        check_rngs(rngs, "LinearGeneral", in_features, out_features)
        n = len(self.in_features)
        if n != len(self.axis):
            raise ValueError(
                "minnx.LinearGeneral contracts one input axis per entry of in_features, got "
                f"in_features={self.in_features} and axis={self.axis}. Give both the same length, "
                f"e.g. axis={tuple(range(-n, 0))} for the last {n} axes.")
        if batch_axis and sorted(batch_axis) != list(range(len(batch_axis))):
            raise ValueError("minnx.LinearGeneral: batch_axis must map the leading axes 0, 1, ... "
                             f"to their sizes, got {dict(batch_axis)}. Move the batch axes to the "
                             "front of the input.")
        batch = tuple(batch_axis.values())
        # Draw a 2-D (fan_in, fan_out) matrix, then reshape, so that fan_in/fan_out are flax's.
        shape = (*batch, *self.in_features, *self.out_features)
        flat = (math.prod(shape[:len(batch) + n]), math.prod(self.out_features))
        self.kernel = Param(kernel_init(rngs.params(), flat, param_dtype).reshape(shape))
        bias_shape = (*batch, *self.out_features)
        bias = bias_init(rngs.params(), (math.prod(bias_shape),), param_dtype) if use_bias else None
        self.bias = Param(bias.reshape(bias_shape)) if use_bias else None
        self.batch_axis = dict(batch_axis)
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.dot_general = dot_general
        self.promote_dtype = promote_dtype
        self.preferred_element_type = preferred_element_type

    def __call__(self, inputs):
        ndim = inputs.ndim
        nb = len(self.batch_axis)
        axis = tuple(sorted(a + ndim if a < 0 else a for a in self.axis))
        want = {**self.batch_axis, **dict(zip(axis, self.in_features))}
        got = {a: inputs.shape[a] if 0 <= a < ndim else None for a in want}
        if got != want:
            fix = f"Give axes that a {ndim}-d input has, or reshape the input"
            if None not in got.values():
                fix = (f"Build it with in_features={tuple(got[a] for a in axis)} "
                       f"(axis={self.axis}) or reshape the input")
            raise ValueError(f"minnx.LinearGeneral expected these {{axis: size}} in its input: "
                             f"{want}, got an input of shape {inputs.shape}. {fix}.")
        # The output is (*batch axes, *the input's other axes, *out_features).
        bias_shape = [inputs.shape[a] if a < nb else 1 for a in range(ndim) if a not in axis]
        bias = self.bias[...] if self.bias is not None else None
        args = (inputs, self.kernel[...], bias)
        inputs, kernel, bias = self.promote_dtype(args, dtype=self.dtype)
        extra = {}
        if self.preferred_element_type is not None:
            extra["preferred_element_type"] = self.preferred_element_type
        batch = tuple(range(nb))
        contract = tuple(range(nb, nb + len(axis)))
        dot_general = self.dot_general or lax.dot_general
        out = dot_general(inputs, kernel, ((axis, contract), (batch, batch)),
                          precision=self.precision, **extra)
        if bias is None:
            return out
        return out + bias.reshape(bias_shape + [*self.out_features])
