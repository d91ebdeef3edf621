"""Normalization layers. BatchNorm keeps running statistics in BatchStat Variables."""
import jax
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..variables import BatchStat, Param
from . import initializers
from .dtypes import canonicalize_dtype, promote_dtype
from .errors import need_rngs


def _axes(ndim, axes):
    axes = (axes,) if isinstance(axes, int) else axes
    return tuple(sorted(a % ndim for a in axes))


def compute_stats(x, axes, dtype=None, use_fast_variance=True, mask=None):
    """Mean and variance over `axes`, in at least float32."""
    dtype = jnp.promote_types(dtype or jnp.result_type(x), jnp.float32)
    x = jnp.asarray(x, dtype)
    axes = _axes(x.ndim, axes)
    mean = x.mean(axes, where=mask)
    if use_fast_variance:
        var = jnp.maximum(0.0, (x * x).mean(axes, where=mask) - mean * mean)
    else:
        var = ((x - jnp.expand_dims(mean, axes)) ** 2).mean(axes, where=mask)
    return mean, var


def normalize(x, mean, var, scale, bias, reduction_axes, feature_axes, dtype, epsilon):
    """`(x - mean) / sqrt(var + eps) * scale + bias`, shaped for broadcasting."""
    reduction_axes, feature_axes = _axes(x.ndim, reduction_axes), _axes(x.ndim, feature_axes)
    stats_shape = [1 if i in reduction_axes else d for i, d in enumerate(x.shape)]
    feature_shape = [x.shape[i] if i in feature_axes else 1 for i in range(x.ndim)]
    y = x - mean.reshape(stats_shape)
    mul = lax.rsqrt(var.reshape(stats_shape) + epsilon)
    args = [x]
    if scale is not None:
        scale = scale.reshape(feature_shape)
        mul *= scale
        args.append(scale)
    y *= mul
    if bias is not None:
        bias = bias.reshape(feature_shape)
        y += bias
        args.append(bias)
    return jnp.asarray(y, canonicalize_dtype(*args, dtype=dtype))


class BatchNorm(Module):
    """Normalise over the batch; keep running averages for eval mode (`model.eval()`)."""

    def __init__(self, num_features: int, *, use_running_average: bool = False, axis: int = -1,
                 momentum: float = 0.99, epsilon: float = 1e-5, dtype=None, param_dtype=jnp.float32,
                 use_bias: bool = True, use_scale: bool = True,
                 bias_init=initializers.zeros_init(), scale_init=initializers.ones_init(),
                 axis_name=None, axis_index_groups=None, use_fast_variance: bool = True,
                 promote_dtype=promote_dtype, rngs=None):
        if rngs is None:
            raise need_rngs("BatchNorm", f"BatchNorm({num_features}, rngs=minnx.Rngs(0))")
        shape = (num_features,)
        self.mean = BatchStat(jnp.zeros(shape, jnp.float32))
        self.var = BatchStat(jnp.ones(shape, jnp.float32))
        self.scale = Param(scale_init(rngs.params(), shape, param_dtype)) if use_scale else None
        self.bias = Param(bias_init(rngs.params(), shape, param_dtype)) if use_bias else None
        self.num_features = num_features
        self.use_running_average = use_running_average
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_bias = use_bias
        self.use_scale = use_scale
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.use_fast_variance = use_fast_variance
        self.promote_dtype = promote_dtype

    def __call__(self, x, use_running_average=None, *, mask=None):
        if x.shape[self.axis] != self.num_features:
            raise ValueError(
                f"minnx.BatchNorm expected {self.num_features} features on axis {self.axis}, got an input of "
                f"shape {x.shape}. NNX puts features (channels) last: shape (batch, ..., features).")
        use_running_average = self.use_running_average if use_running_average is None else use_running_average
        feature_axes = _axes(x.ndim, self.axis)
        reduction_axes = tuple(i for i in range(x.ndim) if i not in feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, mean, var, scale, bias = self.promote_dtype(
            (x, self.mean[...], self.var[...], scale, bias), dtype=self.dtype)
        if not use_running_average:
            mean, var = compute_stats(x, reduction_axes, self.dtype, self.use_fast_variance, mask)
            if self.axis_name is not None:
                mean, var = lax.pmean((mean, var), self.axis_name, axis_index_groups=self.axis_index_groups)
            m = self.momentum
            self.mean[...] = jax.lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
            self.var[...] = jax.lax.stop_gradient(m * self.var[...] + (1 - m) * var)
        return normalize(x, mean, var, scale, bias, reduction_axes, feature_axes, self.dtype, self.epsilon)
