"""Normalization layers: BatchNorm (over the batch, with running statistics in BatchStat
Variables), and LayerNorm, RMSNorm, GroupNorm (over each example), on shared helpers."""
import math

import jax
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..variables import BatchStat, Param
from . import initializers
from .dtypes import canonicalize_dtype, promote_dtype
from .errors import check_features, check_rngs

def _axes(ndim, axes):
    axes = (axes,) if isinstance(axes, int) else axes
    return tuple(sorted(a % ndim for a in axes))

def compute_stats(x, axes, dtype=None, use_fast_variance=True, mask=None, *, use_mean=True,
                  axis_name=None, axis_index_groups=None):
    """Mean and variance over `axes` (and over devices, with `axis_name`), in at least float32.
    With `use_mean=False` the mean is taken as 0: `var` is then the mean square (RMSNorm)."""
    dtype = jnp.promote_types(dtype or jnp.result_type(x), jnp.float32)
    x = jnp.asarray(x, dtype)
    axes = _axes(x.ndim, axes)
    def mean(*xs):
        means = [v.mean(axes, where=mask) for v in xs]
        if axis_name is None:
            return means
        return lax.pmean(means, axis_name, axis_index_groups=axis_index_groups)
    if not use_mean:
        (var,) = mean(x * x)
        return jnp.zeros_like(var), var
    if use_fast_variance:
        mu, mu2 = mean(x, x * x)
        return mu, jnp.maximum(0.0, mu2 - mu * mu)
    (mu,) = mean(x)
    return mu, mean((x - jnp.expand_dims(mu, axes)) ** 2)[0]

def normalize(x, mean, var, scale, bias, reduction_axes, feature_axes, dtype, epsilon):
    """`(x - mean) / sqrt(var + eps) * scale + bias`, shaped for broadcasting."""
    reduction_axes = _axes(x.ndim, reduction_axes)
    feature_axes = _axes(x.ndim, feature_axes)
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

def _param(init, num_features, param_dtype, use, rngs):
    """A Param of shape (num_features,) drawn by `init`, or None if not `use`."""
    return Param(init(rngs.params(), (num_features,), param_dtype)) if use else None

class _Norm(Module):
    """What the normalisation layers share: the settings below, the `scale` Param, a check."""
    def __init__(self, num_features, epsilon, dtype, param_dtype, use_scale, scale_init,
                 axis_name, axis_index_groups, use_fast_variance, promote_dtype, rngs):
        check_rngs(rngs, type(self).__name__, num_features)
        self.scale = _param(scale_init, num_features, param_dtype, use_scale, rngs)
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_scale = use_scale
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.use_fast_variance = use_fast_variance
        self.promote_dtype = promote_dtype

    def _check(self, x, axes):
        """Raise if the feature axes of `x` do not fit the scale/bias (`num_features` each)."""
        got = math.prod(x.shape[a] for a in _axes(x.ndim, axes))
        name = type(self).__name__
        has_params = self.scale is not None or getattr(self, "bias", None) is not None
        if got != self.num_features and has_params:
            raise ValueError(f"minnx.{name} expected {self.num_features} features on feature_axes="
                             f"{axes}, got an input of shape {x.shape}. Build it as {name}({got}, "
                             "...) or pass the right feature_axes.")

    def _stats(self, x, axes, mask, use_mean=True):
        return compute_stats(x, axes, self.dtype, self.use_fast_variance, mask, use_mean=use_mean,
                             axis_name=self.axis_name, axis_index_groups=self.axis_index_groups)

class BatchNorm(_Norm):
    """Normalise over the batch; keep running averages for eval mode (`model.eval()`)."""
    def __init__(self, num_features: int, *, use_running_average: bool = False, axis: int = -1,
                 momentum: float = 0.99, epsilon: float = 1e-5, dtype=None,
                 param_dtype=jnp.float32, use_bias: bool = True, use_scale: bool = True,
                 bias_init=initializers.zeros_init(), scale_init=initializers.ones_init(),
                 axis_name=None, axis_index_groups=None, use_fast_variance: bool = True,
                 promote_dtype=promote_dtype, rngs=None):
        self.mean = BatchStat(jnp.zeros((num_features,), jnp.float32))
        self.var = BatchStat(jnp.ones((num_features,), jnp.float32))
        super().__init__(num_features, epsilon, dtype, param_dtype, use_scale, scale_init,
                         axis_name, axis_index_groups, use_fast_variance, promote_dtype, rngs)
        self.bias = _param(bias_init, num_features, param_dtype, use_bias, rngs)
        self.num_features = num_features
        self.use_running_average = use_running_average
        self.axis = axis
        self.momentum = momentum
        self.use_bias = use_bias

    def set_view(self, use_running_average=None):  # what nnx.view(model, ...=True) sets
        if use_running_average is not None:
            self.use_running_average = use_running_average

    def __call__(self, x, use_running_average=None, *, mask=None):
        if x.shape[self.axis] != self.num_features:
            raise ValueError(f"minnx.BatchNorm expected {self.num_features} features on axis "
                             f"{self.axis}, got an input of shape {x.shape}. NNX puts features "
                             "(channels) last: shape (batch, ..., features).")
        if use_running_average is None:
            use_running_average = self.use_running_average
        feature_axes = _axes(x.ndim, self.axis)
        reduction_axes = tuple(i for i in range(x.ndim) if i not in feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, mean, var, scale, bias = self.promote_dtype(
            (x, self.mean[...], self.var[...], scale, bias), dtype=self.dtype)
        if not use_running_average:
            mean, var = self._stats(x, reduction_axes, mask)
            m = self.momentum
            self.mean[...] = jax.lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
            self.var[...] = jax.lax.stop_gradient(m * self.var[...] + (1 - m) * var)
        return normalize(x, mean, var, scale, bias, reduction_axes, feature_axes, self.dtype,
                         self.epsilon)

class LayerNorm(_Norm):
    """Normalise each example over `reduction_axes` (default: the features), scale and shift."""
    def __init__(self, num_features: int, *, epsilon: float = 1e-6, dtype=None,
                 param_dtype=jnp.float32, use_bias: bool = True, use_scale: bool = True,
                 bias_init=initializers.zeros_init(), scale_init=initializers.ones_init(),
                 reduction_axes=-1, feature_axes=-1, axis_name=None, axis_index_groups=None,
                 use_fast_variance: bool = True, promote_dtype=promote_dtype, rngs=None):
        super().__init__(num_features, epsilon, dtype, param_dtype, use_scale, scale_init,
                         axis_name, axis_index_groups, use_fast_variance, promote_dtype, rngs)
        self.bias = _param(bias_init, num_features, param_dtype, use_bias, rngs)
        self.num_features = num_features
        self.use_bias = use_bias
        self.reduction_axes = reduction_axes
        self.feature_axes = feature_axes

    def __call__(self, x, *, mask=None):
        self._check(x, self.feature_axes)
        scale, bias = (None if v is None else v[...] for v in (self.scale, self.bias))
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        mean, var = self._stats(x, self.reduction_axes, mask)
        return normalize(x, mean, var, scale, bias, self.reduction_axes, self.feature_axes,
                         self.dtype, self.epsilon)

class RMSNorm(_Norm):
    """LayerNorm without centring or bias: divide by the root mean square, then scale."""
    def __init__(self, num_features: int, *, epsilon: float = 1e-6, dtype=None,
                 param_dtype=jnp.float32, use_scale=True, scale_init=initializers.ones,
                 reduction_axes=-1, feature_axes=-1, axis_name=None, axis_index_groups=None,
                 use_fast_variance=True, promote_dtype=promote_dtype, rngs=None):
        super().__init__(num_features, epsilon, dtype, param_dtype, use_scale, scale_init,
                         axis_name, axis_index_groups, use_fast_variance, promote_dtype, rngs)
        self.num_features = num_features
        self.reduction_axes = reduction_axes
        self.feature_axes = feature_axes

    def __call__(self, x, mask=None):
        self._check(x, self.feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        x, scale = self.promote_dtype((x, scale), dtype=self.dtype)
        mean, var = self._stats(x, self.reduction_axes, mask, use_mean=False)
        return normalize(x, mean, var, scale, None, self.reduction_axes, self.feature_axes,
                         self.dtype, self.epsilon)

class GroupNorm(_Norm):
    """Split the (last-axis) features into groups; normalise each example over each group."""
    def __init__(self, num_features: int, num_groups: int | None = 32,
                 group_size: int | None = None, *, epsilon=1e-6, dtype=None,
                 param_dtype=jnp.float32, use_bias=True, use_scale=True, axis_name=None,
                 bias_init=initializers.zeros_init(), scale_init=initializers.ones_init(),
                 reduction_axes=None, axis_index_groups=None, use_fast_variance=True,
                 promote_dtype=promote_dtype, rngs=None):
        if (num_groups is None) == (group_size is None):
            raise ValueError(f"minnx.GroupNorm takes one of num_groups and group_size, got "
                             f"num_groups={num_groups}, group_size={group_size}. With group_size, "
                             "pass num_groups=None (it defaults to 32).")
        name, k = ("num_groups", num_groups) if group_size is None else ("group_size", group_size)
        if not isinstance(k, int) or k <= 0 or num_features % k:
            divisors = [d for d in range(1, num_features + 1) if num_features % d == 0]
            fits = max(d for d in divisors if d <= max(k, 1))
            raise ValueError(f"minnx.GroupNorm: {name}={k} does not divide num_features="
                             f"{num_features} into equal groups. Pick a {name} that divides "
                             f"{num_features}, e.g. {name}={fits}.")
        groups = num_groups or num_features // group_size
        check_rngs(rngs, "GroupNorm", num_features, num_groups=groups)
        self.feature_axis = -1
        self.num_groups = groups
        self.group_size = num_features // groups
        super().__init__(num_features, epsilon, dtype, param_dtype, use_scale, scale_init,
                         axis_name, axis_index_groups, use_fast_variance, promote_dtype, rngs)
        self.bias = _param(bias_init, num_features, param_dtype, use_bias, rngs)
        self.use_bias = use_bias
        self.reduction_axes = reduction_axes

    def __call__(self, x, *, mask=None):
        split = (self.num_groups, self.group_size)
        check_features("GroupNorm", x, math.prod(split), lambda got: (
            f"Build it as GroupNorm({got}, ...) or put the channels last."))
        default = [*range(1, x.ndim - 1), -1]
        axes = _axes(x.ndim, default if self.reduction_axes is None else self.reduction_axes)
        mask = None if mask is None else mask.reshape(mask.shape[:-1] + split)
        scale, bias = (None if v is None else v[...] for v in (self.scale, self.bias))
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        mean, var = self._stats(x.reshape(x.shape[:-1] + split), [*axes[:-1], -1], mask)
        # each feature gets its group's statistics
        mean, var = (jnp.repeat(s, self.group_size, axis=-1) for s in (mean, var))
        return normalize(x, mean, var, scale, bias, axes[:-1], (-1,), self.dtype, self.epsilon)
