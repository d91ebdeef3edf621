"""The core layers (Linear, Dropout, BatchNorm) on minnx and flax.nnx side by side: the same
parameters from the same seed, the same outputs in train and eval mode, dtypes included."""

import jax
import jax.numpy as jnp
import pytest
from oracle import run_both

X = jax.random.normal(jax.random.key(42), (6, 5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"use_bias": False},
        {"dtype": jnp.bfloat16},
        {"param_dtype": jnp.bfloat16},
        {"kernel_init": jax.nn.initializers.xavier_uniform()},
    ],
)
def test_linear(kwargs):
    def body(nnx):
        layer = nnx.Linear(5, 3, rngs=nnx.Rngs(0), **kwargs)
        return {"params": nnx.state(layer), "y": layer(X), "y3d": layer(X.reshape(2, 3, 5))}

    run_both(body, rtol=1e-2 if kwargs.get("dtype") or kwargs.get("param_dtype") else 1e-6)


def test_linear_initial_kernel_is_flaxs_lecun_normal_draw():
    def body(nnx):
        rngs = nnx.Rngs(0)
        return [nnx.Linear(2, 3, rngs=rngs).kernel, nnx.Linear(2, 3, rngs=rngs).kernel]

    run_both(body)


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_dropout(rate):
    def body(nnx):
        layer = nnx.Dropout(rate, rngs=nnx.Rngs(dropout=3))
        a, b = layer(X), layer(X)
        det = layer(X, deterministic=True)
        layer.eval()
        return {"a": a, "b": b, "det": det, "eval": layer(X)}

    run_both(body)


def test_dropout_broadcast_dims_and_call_time_rngs():
    def body(nnx):
        layer = nnx.Dropout(0.5, broadcast_dims=(0,))
        return [layer(X, rngs=nnx.Rngs(dropout=1)), layer(X, rngs=nnx.Rngs(2))]

    run_both(body)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.5, "epsilon": 1e-3},
        {"use_bias": False, "use_scale": False},
        {"use_fast_variance": False},
    ],
)
def test_batchnorm_train_and_eval(kwargs):
    def body(nnx):
        layer = nnx.BatchNorm(5, rngs=nnx.Rngs(0), **kwargs)
        train = [layer(X), layer(X * 2 + 1)]
        stats = nnx.state(layer, nnx.BatchStat)
        layer.eval()
        return {
            "train": train,
            "stats": stats,
            "eval": layer(X),
            "params": nnx.state(layer, nnx.Param),
            "explicit": layer(X, use_running_average=False),
        }

    run_both(body, rtol=1e-5, atol=1e-5)


def test_batchnorm_on_images_channels_last():
    def body(nnx):
        layer = nnx.BatchNorm(3, rngs=nnx.Rngs(0))
        x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
        return {"y": layer(x), "stats": nnx.state(layer, nnx.BatchStat)}

    run_both(body, rtol=1e-5, atol=1e-5)


def test_activations_are_jax_nn():
    def body(nnx):
        return [
            f(X)
            for f in (
                nnx.relu,
                nnx.gelu,
                nnx.sigmoid,
                nnx.tanh,
                nnx.silu,
                nnx.softmax,
                nnx.elu,
                nnx.leaky_relu,
                nnx.log_softmax,
                nnx.softplus,
            )
        ]

    run_both(body)


def test_sequential():
    def body(nnx):
        rngs = nnx.Rngs(0)
        model = nnx.Sequential(nnx.Linear(5, 8, rngs=rngs), nnx.relu, nnx.Linear(8, 2, rngs=rngs))
        return {"y": model(X), "state": nnx.state(model)}

    run_both(body)


def test_sequential_passes_tuples_as_arguments_and_dicts_as_keywords():
    def body(nnx):
        def split(x):
            return x[:, :2], x[:, 2:]

        def named(a, b):
            return {"a": a.sum(-1), "b": b.sum(-1)}

        def combine(a, b):
            return a - 2 * b

        chained = nnx.Sequential(nnx.Linear(5, 4, rngs=nnx.Rngs(0)), split, named, combine)
        empty = nnx.Sequential()
        return {"chained": chained(X), "one": empty(X), "two": empty(X, X)}

    run_both(body)
