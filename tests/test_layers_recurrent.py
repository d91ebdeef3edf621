"""The recurrent layers (LSTMCell, GRUCell, RNN) on minnx and flax.nnx side by side: the same
parameters from the same seed, the same steps, sequences, carries and gradients, and clear
errors."""

import warnings

import jax
import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx
from oracle import run_both

import minnx

X = jax.random.normal(jax.random.key(42), (2, 5, 3))  # (batch, time, features)
LENGTHS = jnp.array([3, 5])
CELLS = ["LSTMCell", "GRUCell"]


def make(nnx, cell, **kwargs):
    return getattr(nnx, cell)(3, 4, rngs=nnx.Rngs(0), **kwargs)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"kernel_init": jax.nn.initializers.xavier_uniform()},
        {"bias_init": jax.nn.initializers.normal(1.0)},
        {"gate_fn": jax.nn.hard_sigmoid, "activation_fn": jax.nn.relu},
    ],
)
def test_cell_parameters_and_one_step(cell, kwargs):
    def body(nnx):
        layer = make(nnx, cell, **kwargs)
        carry = layer.initialize_carry((2, 3), nnx.Rngs(1))
        new_carry, y = layer(carry, X[:, 0])
        unbatched = layer(layer.initialize_carry((3,), nnx.Rngs(1)), X[0, 0])
        return {
            "params": nnx.state(layer),
            "carry": carry,
            "step": [new_carry, y],
            "unbatched": unbatched,
            "axes": layer.num_feature_axes,
        }

    run_both(body)


def test_parameter_draw_order_continues_the_rngs():
    def body(nnx):
        rngs = nnx.Rngs(params=3)
        return [
            nnx.state(nnx.LSTMCell(2, 3, rngs=rngs)),
            nnx.state(nnx.GRUCell(2, 3, rngs=rngs)),
            nnx.Linear(2, 2, rngs=rngs).kernel,
        ]

    run_both(body)


@pytest.mark.parametrize("cell", CELLS)
def test_initialize_carry_draws_from_the_carry_stream(cell):
    def body(nnx):
        layer = make(nnx, cell)
        normal = jax.nn.initializers.normal(1.0)
        rngs = nnx.Rngs(carry=5)
        drawn = layer.initialize_carry((2, 7, 3), rngs, carry_init=normal)
        again = layer.initialize_carry((2, 7, 3), rngs.carry, carry_init=normal)
        return {
            "drawn": drawn,
            "again": again,
            "count": rngs.carry.count,
            "default_stream": layer.initialize_carry((3,), nnx.Rngs(2), carry_init=normal),
        }

    run_both(body)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"time_major": True},
        {"reverse": True},
        {"reverse": True, "keep_order": True},
        {"return_carry": True},
        {"unroll": 2},
    ],
)
def test_rnn_over_a_sequence(cell, kwargs):
    def body(nnx):
        rnn = nnx.RNN(make(nnx, cell), **kwargs)
        x = jnp.swapaxes(X, 0, 1) if kwargs.get("time_major") else X
        return {"out": rnn(x), "again": rnn(x), "state": nnx.state(rnn)}  # the 'carry' count moves

    run_both(body)


@pytest.mark.parametrize("cell", CELLS)
def test_rnn_call_time_options_override_the_constructor(cell):
    def body(nnx):
        rnn = nnx.RNN(make(nnx, cell), reverse=True, return_carry=True)
        return [
            rnn(X, reverse=False),
            rnn(X, return_carry=False, keep_order=True),
            rnn(jnp.swapaxes(X, 0, 1), time_major=True),
        ]

    run_both(body)


@pytest.mark.parametrize("cell", CELLS)
def test_rnn_explicit_initial_carry_and_rngs(cell):
    def body(nnx):
        layer = make(nnx, cell)
        rnn = nnx.RNN(layer, return_carry=True, rngs=nnx.Rngs(carry=7))
        carry = layer.initialize_carry(
            (2, 3), nnx.Rngs(1), carry_init=jax.nn.initializers.normal(1.0)
        )
        rngs = nnx.Rngs(3)
        return {
            "explicit": rnn(X, initial_carry=carry),
            "call_rngs": rnn(X, rngs=rngs),
            "both": rnn(X, initial_carry=carry, rngs=rngs),
            "rngs_after": nnx.state(rngs),
            "state": nnx.state(rnn),
            "no_rngs": nnx.RNN(layer, rngs=False)(X, initial_carry=carry),
        }

    run_both(body)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"return_carry": True},
        {"reverse": True, "return_carry": True},
        {"reverse": True, "keep_order": True},
        {"reverse": True, "keep_order": True, "time_major": True},
    ],
)
def test_rnn_seq_lengths(cell, kwargs):
    def body(nnx):
        rnn = nnx.RNN(make(nnx, cell), **kwargs)
        x = jnp.swapaxes(X, 0, 1) if kwargs.get("time_major") else X
        return rnn(x, seq_lengths=LENGTHS)

    run_both(body)


def test_stacked_rnns_in_a_module_under_jit():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                self.lstm = nnx.RNN(nnx.LSTMCell(3, 4, rngs=rngs))
                self.gru = nnx.RNN(nnx.GRUCell(4, 2, rngs=rngs), reverse=True, keep_order=True)

            def __call__(self, x):
                return self.gru(self.lstm(x))

        model = Model(nnx.Rngs(0))
        forward = nnx.jit(lambda m, x: m(x))
        return {
            "jit": [forward(model, X), forward(model, X)],
            "eager": model(X),
            "state": nnx.state(model),
        }

    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_rnn(cell):
    def body(nnx):
        rnn = nnx.RNN(make(nnx, cell), return_carry=True)

        def loss(rnn, x):
            carry, y = rnn(x)
            return jnp.mean(y**2) + jnp.sum(jax.tree.leaves(carry)[0])

        grads = nnx.grad(loss)(rnn, X)
        value, jit_grads = nnx.jit(nnx.value_and_grad(loss))(rnn, X)
        return {"grads": grads, "jit": [value, jit_grads], "state": nnx.state(rnn)}

    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": jnp.bfloat16},
        {"param_dtype": jnp.bfloat16},
        {"dtype": jnp.bfloat16, "param_dtype": jnp.bfloat16},
    ],
)
def test_lstm_bfloat16(kwargs):
    def body(nnx):
        rnn = nnx.RNN(make(nnx, "LSTMCell", **kwargs), return_carry=True)
        x = X.astype(jnp.bfloat16) if "param_dtype" in kwargs else X  # the carry has param_dtype
        return {"params": nnx.state(rnn), "out": rnn(x)}

    run_both(body, rtol=2e-2, atol=2e-2)


def test_gru_bfloat16_compute():
    def body(nnx):
        rnn = nnx.RNN(make(nnx, "GRUCell", dtype=jnp.bfloat16))
        return {"params": nnx.state(rnn), "out": rnn(X)}

    run_both(body, rtol=2e-2, atol=2e-2)


def test_gru_bfloat16_params_fail_in_the_orthogonal_initializer_as_in_flax():
    for nnx in (
        minnx,
        flax_nnx,
    ):  # jax's orthogonal() has no bfloat16 QR; LSTM's modified_orthogonal has
        with pytest.raises(NotImplementedError):
            make(nnx, "GRUCell", param_dtype=jnp.bfloat16)
    layer = make(
        minnx,
        "GRUCell",
        param_dtype=jnp.bfloat16,
        recurrent_kernel_init=minnx.nn.recurrent.modified_orthogonal,
    )
    assert layer.dense_h.kernel.dtype == jnp.bfloat16


# -- errors -------------------------------------------------------------------------------
def _both_raise(make_error, minnx_error, match, flax_error=Exception):
    with pytest.raises(minnx_error, match=match):
        make_error(minnx)
    with warnings.catch_warnings(), pytest.raises(flax_error):
        warnings.simplefilter("ignore")
        make_error(flax_nnx)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_without_rngs(cell):
    _both_raise(
        lambda nnx: getattr(nnx, cell)(3, 4),
        TypeError,
        rf"minnx.{cell} needs `rngs=`.*{cell}\(3, 4, rngs=",
    )


@pytest.mark.parametrize("cell", CELLS)
def test_input_features_do_not_fit_the_cell(cell):
    x = jnp.ones((2, 5, 6))
    _both_raise(
        lambda nnx: nnx.RNN(make(nnx, cell))(x),
        ValueError,
        rf"minnx.{cell} expected inputs whose last axis \(features\) has size 3.*shape \(2, 6\).*"
        rf"{cell}\(6, 4",
    )


@pytest.mark.parametrize("cell", CELLS)
def test_carry_of_the_wrong_shape(cell):
    carry = (jnp.zeros((2, 5)), jnp.zeros((2, 5))) if cell == "LSTMCell" else jnp.zeros((2, 5))
    _both_raise(
        lambda nnx: make(nnx, cell)(carry, X[:, 0]),
        ValueError,
        rf"minnx.{cell} expected as carry .*last axis 4.*\(2, 5\).*initialize_carry",
    )
    _both_raise(
        lambda nnx: nnx.RNN(make(nnx, cell))(X, initial_carry=carry),
        ValueError,
        rf"minnx.{cell} expected as carry",
    )


def test_lstm_carry_must_be_a_pair():
    layer = make(minnx, "LSTMCell")
    with pytest.raises(ValueError, match=r"carry a tuple \(c, h\).*got shape\(s\) \[\(2, 4\)\]"):
        layer(jnp.zeros((2, 4)), X[:, 0])  # flax would unpack the batch axis as (c, h) and go on


def test_initialize_carry_needs_rngs():
    _both_raise(
        lambda nnx: make(nnx, "GRUCell").initialize_carry((2, 3)),
        ValueError,
        r"initialize_carry needs `rngs`.*minnx.Rngs\(0\)",
    )
    _both_raise(
        lambda nnx: nnx.RNN(make(nnx, "GRUCell"), rngs=False)(X),
        ValueError,
        r"rngs=False\) needs rngs= or initial_carry=",
    )


def test_rnn_input_without_a_time_axis():
    with pytest.raises(
        ValueError,
        match=r"minnx.RNN expected inputs \(batch..., time, features\), got shape \(3,\)",
    ):
        minnx.RNN(make(minnx, "LSTMCell"))(jnp.ones(3))
    with pytest.raises(Exception):
        flax_nnx.RNN(make(flax_nnx, "LSTMCell"))(jnp.ones(3))
