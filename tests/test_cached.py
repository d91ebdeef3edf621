"""minnx.cached_partial against flax's nnx.cached_partial: the bound step trains the same, and
the state flows back into the original model and optimizer."""
import jax
import jax.numpy as jnp
import optax
import pytest

from oracle import LIBS, run_both

x = jax.random.normal(jax.random.key(0), (8, 2))
y = jax.random.normal(jax.random.key(1), (8, 3))


def test_cached_step_trains_the_original_objects():
    def body(nnx):
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)

        @nnx.jit
        def train_step(model, optimizer, x, y):
            loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
            optimizer.update(model, grads)
            return loss

        cached_step = nnx.cached_partial(train_step, model, optimizer)
        losses = [cached_step(x, y) for _ in range(3)]
        losses.append(train_step(model, optimizer, x, y))  # the plain step sees the same state
        return losses, nnx.state(model), optimizer.step[...]
    losses, _, steps = run_both(body)
    assert steps == 4 and losses[0] > losses[-1]


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_keeps_the_function_name(lib):
    nnx = LIBS[lib]

    @nnx.jit
    def train_step(model, x):
        return model(x)

    cached = nnx.cached_partial(train_step, nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    assert cached.__name__ == "train_step"
    assert cached(x).shape == (8, 3)


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_tree_mode_is_refused(lib):
    nnx = LIBS[lib]
    with pytest.raises(ValueError, match="graph-mode-only"):
        nnx.cached_partial(lambda m: m, nnx.Linear(2, 3, rngs=nnx.Rngs(0)), graph=False)
