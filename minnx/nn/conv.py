"""Conv and ConvTranspose: convolutions over channels-last inputs (NHWC, not PyTorch's NCHW)."""
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..variables import Param
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, check_rngs

default_kernel_init = initializers.lecun_normal()

def _per_axis(x, n):
    x = 1 if x is None else x
    return (x,) * n if isinstance(x, int) else tuple(x)

def _padding(padding, n):
    """A padding string as is; an int, or n ints / (low, high) pairs, as n (low, high) pairs."""
    if isinstance(padding, str):
        return padding
    pads = [padding] * n if isinstance(padding, int) else list(padding)
    pads = [(p, p) if isinstance(p, int) else tuple(p) for p in pads]
    if len(pads) != n or any(len(p) != 2 for p in pads):
        raise ValueError(f"Invalid padding {padding!r} for a {n}D convolution: use 'SAME', "
                         f"'VALID', 'CIRCULAR', an int, or {n} ints or (low, high) pairs.")
    return pads

class _ConvBase(Module):
    """What Conv and ConvTranspose share: settings (kept as flax does), the kernel and bias, the
    input check, folding the batch axes into one."""
    def __init__(self, in_features, out_features, kernel_size, strides, padding, kernel_dilation,
                 use_bias, mask, dtype, param_dtype, precision, kernel_init, bias_init,
                 promote_dtype, preferred_element_type, rngs, io):
        layer = type(self).__name__
        check_rngs(rngs, layer, in_features, out_features, kernel_size)
        self.in_features = in_features
        self.out_features = out_features
        self.kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = strides
        self.padding = padding
        self.kernel_dilation = kernel_dilation
        self.use_bias = use_bias
        self.mask = mask
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.promote_dtype = promote_dtype
        self.preferred_element_type = preferred_element_type
        self.kernel_shape = self.kernel_size + io
        if mask is not None and tuple(mask.shape) != self.kernel_shape:
            raise ValueError(f"minnx.{layer} got a mask of shape {tuple(mask.shape)}, but its "
                             f"kernel has shape {self.kernel_shape}: give it that shape.")
        self.kernel = Param(kernel_init(rngs.params(), self.kernel_shape, param_dtype))
        bias_shape = (out_features,)
        self.bias = Param(bias_init(rngs.params(), bias_shape, param_dtype)) if use_bias else None

    def _check(self, x, n):
        """Refuse inputs that are not (batch..., *spatial, in_features), pointing at NCHW."""
        layer = type(self).__name__
        layout = "N" + "DHW"[max(0, 3 - n):] + "C"
        if getattr(x, "ndim", 0) < n + 1:
            raise ValueError(f"minnx.{layer} with a {n}D kernel expected inputs {layout} (or "
                             f"{layout[1:]} for one example), got shape {getattr(x, 'shape', x)}.")
        b = x.ndim - n - 1  # the channel axis, if the input is channels-first
        fix = f"NNX wants channels last ({layout}), unlike PyTorch's N{layout[-1]}{layout[1:-1]}: "
        if x.shape[b] == self.in_features:
            order = (*range(b), *range(b + 1, x.ndim), b)
            fix += f"this input looks channels-first, so pass x.transpose{order}."
        elif self.in_features == 1:
            fix += "to add the missing channel axis, pass x[..., None]."
        else:
            fix += f"if the input is right, build the layer as {layer}({x.shape[-1]}, "
            fix += f"{self.out_features}, ...)."
        check_features(layer, x, self.in_features, lambda got: fix, axis_name="channel")

    def __call__(self, inputs):
        """Convolve `inputs` (batch..., *spatial, in_features); the batch axes are optional."""
        n = len(self.kernel_size)
        self._check(inputs, n)
        batch = inputs.shape[:inputs.ndim - n - 1]
        x = jnp.reshape(inputs, (-1,) + inputs.shape[len(batch):])  # one batch axis
        kernel = self.kernel[...]
        if self.mask is not None:
            kernel = kernel * self.mask
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, kernel, bias), dtype=self.dtype)
        y = self._conv(x, kernel, n)
        if bias is not None:
            y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
        return jnp.reshape(y, batch + y.shape[1:])

class Conv(_ConvBase):
    """Like `torch.nn.Conv2d` (or 1d, 3d) but channels last: inputs (N, *spatial, C)."""
    def __init__(self, in_features: int, out_features: int, kernel_size, strides=1, *,
                 padding="SAME", input_dilation=1, kernel_dilation=1,
                 feature_group_count: int = 1, use_bias: bool = True, mask=None, dtype=None,
                 param_dtype=jnp.float32, precision=None, kernel_init=default_kernel_init,
                 bias_init=initializers.zeros_init(),
                 conv_general_dilated=lax.conv_general_dilated, promote_dtype=promote_dtype,
                 preferred_element_type=None, rngs=None):
        if in_features % feature_group_count or out_features % feature_group_count:
            raise ValueError(f"minnx.Conv with feature_group_count={feature_group_count} needs "
                             f"in_features ({in_features}) and out_features ({out_features}) "
                             "to be multiples of it.")
        self.input_dilation = input_dilation
        self.feature_group_count = feature_group_count
        self.conv_general_dilated = conv_general_dilated
        io = (in_features // feature_group_count, out_features)
        super().__init__(in_features, out_features, kernel_size, strides, padding,
                         kernel_dilation, use_bias, mask, dtype, param_dtype, precision,
                         kernel_init, bias_init, promote_dtype, preferred_element_type, rngs, io)

    def _conv(self, x, kernel, n):
        dilation = _per_axis(self.kernel_dilation, n)
        pad = _padding(self.padding, n)
        if pad == "CAUSAL" and n != 1:
            raise ValueError(f"minnx.Conv: padding='CAUSAL' is for 1D convolutions, not {n}D ones.")
        if pad in ("CIRCULAR", "REFLECT", "CAUSAL"):  # pad by hand: wrap, mirror, zeros on the left
            span = [(k - 1) * d for k, d in zip(self.kernel_size, dilation)]
            pads = [(s // 2, (s + 1) // 2) for s in span]
            if pad == "CAUSAL":
                pads = [(s, 0) for s in span]
            mode = {"CIRCULAR": "wrap", "REFLECT": "reflect"}.get(pad, "constant")
            x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode)
            pad = "VALID"
        spec = (0, n + 1, *range(1, n + 1))  # x is (N, *spatial, C), the kernel (*spatial, I, O)
        numbers = lax.ConvDimensionNumbers(spec, (n + 1, n, *range(n)), spec)
        return self.conv_general_dilated(
            x, kernel, _per_axis(self.strides, n), pad,
            lhs_dilation=_per_axis(self.input_dilation, n), rhs_dilation=dilation,
            dimension_numbers=numbers, feature_group_count=self.feature_group_count,
            precision=self.precision, preferred_element_type=self.preferred_element_type)

class ConvTranspose(_ConvBase):
    """Like `torch.nn.ConvTranspose2d` (upsampling) but channels last, with lax's padding."""
    def __init__(self, in_features: int, out_features: int, kernel_size, strides=None, *,
                 padding="SAME", kernel_dilation=None, use_bias: bool = True, mask=None,
                 dtype=None, param_dtype=jnp.float32, precision=None,
                 kernel_init=default_kernel_init, bias_init=initializers.zeros_init(),
                 transpose_kernel: bool = False, promote_dtype=promote_dtype,
                 preferred_element_type=None, rngs=None):
        self.transpose_kernel = transpose_kernel
        io = (out_features, in_features) if transpose_kernel else (in_features, out_features)
        super().__init__(in_features, out_features, kernel_size, strides, padding,
                         kernel_dilation, use_bias, mask, dtype, param_dtype, precision,
                         kernel_init, bias_init, promote_dtype, preferred_element_type, rngs, io)

    def _conv(self, x, kernel, n):
        strides = _per_axis(self.strides, n)
        pad = _padding(self.padding, n)
        y = lax.conv_transpose(x, kernel, strides, "VALID" if pad == "CIRCULAR" else pad,
                               rhs_dilation=_per_axis(self.kernel_dilation, n),
                               transpose_kernel=self.transpose_kernel, precision=self.precision,
                               preferred_element_type=self.preferred_element_type)
        if pad != "CIRCULAR":
            return y
        # Fold the output onto periods of (input size * stride), summing the overlaps.
        periods = [size * s for size, s in zip(x.shape[1:-1], strides)]
        extra = [-(size - p) % (2 * p) for size, p in zip(y.shape[1:-1], periods)]
        if self.transpose_kernel:
            pads = [(e // 2, (e + 1) // 2) for e in extra]
        else:
            pads = [((e + 1) // 2, e // 2) for e in extra]
        y = jnp.pad(y, [(0, 0), *pads, (0, 0)])
        for axis, p in enumerate(periods, start=1):
            y = y.reshape(y.shape[:axis] + (-1, p) + y.shape[axis + 1:]).sum(axis=axis)
        return y
