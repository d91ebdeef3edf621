"""Recurrent layers: a cell computes one time step `(carry, x) -> (carry, y)` (LSTMCell,
GRUCell), and RNN runs a cell over a sequence with `minnx.scan`, carrying the cell and carry."""
import jax
import jax.numpy as jnp

from ..module import Module
from ..rngs import RngStream, Rngs
from ..transforms import Carry, scan
from . import initializers
from .dtypes import promote_dtype as default_promote_dtype
from .errors import check_features, check_rngs
from .linear import Linear, default_kernel_init

def modified_orthogonal(key, shape, dtype=jnp.float32):
    """flax's LSTM recurrent initialiser: orthogonal in float32, then cast (so bfloat16 works)."""
    return initializers.orthogonal()(key, shape).astype(dtype)

class RNNCellBase(Module):
    """What the cells share: settings, sub-Linears, the checks, `initialize_carry`."""
    num_feature_axes = 1  # the trailing axes of an input that are features (1: a vector per step)
    carry_parts = 1  # GRU carries h; LSTM carries (c, h)

    def __init__(self, in_features: int, hidden_features: int, *, gate_fn=jax.nn.sigmoid,
                 activation_fn=jnp.tanh, kernel_init=default_kernel_init,
                 recurrent_kernel_init=None, bias_init=initializers.zeros_init(), dtype=None,
                 param_dtype=jnp.float32, carry_init=None, promote_dtype=default_promote_dtype,
                 rngs=None):
        """`recurrent_kernel_init=None`: LSTM's modified_orthogonal, GRU's orthogonal(), as flax."""
        check_rngs(rngs, type(self).__name__, in_features, hidden_features)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn
        self.carry_init = carry_init
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.promote_dtype = promote_dtype

        def dense(n_in, n_out, init, use_bias):
            return Linear(n_in, n_out, use_bias=use_bias, kernel_init=init, bias_init=bias_init,
                          dtype=dtype, param_dtype=param_dtype, promote_dtype=promote_dtype,
                          rngs=rngs)
        recurrent_init = recurrent_kernel_init or self.default_recurrent_init
        self._build(dense, in_features, hidden_features, kernel_init, recurrent_init)

    def _check(self, carry, inputs):
        name = type(self).__name__
        hidden = self.hidden_features
        check_features(name, inputs, self.in_features, lambda got: (
            f"Build it as {name}({got}, {hidden}, ...) or reshape the input."))
        parts = carry if isinstance(carry, (tuple, list)) else (carry,)
        shapes = [tuple(jnp.shape(p)) for p in parts]
        if len(shapes) != self.carry_parts or any(s[-1:] != (hidden,) for s in shapes):
            what = "a tuple (c, h) of two arrays" if self.carry_parts == 2 else "one array h"
            raise ValueError(f"minnx.{name} expected as carry {what} with last axis {hidden} "
                             f"(hidden_features), got shape(s) {shapes}. Make it with "
                             "cell.initialize_carry(x.shape, minnx.Rngs(0)), x being one time "
                             "step of the input.")

    def initialize_carry(self, input_shape, rngs=None, carry_init=None):
        """The starting carry for inputs of shape (batch..., features): zeros by default."""
        if rngs is None:
            raise ValueError(f"minnx.{type(self).__name__}.initialize_carry needs `rngs` (as in "
                             "flax, zeros too draw a key): initialize_carry(shape, minnx.Rngs(0)). "
                             "RNN(..., rngs=False) needs rngs= or initial_carry=.")
        stream = rngs.carry if isinstance(rngs, Rngs) else rngs
        init = carry_init or self.carry_init or initializers.zeros_init()
        shape = (*input_shape[:-1], self.hidden_features)
        parts = [init(stream(), shape, self.param_dtype) for _ in range(self.carry_parts)]
        return tuple(parts) if self.carry_parts > 1 else parts[0]

class LSTMCell(RNNCellBase):
    """An LSTM step: gates i, f, g, o add input Linears `ii`... to hidden `hi`...; carry (c, h)."""
    carry_parts = 2
    default_recurrent_init = staticmethod(modified_orthogonal)

    def _build(self, dense, n_in, n, kernel_init, recurrent_init):
        self.ii = dense(n_in, n, kernel_init, False)
        self.if_ = dense(n_in, n, kernel_init, False)
        self.ig = dense(n_in, n, kernel_init, False)
        self.io = dense(n_in, n, kernel_init, False)
        self.hi = dense(n, n, recurrent_init, True)
        self.hf = dense(n, n, recurrent_init, True)
        self.hg = dense(n, n, recurrent_init, True)
        self.ho = dense(n, n, recurrent_init, True)

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
    """A GRU step: `dense_i` (with bias) and `dense_h` (without) each give the r, z, n parts."""
    default_recurrent_init = staticmethod(initializers.orthogonal())

    def _build(self, dense, n_in, n, kernel_init, recurrent_init):
        self.dense_i = dense(n_in, 3 * n, kernel_init, True)
        self.dense_h = dense(n, 3 * n, recurrent_init, False)

    def __call__(self, carry, inputs):
        self._check(carry, inputs)
        x_r, x_z, x_n = jnp.split(self.dense_i(inputs), 3, axis=-1)
        h_r, h_z, h_n = jnp.split(self.dense_h(carry), 3, axis=-1)
        r = self.gate_fn(x_r + h_r)
        z = self.gate_fn(x_z + h_z)
        h = (1.0 - z) * self.activation_fn(x_n + r * h_n) + z * carry
        return h, h

def flip_sequences(x, seq_lengths, time_axis):
    """Reverse `x` in time; with `seq_lengths`, only each sequence's steps (padding stays last)."""
    if seq_lengths is None:
        return jnp.flip(x, time_axis)
    lengths = jnp.expand_dims(seq_lengths, time_axis)
    t = jnp.arange(x.shape[time_axis])
    t = t.reshape([-1 if i == time_axis else 1 for i in range(lengths.ndim)])
    index = (lengths - 1 - t) % x.shape[time_axis]
    index = index.reshape(index.shape + (1,) * (x.ndim - index.ndim))
    return jnp.take_along_axis(x, index, time_axis)

class RNN(Module):
    """Runs a cell over the time axis of inputs (batch..., time, features) (time first if
    `time_major`); returns the outputs, and the final carry if `return_carry`."""
    def __init__(self, cell, *, time_major=False, return_carry=False, reverse=False,
                 keep_order=False, unroll=1, rngs=True):
        self.cell = cell
        self.time_major = time_major
        self.return_carry = return_carry
        self.reverse = reverse
        self.keep_order = keep_order
        self.unroll = unroll
        if rngs is True:  # as flax: a 'carry' stream to draw initial carries from
            self.rngs = RngStream(0, tag="carry")
        elif rngs is False:
            self.rngs = None
        else:
            self.rngs = rngs.carry.fork()

    def __call__(self, inputs, *, initial_carry=None, seq_lengths=None, return_carry=None,
                 time_major=None, reverse=None, keep_order=None, rngs=None):
        """The call's arguments override the constructor's (None: use the constructor's)."""
        return_carry = self.return_carry if return_carry is None else return_carry
        time_major = self.time_major if time_major is None else time_major
        reverse = self.reverse if reverse is None else reverse
        keep_order = self.keep_order if keep_order is None else keep_order
        rngs = self.rngs if rngs is None else rngs
        batch_dims = jnp.ndim(inputs) - self.cell.num_feature_axes - 1
        if batch_dims < 0:
            raise ValueError("minnx.RNN expected inputs (batch..., time, features), got shape "
                             f"{jnp.shape(inputs)}. Add the time axis: x[:, None] is a batch of "
                             "one-step sequences.")
        time_axis = 0 if time_major else batch_dims
        if reverse:
            inputs = flip_sequences(inputs, seq_lengths, time_axis)
        if isinstance(rngs, Rngs):
            rngs = rngs.carry.fork()  # forked even if unused, as flax does
        if initial_carry is None:
            step_shape = inputs.shape[:time_axis] + inputs.shape[time_axis + 1:]
            initial_carry = self.cell.initialize_carry(step_shape, rngs)
        every_carry = seq_lengths is not None and return_carry  # keep all, pick each last valid
        def step(cell_and_carry, x):
            cell, carry = cell_and_carry
            carry, y = cell(carry, x)
            return (cell, carry), ((carry, y) if every_carry else y)
        out_axes = (Carry, (0, time_axis) if every_carry else time_axis)
        scanned = scan(step, in_axes=(Carry, time_axis), out_axes=out_axes, unroll=self.unroll)
        (_, carry), outputs = scanned((self.cell, initial_carry), inputs)
        if every_carry:
            carries, outputs = outputs
            carry = jax.tree.map(lambda c: c[seq_lengths - 1, jnp.arange(c.shape[1])], carries)
        if reverse and keep_order:
            outputs = flip_sequences(outputs, seq_lengths, time_axis)
        return (carry, outputs) if return_carry else outputs
