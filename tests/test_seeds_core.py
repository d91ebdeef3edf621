"""The seeds' NNX examples that need no NNX transform, run on minnx and on flax.nnx side by side.

Each body is the seed's code with `nnx` as a parameter; the numbers it returns must agree.
Sources: the slide deck "Introducing Flax NNX" (003) and the guide "Flax Linen to Flax NNX" (004)
in ../shared/seeds.
"""
import jax
import jax.numpy as jnp
import optax
from oracle import run_both


def test_random_layer():  # slides: "Code Example: Random Layer"
    def body(nnx):
        class RandomLayer(nnx.Module):
            def __init__(self, size: int, *, rngs: nnx.Rngs):
                self.random_vector = nnx.Param(jax.random.normal(rngs.params(), (size,)))

            def __call__(self):
                return self.random_vector.value

        return RandomLayer(5, rngs=nnx.Rngs(0))()
    run_both(body)


def test_shared_encoder_decoder_layer():  # slides: "Reference Sharing"
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                shared_layer = nnx.Linear(3, 3, rngs=rngs)
                self.encoder_layer = shared_layer
                self.decoder_layer = shared_layer  # Both point to the same layer.

            def __call__(self, x):
                return self.decoder_layer(self.encoder_layer(x))

        model = Model(nnx.Rngs(0))
        graphdef, state = nnx.split(model)
        copy = nnx.merge(graphdef, state)
        # A shared layer is stored once and comes back shared.
        return {"paths": sorted(state.keys()), "out": copy(jnp.ones((2, 3))),
                "shared": copy.encoder_layer is copy.decoder_layer,
                "same_kernel": copy.encoder_layer.kernel is copy.decoder_layer.kernel}
    out = run_both(body)
    assert out["shared"] and out["same_kernel"]


def test_counter_split_merge_jax_jit():  # slides: "Counter with Functional API"
    def body(nnx):
        class Counter(nnx.Module):
            def __init__(self):
                self.count = nnx.Variable(jnp.array(0))

            def __call__(self):
                self.count.value += 1
                return self.count.value

        counter = Counter()
        first = counter()
        graphdef, state = nnx.split(counter)

        @jax.jit
        def count(state):
            counter = nnx.merge(graphdef, state)
            counter()
            return nnx.state(counter)

        state = count(state)
        nnx.update(counter, state)
        return [first, counter()]
    assert [int(x) for x in run_both(body)] == [1, 3]


def test_counter_as_written_in_the_slides():
    # The slides keep the count in a plain int. An int is static configuration: it lives in the
    # GraphDef, not the State, so the count changed inside jax.jit does not come back. flax and
    # minnx agree on that (the course shows the Variable form above as the fix).
    def body(nnx):
        class Counter(nnx.Module):
            def __init__(self):
                self.count = 0

            def __call__(self):
                self.count += 1
                return self.count

        counter = Counter()
        first = counter()
        graphdef, state = nnx.split(counter)

        @jax.jit
        def count(state):
            counter = nnx.merge(graphdef, state)
            counter()
            return nnx.state(counter)

        nnx.update(counter, count(state))
        return [first, counter(), len(state)]
    assert run_both(body) == [1, 2, 0]


def test_counter_variable_type():  # 004: `class Counter(nnx.Variable): pass`
    def body(nnx):
        class Counter(nnx.Variable):
            pass

        class Block(nnx.Module):
            def __init__(self, in_features: int, out_features: int, rngs: nnx.Rngs):
                self.linear = nnx.Linear(in_features, out_features, rngs=rngs)
                self.batchnorm = nnx.BatchNorm(num_features=out_features, momentum=0.99, rngs=rngs)
                self.count = Counter(jnp.array(0))

            def __call__(self, x):
                x = self.linear(x)
                x = self.batchnorm(x)
                self.count.value += 1
                x = jax.nn.relu(x)
                return x

        model = Block(4, 4, rngs=nnx.Rngs(0))
        x = jax.random.normal(jax.random.key(0), (2, 4))
        y = model(x)
        graphdef, params, batch_stats, count = nnx.split(model, nnx.Param, nnx.BatchStat, Counter)
        keys = [sorted(params.keys()), sorted(batch_stats.keys()), sorted(count.keys())]
        model = nnx.merge(graphdef, params, batch_stats, count)
        return {"y": y, "keys": keys, "params": params, "batch_stats": batch_stats,
                "count": model.count.value, "type": type(model.count).__name__,
                "again": model(x)}
    out = run_both(body)
    assert out["keys"] == [["batchnorm", "linear"], ["batchnorm"], ["count"]]
    assert int(out["count"]) == 1


def test_shifted_relu_and_simple_classifier():  # slides: PyTorch side by side
    def body(nnx):
        class ShiftedReLU_NNX(nnx.Module):
            def __init__(self, shift: float):
                self.shift = shift

            def __call__(self, x: jnp.ndarray):
                return nnx.relu(x + self.shift)

        class SimpleClassifier_NNX(nnx.Module):
            def __init__(self, input_size: int, num_classes: int, *, rngs: nnx.Rngs):
                self.linear1 = nnx.Linear(input_size, 10, rngs=rngs)
                self.relu = nnx.relu
                self.linear2 = nnx.Linear(10, num_classes, rngs=rngs)

            def __call__(self, x: jnp.ndarray):
                x = self.linear1(x)
                x = self.relu(x)
                return self.linear2(x)

        x = jnp.linspace(-2, 2, 12).reshape(3, 4)
        model = SimpleClassifier_NNX(4, 3, rngs=nnx.Rngs(0))
        return {"shifted": ShiftedReLU_NNX(0.5)(x), "logits": model(x),
                "params": nnx.state(model, nnx.Param)}
    run_both(body)


def _mlp(nnx):
    class MLP(nnx.Module):  # the slides' display example: Linear, Dropout, BatchNorm, Linear
        def __init__(self, din, dmid, dout, *, rngs):
            self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
            self.dropout = nnx.Dropout(0.1, rngs=rngs)
            self.bn = nnx.BatchNorm(dmid, rngs=rngs)
            self.linear2 = nnx.Linear(dmid, dout, rngs=rngs)

        def __call__(self, x):
            x = nnx.gelu(self.dropout(self.bn(self.linear1(x))))
            return self.linear2(x)
    return MLP(2, 16, 5, rngs=nnx.Rngs(0))


def test_mlp_dropout_batchnorm_train_and_eval():
    def body(nnx):
        model = _mlp(nnx)
        x = jax.random.normal(jax.random.key(1), (8, 2))
        train1, train2 = model(x), model(x)  # dropout draws a new mask each call
        stats_after_train = nnx.state(model, nnx.BatchStat)
        model.eval()
        eval1, eval2 = model(x), model(x)
        flags = [model.dropout.deterministic, model.bn.use_running_average]
        stats_after_eval = nnx.state(model, nnx.BatchStat)
        model.train()
        flags += [model.dropout.deterministic, model.bn.use_running_average]
        return {"train1": train1, "train2": train2, "eval1": eval1, "eval2": eval2, "flags": flags,
                "stats_train": stats_after_train, "stats_eval": stats_after_eval,
                "train3": model(x)}
    out = run_both(body)
    assert out["flags"] == [True, True, False, False]
    assert (out["train1"] != out["train2"]).any()          # training mode is random
    assert (out["eval1"] == out["eval2"]).all()            # eval mode is deterministic
    for k in ("mean", "var"):                               # eval does not touch the statistics
        assert (out["stats_train"]["bn"][k]["value"] == out["stats_eval"]["bn"][k]["value"]).all()


def test_autoencoder_encode():  # 004: multiple methods
    def body(nnx):
        class AutoEncoder(nnx.Module):
            def __init__(self, in_dim: int, embed_dim: int, output_dim: int, rngs):
                self.encoder = nnx.Linear(in_dim, embed_dim, rngs=rngs)
                self.decoder = nnx.Linear(embed_dim, output_dim, rngs=rngs)

            def encode(self, x):
                return self.encoder(x)

            def decode(self, x):
                return self.decoder(x)

            def __call__(self, x):
                return self.decode(self.encode(x))

        model = AutoEncoder(784, 256, 784, rngs=nnx.Rngs(0))
        _, params, _ = nnx.split(model, nnx.Param, ...)
        shapes = {p: {k: v.value.shape for k, v in params[p].items()} for p in params}
        x = jnp.ones((1, 784))
        return {"z": model.encode(x), "y": model(x), "shapes": shapes}
    out = run_both(body)
    assert out["shapes"]["encoder"]["kernel"] == (784, 256)


def linen_guide_model(nnx):
    """004's Model (a Block of Linear and Dropout, then a Linear), built with
    Model(784, 256, 10)."""
    class Block(nnx.Module):
        def __init__(self, in_features: int, out_features: int, rngs: nnx.Rngs):
            self.linear = nnx.Linear(in_features, out_features, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return jax.nn.relu(self.dropout(self.linear(x)))

    class Model(nnx.Module):
        def __init__(self, din: int, dmid: int, dout: int, rngs: nnx.Rngs):
            self.block = Block(din, dmid, rngs=rngs)
            self.linear = nnx.Linear(dmid, dout, rngs=rngs)

        def __call__(self, x):
            return self.linear(self.block(x))
    return Model(784, 256, 10, rngs=nnx.Rngs(0))


def test_linen_to_nnx_model_and_graphdef_apply():  # 004: Model/Block and the TrainState section
    def body(nnx):
        model = linen_guide_model(nnx)
        assert model.linear.bias.value.shape == (10,)
        assert model.block.linear.kernel.value.shape == (784, 256)

        linear = nnx.Linear(784, 10, rngs=nnx.Rngs(0))
        linear.train()
        graphdef, params, other_variables = nnx.split(linear, nnx.Param, ...)
        inputs, labels = jnp.ones((1, 784)), jnp.ones((1,), dtype=jnp.int32)

        def loss_fn(params, other_variables):
            logits, (graphdef2, new_state) = graphdef.apply(params, other_variables)(inputs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params, other_variables)
        model.eval()
        return {"loss": loss, "grads": grads, "eval": model(jnp.ones((2, 784)))}
    run_both(body)
