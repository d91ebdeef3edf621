"""Recurrent layers: a cell computes one time step `(carry, x) -> (carry, y)` (LSTMCell, GRUCell),
and RNN runs a cell over a sequence with `minnx.scan`, the cell and its carry being the loop carry."""
import jax
import jax.numpy as jnp

from ..module import Module
from ..rngs import RngStream, Rngs
from ..transforms import Carry, scan
from . import initializers
from .dtypes import promote_dtype as default_promote_dtype
from .errors import check_features, need_rngs
from .linear import Linear, default_kernel_init


def modified_orthogonal(key, shape, dtype=jnp.float32):
    """flax's LSTM recurrent initialiser: orthogonal drawn in float32, then cast (so bfloat16 works)."""
    return initializers.orthogonal()(key, shape).astype(dtype)


class RNNCellBase(Module):
    """What the cells share: settings, sub-Linears drawn from `rngs`, the checks, `initialize_carry`."""
    num_feature_axes = 1  # the trailing axes of an input that are features (1: a vector per step)
    carry_parts = 1  # GRU carries h; LSTM carries (c, h)

    def __init__(self, in_features: int, hidden_features: int, *, gate_fn=jax.nn.sigmoid,
                 activation_fn=jnp.tanh, kernel_init=default_kernel_init, recurrent_kernel_init=None,
                 bias_init=initializers.zeros_init(), dtype=None, param_dtype=jnp.float32, carry_init=None,
                 promote_dtype=default_promote_dtype, rngs=None):
        """`recurrent_kernel_init=None` is flax's default: LSTM modified_orthogonal, GRU orthogonal()."""
        name = type(self).__name__
        if rngs is None:
            raise need_rngs(name, f"{name}({in_features}, {hidden_features}, rngs=minnx.Rngs(0))")
        self.in_features, self.hidden_features = in_features, hidden_features
        self.gate_fn, self.activation_fn, self.carry_init = gate_fn, activation_fn, carry_init
        self.dtype, self.param_dtype, self.promote_dtype = dtype, param_dtype, promote_dtype
        dense = lambda n_in, n_out, init, use_bias: Linear(n_in, n_out, use_bias=use_bias, kernel_init=init,  # noqa
            bias_init=bias_init, dtype=dtype, param_dtype=param_dtype, promote_dtype=promote_dtype, rngs=rngs)
        self._build(dense, in_features, hidden_features, kernel_init, recurrent_kernel_init or self.default_recurrent_init)

    def _check(self, carry, inputs):
        name, hidden = type(self).__name__, self.hidden_features
        check_features(name, inputs, self.in_features, lambda got: (
            f"Build it as {name}({got}, {hidden}, ...) or reshape the input."))
        shapes = [tuple(jnp.shape(p)) for p in (carry if isinstance(carry, (tuple, list)) else (carry,))]
        if len(shapes) != self.carry_parts or any(s[-1:] != (hidden,) for s in shapes):
            what = "a tuple (c, h) of two arrays" if self.carry_parts == 2 else "one array h"
            raise ValueError(f"minnx.{name} expected as carry {what} with last axis {hidden} (hidden_features), "
                             f"got shape(s) {shapes}. Make it with cell.initialize_carry(x.shape, minnx.Rngs(0)), "
                             "x being one time step of the input.")

    def initialize_carry(self, input_shape, rngs=None, carry_init=None):
        """The starting carry for inputs of shape `input_shape` (batch..., features): zeros by default."""
        if rngs is None:
            raise ValueError(
                f"minnx.{type(self).__name__}.initialize_carry needs `rngs` (as in flax, even zeros draw a key): "
                "cell.initialize_carry(x.shape, minnx.Rngs(0)). RNN(..., rngs=False) needs rngs= or initial_carry=.")
        stream = rngs.carry if isinstance(rngs, Rngs) else rngs
        init = carry_init or self.carry_init or initializers.zeros_init()
        shape = (*input_shape[:-1], self.hidden_features)
        parts = [init(stream(), shape, self.param_dtype) for _ in range(self.carry_parts)]
        return tuple(parts) if self.carry_parts > 1 else parts[0]


class LSTMCell(RNNCellBase):
    """An LSTM step: gates i, f, g, o add input Linears `ii, if_, ig, io` to hidden ones `hi, hf, hg, ho`."""
    carry_parts, default_recurrent_init = 2, staticmethod(modified_orthogonal)

    def _build(self, dense, n_in, n, kernel_init, recurrent_init):  # carry (c, h), output h
        self.ii, self.if_, self.ig, self.io = (dense(n_in, n, kernel_init, False) for _ in range(4))
        self.hi, self.hf, self.hg, self.ho = (dense(n, n, recurrent_init, True) for _ in range(4))

    def __call__(self, carry, inputs):
        self._check(carry, inputs)
        c, h = carry
        i = self.gate_fn(self.ii(inputs) + self.hi(h))
        f = self.gate_fn(self.if_(inputs) + self.hf(h))
        g = self.activation_fn(self.ig(inputs) + self.hg(h))
        o = self.gate_fn(self.io(inputs) + self.ho(h))
        c = f * c + i * g
        h = o * self.activation_fn(c)
        return (c, h), h


class GRUCell(RNNCellBase):
    """A GRU step: `dense_i` (with bias) and `dense_h` (without) each give the r, z, n parts at once."""
    default_recurrent_init = staticmethod(initializers.orthogonal())

    def _build(self, dense, n_in, n, kernel_init, recurrent_init):  # carry h, output h
        self.dense_i = dense(n_in, 3 * n, kernel_init, True)
        self.dense_h = dense(n, 3 * n, recurrent_init, False)

    def __call__(self, carry, inputs):
        self._check(carry, inputs)
        x_r, x_z, x_n = jnp.split(self.dense_i(inputs), 3, axis=-1)
        h_r, h_z, h_n = jnp.split(self.dense_h(carry), 3, axis=-1)
        r, z = self.gate_fn(x_r + h_r), self.gate_fn(x_z + h_z)
        h = (1.0 - z) * self.activation_fn(x_n + r * h_n) + z * carry
        return h, h


def flip_sequences(x, seq_lengths, time_axis):
    """Reverse `x` in time; with `seq_lengths`, each sequence's first `length` steps only (padding stays last)."""
    if seq_lengths is None:
        return jnp.flip(x, time_axis)
    steps, lengths = x.shape[time_axis], jnp.expand_dims(seq_lengths, time_axis)
    t = jnp.arange(steps).reshape([-1 if i == time_axis else 1 for i in range(lengths.ndim)])
    index = (lengths - 1 - t) % steps
    return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - index.ndim)), time_axis)


class RNN(Module):
    """Applies a cell to every time step of `inputs` (batch..., time, features), or (time, batch...,
    features) if `time_major`; returns the outputs, and the final carry if `return_carry`."""

    def __init__(self, cell, *, time_major=False, return_carry=False, reverse=False, keep_order=False,
                 unroll=1, rngs=True):  # rngs: as flax, a 'carry' stream to draw initial carries from
        self.cell, self.time_major, self.return_carry = cell, time_major, return_carry
        self.reverse, self.keep_order, self.unroll = reverse, keep_order, unroll
        self.rngs = RngStream(0, tag="carry") if rngs is True else None if rngs is False else rngs.carry.fork()

    def __call__(self, inputs, *, initial_carry=None, seq_lengths=None, return_carry=None,
                 time_major=None, reverse=None, keep_order=None, rngs=None):
        pick = lambda given, default: default if given is None else given  # noqa: E731
        return_carry, time_major = pick(return_carry, self.return_carry), pick(time_major, self.time_major)
        reverse, keep_order = pick(reverse, self.reverse), pick(keep_order, self.keep_order)
        if (batch_dims := jnp.ndim(inputs) - self.cell.num_feature_axes - 1) < 0:
            raise ValueError(f"minnx.RNN expected inputs (batch..., time, features), got shape {jnp.shape(inputs)}."
                             " Add the time axis: x[:, None] is a batch of one-step sequences.")
        time_axis = 0 if time_major else batch_dims
        if reverse:
            inputs = flip_sequences(inputs, seq_lengths, time_axis)
        rngs = pick(rngs, self.rngs)
        rngs = rngs.carry.fork() if isinstance(rngs, Rngs) else rngs  # forked even if unused, as flax
        if initial_carry is None:
            initial_carry = self.cell.initialize_carry(inputs.shape[:time_axis] + inputs.shape[time_axis + 1:], rngs)
        every_carry = seq_lengths is not None and return_carry  # keep each step's, pick the last valid one

        def step(cell_and_carry, x):
            cell, carry = cell_and_carry
            carry, y = cell(carry, x)
            return (cell, carry), ((carry, y) if every_carry else y)
        (_, carry), outputs = scan(step, in_axes=(Carry, time_axis), unroll=self.unroll,
                                   out_axes=(Carry, (0, time_axis) if every_carry else time_axis)
                                   )((self.cell, initial_carry), inputs)
        if every_carry:
            carries, outputs = outputs
            carry = jax.tree.map(lambda c: c[seq_lengths - 1, jnp.arange(c.shape[1])], carries)
        if reverse and keep_order:
            outputs = flip_sequences(outputs, seq_lengths, time_axis)
        return (carry, outputs) if return_carry else outputs
