"""Bad input from a learner gets an error that names the module, says what was expected and how
to fix it. flax raises too in each case; minnx's message is what these tests pin down."""
import jax
import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx

import minnx as nnx


def test_layer_without_rngs():
    with pytest.raises(TypeError, match=r"minnx\.Linear needs `rngs=`.*Linear\(2, 3, rngs=minnx\.Rngs\(0\)\)"):
        nnx.Linear(2, 3)
    with pytest.raises(TypeError, match=r"minnx\.BatchNorm needs `rngs=`"):
        nnx.BatchNorm(3)
    with pytest.raises(TypeError):
        flax_nnx.Linear(2, 3)


def test_linear_input_of_the_wrong_size():
    layer = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"minnx\.Linear expected inputs whose last axis .* size 4, got an input "
                                         r"of shape \(2, 5\)\. Build it as Linear\(5, 3, \.\.\.\)"):
        layer(jnp.ones((2, 5)))
    with pytest.raises(TypeError):
        flax_nnx.Linear(4, 3, rngs=flax_nnx.Rngs(0))(jnp.ones((2, 5)))


def test_linear_error_names_the_attribute_path_inside_a_model():
    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(4, 8, rngs=rngs)

        def __call__(self, x):
            return self.hidden(x)

    with pytest.raises(ValueError, match=r"minnx\.Linear"):
        MLP(nnx.Rngs(0))(jnp.ones((1, 3)))


def test_merge_with_a_state_that_does_not_fit():
    graphdef, _ = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    _, other = nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"minnx\.merge: the state does not fit the graphdef: no value at kernel"):
        nnx.merge(graphdef, other)
    _, params, rest = nnx.split(nnx.Dropout(0.1, rngs=nnx.Rngs(0)), nnx.Param, ...)
    g2, p2, _ = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.Param, ...)
    with pytest.raises(ValueError, match="Was it split from a different model"):
        nnx.merge(g2, p2, rest)


def test_merge_missing_a_state_says_to_pass_all_of_them():
    graphdef, params, stats = nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), nnx.Param, ...)
    with pytest.raises(ValueError, match=r"Pass every State that split returned"):
        nnx.merge(graphdef, params)


@pytest.mark.parametrize("bad", [3, 2.5, object()])
def test_unknown_filter(bad):
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"minnx: unknown filter .* A filter is a Variable type"):
        nnx.state(model, bad)


def test_array_assigned_to_a_static_attribute():
    class Model(nnx.Module):
        def __init__(self):
            self.scale = 2.0

    model = Model()
    with pytest.raises(ValueError, match=r"(?s)Model\.scale .* static .*minnx\.Param\(\.\.\.\).*minnx\.data\(\.\.\.\)"):
        model.scale = jnp.ones(3)
    model.scale = 3.0  # static stays static
    model.scale = nnx.data(jnp.ones(3))  # the explicit override works, as in flax
    assert "scale" in nnx.state(model)

    class Flax(flax_nnx.Module):
        def __init__(self):
            self.scale = 2.0
    with pytest.raises(ValueError):
        Flax().scale = jnp.ones(3)


def test_plain_list_of_layers_is_refused_with_the_fix():
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.layers = [nnx.Linear(2, 2, rngs=rngs)]

    with pytest.raises(ValueError, match=r"(?s)Model\.layers: a plain list .*minnx\.List"):
        Model(nnx.Rngs(0))

    class Flax(flax_nnx.Module):
        def __init__(self, rngs):
            self.layers = [flax_nnx.Linear(2, 2, rngs=rngs)]
    with pytest.raises(ValueError):
        Flax(flax_nnx.Rngs(0))


def test_split_with_filters_that_leave_state_out():
    with pytest.raises(ValueError, match=r"minnx\.split: the filters .* do not match .*end the list with `\.\.\.`"):
        nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), nnx.Param)


def test_split_of_something_that_is_not_a_graph_node():
    with pytest.raises(TypeError, match=r"minnx\.split: expected a Module"):
        nnx.split(jnp.ones(3))


def test_dropout_in_training_without_rngs():
    with pytest.raises(ValueError, match=r"minnx\.Dropout .*no random stream.*model\.eval\(\)"):
        nnx.Dropout(0.5)(jnp.ones(3))


def test_batchnorm_channels_first_input():
    with pytest.raises(ValueError, match=r"minnx\.BatchNorm expected 3 features.*features \(channels\) last"):
        nnx.BatchNorm(3, rngs=nnx.Rngs(0))(jnp.ones((2, 3, 8, 8)))


def test_mutation_inside_plain_jax_jit_is_refused_not_lost():
    counter = nnx.Variable(jnp.array(0))

    class Counter(nnx.Module):
        def __init__(self):
            self.count = counter

    model = Counter()

    @jax.jit
    def step(model):
        model.count.value += 1
        return model

    with pytest.raises(nnx.MutationLostError, match=r"(?s)minnx\.jit.*minnx\.split"):
        step(model)
    assert int(model.count.value) == 0  # the learner's model is untouched
