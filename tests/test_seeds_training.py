"""The seeds' training code, run on minnx and on flax.nnx side by side: the four train_step
variants of "Flax NNX vs JAX Transformations" (000-002), the slides' jit_predict and training
loop with Optimizer (003), and the Linen-to-NNX guide's train step, RNN with scan, and scan over
layers (004)."""
import jax
import jax.numpy as jnp
import optax
import pytest
from oracle import run_both
from test_seeds_core import linen_guide_model

x = jax.random.normal(jax.random.key(0), (1, 2))
y = jax.random.normal(jax.random.key(1), (1, 3))


def test_nnx_jit_and_nnx_grad():
    def body(nnx):
        @nnx.jit
        def train_step(model, x, y):
            def loss_fn(model):
                return ((model(x) - y) ** 2).mean()
            grads = nnx.grad(loss_fn)(model)
            params = nnx.pure(nnx.state(model, nnx.Param))
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
            nnx.update(model, params)

        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        train_step(model, x, y)
        train_step(model, x, y)
        return nnx.state(model)
    run_both(body)


def test_jax_jit_and_jax_grad_with_split_merge():
    def body(nnx):
        @jax.jit
        def train_step(graphdef, state, x, y):
            def loss_fn(graphdef, state):
                model = nnx.merge(graphdef, state)
                return ((model(x) - y) ** 2).mean()
            grads = jax.grad(loss_fn, argnums=1)(graphdef, state)
            model = nnx.merge(graphdef, state)
            params = nnx.pure(nnx.state(model, nnx.Param))
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
            nnx.update(model, params)
            return nnx.split(model)

        graphdef, state = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
        graphdef, state = train_step(graphdef, state, x, y)
        graphdef, state = train_step(graphdef, state, x, y)
        return state
    run_both(body)


def test_nnx_jit_with_jax_grad():
    def body(nnx):
        @nnx.jit
        def train_step(model, x, y):
            def loss_fn(graphdef, state):
                model = nnx.merge(graphdef, state)
                return ((model(x) - y) ** 2).mean()
            grads = jax.grad(loss_fn, 1)(*nnx.split(model))
            params = nnx.pure(nnx.state(model, nnx.Param))
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
            nnx.update(model, params)

        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        train_step(model, x, y)
        return nnx.state(model)
    run_both(body)


def test_jax_jit_with_nnx_grad():
    def body(nnx):
        @jax.jit
        def train_step(graphdef, state, x, y):
            model = nnx.merge(graphdef, state)

            def loss_fn(model):
                return ((model(x) - y) ** 2).mean()
            grads = nnx.grad(loss_fn)(model)
            params = nnx.pure(nnx.state(model, nnx.Param))
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
            nnx.update(model, params)
            return nnx.split(model)

        graphdef, state = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
        graphdef, state = train_step(graphdef, state, x, y)
        return state
    run_both(body)


def test_slides_jit_predict():
    def body(nnx):
        def jax_predict(W, b, x):
            return jnp.matmul(W, x) + b
        jit_predict = nnx.jit(jax_predict)
        return jit_predict(jnp.ones((3, 4)), jnp.ones(3), jnp.ones(4))
    run_both(body)


def test_slides_training_loop_with_optimizer():
    def body(nnx):
        class SimpleModel_NNX(nnx.Module):
            def __init__(self, *, rngs: nnx.Rngs):
                self.linear = nnx.Linear(1, 1, rngs=rngs)

            def __call__(self, x: jnp.ndarray):
                return self.linear(x)

        model_nnx = SimpleModel_NNX(rngs=nnx.Rngs(0))
        optimizer = nnx.Optimizer(model_nnx, tx=optax.sgd(learning_rate=0.01), wrt=nnx.Param)
        x_nnx = jnp.array([[2.0]])
        y_nnx = jnp.array([[4.0]])

        @nnx.jit
        def train_step(model, optimizer, x, y):
            def loss_fn(model):
                return jnp.mean((model(x) - y) ** 2)
            loss, grads = nnx.value_and_grad(loss_fn)(model)
            optimizer.update(model, grads)
            return loss

        losses = [train_step(model_nnx, optimizer, x_nnx, y_nnx) for _ in range(5)]
        return {"losses": losses, "params": nnx.state(model_nnx), "step": optimizer.step[...]}
    out = run_both(body)
    assert out["losses"][-1] < out["losses"][0] and int(out["step"]) == 5


def test_linen_to_nnx_train_step():
    def body(nnx):
        model = linen_guide_model(nnx)
        model.train()

        @nnx.jit
        def train_step(model, inputs, labels):
            def loss_fn(model):
                logits = model(inputs)
                return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            grads = nnx.grad(loss_fn)(model)
            _, params, rest = nnx.split(model, nnx.Param, ...)
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
            nnx.update(model, nnx.merge_state(params, rest))

        sample_x = jax.random.normal(jax.random.key(3), (4, 784))
        labels = jnp.array([1, 2, 3, 4], dtype=jnp.int32)
        train_step(model, sample_x, labels)
        train_step(model, sample_x, labels)
        return {"state": nnx.state(model), "out": model(sample_x)}
    run_both(body, rtol=1e-5, atol=1e-5)


def test_rnn_with_scan_and_carry():
    def body(nnx):
        class RNNCell(nnx.Module):
            def __init__(self, input_size, hidden_size, rngs):
                self.linear = nnx.Linear(hidden_size + input_size, hidden_size, rngs=rngs)
                self.hidden_size = hidden_size

            def __call__(self, carry, x):
                x = jnp.concatenate([carry, x], axis=-1)
                x = self.linear(x)
                x = jax.nn.relu(x)
                return x, x

            def initial_state(self, batch_size: int):
                return jnp.zeros((batch_size, self.hidden_size))

        class RNN(nnx.Module):
            def __init__(self, input_size: int, hidden_size: int, rngs: nnx.Rngs):
                self.hidden_size = hidden_size
                self.cell = RNNCell(input_size, self.hidden_size, rngs=rngs)

            def __call__(self, x):
                scan_fn = lambda carry, cell, x: cell(carry, x)  # noqa: E731 (as the guide has it)
                carry = self.cell.initial_state(x.shape[0])
                carry, y = nnx.scan(scan_fn, in_axes=(nnx.Carry, None, 1), out_axes=(nnx.Carry, 1))(
                    carry, self.cell, x)
                return y

        x = jax.random.normal(jax.random.key(0), (2, 5, 3))  # (batch, time, features)
        model = RNN(x.shape[2], 64, rngs=nnx.Rngs(0))
        y = model(x)
        return {"y": y, "shape": y.shape, "jit": nnx.jit(lambda m, x: m(x))(model, x)}
    assert run_both(body, rtol=1e-5, atol=1e-5)["shape"] == (2, 5, 64)


def _scan_mlp(nnx):
    class Block(nnx.Module):
        def __init__(self, input_dim, features, rngs):
            self.linear = nnx.Linear(input_dim, features, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x: jax.Array):
            x = self.linear(x)
            x = self.dropout(x)
            x = jax.nn.relu(x)
            return x

    class MLP(nnx.Module):
        def __init__(self, features, num_layers, rngs):
            @nnx.split_rngs(splits=num_layers)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def create_block(rngs: nnx.Rngs):
                return Block(features, features, rngs=rngs)

            self.blocks = create_block(rngs)
            self.num_layers = num_layers

        def __call__(self, x):
            if self.as_in_the_guide:
                @nnx.split_rngs(splits=self.num_layers)
                @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
                def forward(x, model):
                    x = model(x)
                    return x
            else:
                # the Dropout keys were split per layer in create_block; scan hands each layer its
                # own
                @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
                def forward(x, model):
                    x = model(x)
                    return x

            return forward(x, self.blocks)

    return MLP(64, num_layers=5, rngs=nnx.Rngs(0))


def test_scan_over_layers_as_written_fails_on_flax_and_minnx_alike():
    # The guide only builds this model. Calling it splits the already split Dropout keys again:
    # flax 0.12.8 raises inside jax.random.fold_in; minnx raises first, saying what to change.
    from oracle import LIBS
    for name, nnx in LIBS.items():
        model = _scan_mlp(nnx)
        model.as_in_the_guide = True
        expected = ("split_rngs: the stream at dropout/rngs already holds" if name == "minnx"
                    else "fold_in accepts a single key")
        with pytest.raises(ValueError, match=expected):
            model(jnp.ones((3, 64)))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_scan_over_layers_with_split_rngs(mode):
    def body(nnx):
        model = _scan_mlp(nnx)
        model.as_in_the_guide = False
        getattr(model, mode)()
        x = jax.random.normal(jax.random.key(0), (3, 64))
        y1 = model(x)
        y2 = model(x)
        return {"y1": y1, "y2": y2, "state": nnx.state(model),
                "kernel_shape": model.blocks.linear.kernel.value.shape}
    out = run_both(body, rtol=1e-5, atol=1e-5)
    assert out["kernel_shape"] == (5, 64, 64)
    assert (out["y1"] == out["y2"]).all() == (mode == "eval")
