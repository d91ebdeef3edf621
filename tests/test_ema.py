"""minnx.EMA against flax's nnx.EMA: the same averages after the same training steps, inside
and outside jit, the `only` filter, and `apply_to` sharing the EMA's Variables."""
import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx as flax_nnx

import minnx
from oracle import LIBS, run_both

x = jax.random.normal(jax.random.key(0), (8, 2))
y = jax.random.normal(jax.random.key(1), (8, 3))


def model_and_loss(nnx):
    # BatchNorm first: after a Linear it would zero that bias's gradient, and Adam would then
    # amplify rounding noise differently on each library
    model = nnx.Sequential(nnx.BatchNorm(2, rngs=nnx.Rngs(1)), nnx.Linear(2, 4, rngs=nnx.Rngs(0)),
                           nnx.relu, nnx.Linear(4, 3, rngs=nnx.Rngs(2)))
    return model, lambda m: jnp.mean((m(x) - y) ** 2)


def test_averages_follow_training_inside_jit():
    def body(nnx):
        model, loss_fn = model_and_loss(nnx)
        optimizer = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)
        ema = nnx.EMA(model, decay=0.8, only=nnx.Param)

        @nnx.jit
        def step(model, optimizer, ema):
            optimizer.update(model, nnx.grad(loss_fn)(model))
            ema.update(model)

        for _ in range(4):
            step(model, optimizer, ema)
        return ema.params, nnx.state(model)
    params, model_state = run_both(body)
    # the averages lag behind the trained weights: the test would pass for a copy otherwise
    assert not jnp.allclose(params["layers"][1]["kernel"]["value"],
                            model_state["layers"][1]["kernel"]["value"])


def test_update_outside_jit_with_a_state_and_the_default_filter():
    def body(nnx):
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        ema = nnx.EMA(model, decay=0.5)
        new = nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(7)))
        ema.update(new)
        return ema.params
    run_both(body)


def test_only_filter_chooses_what_is_averaged():
    def body(nnx):
        model, _ = model_and_loss(nnx)
        return nnx.EMA(model, decay=0.9, only=nnx.BatchStat).params
    params = run_both(body)
    assert set(params["layers"][0]) == {"mean", "var"}


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_apply_to_shares_the_ema_variables(lib):
    nnx = LIBS[lib]
    model, loss_fn = model_and_loss(nnx)
    ema = nnx.EMA(model, decay=0.5, only=nnx.Param)
    ema_model = ema.apply_to(model)
    assert ema_model.layers[1].kernel is ema.params["layers"][1]["kernel"]
    assert ema_model.layers[0].mean is model.layers[0].mean
    assert ema_model.layers[1].kernel is not model.layers[1].kernel
    model.layers[1].kernel[...] = jnp.zeros((2, 4))
    ema.update(model)
    expected = 0.5 * nnx.state(model_and_loss(nnx)[0], nnx.Param)["layers"][1]["kernel"][...]
    assert jnp.allclose(ema_model.layers[1].kernel[...], expected)


def test_apply_to_model_evaluates_like_flax():
    def body(nnx):
        model, loss_fn = model_and_loss(nnx)
        ema = nnx.EMA(model, decay=0.5, only=nnx.Param)
        model.layers[3].bias[...] = jnp.ones(3)
        model.layers[0].mean[...] = jnp.ones(2)  # not averaged: apply_to keeps the model's
        ema.update(model)
        return ema.apply_to(model)(x)
    run_both(body)


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_rng_state_cannot_be_averaged_with_only_param_missing(lib):
    nnx = LIBS[lib]
    model = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(1)))
    ema = nnx.EMA(model, decay=0.5)  # keys are copied too, and cannot be blended
    with pytest.raises(TypeError):
        ema.update(model)


def test_a_non_variable_leaf_is_refused_with_the_same_error():
    for lib in (minnx, flax_nnx):
        with pytest.raises(TypeError, match="EMA only"):
            lib.EMA({"w": jnp.ones(2)}, decay=0.5)
