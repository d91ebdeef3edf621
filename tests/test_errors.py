"""Bad input from a learner gets an error that names the module, says what was expected and how
to fix it. flax raises the same type in each case (checked side by side): a learner's `except`
written for flax catches minnx's error; minnx's message is what the `match` pins down."""
import jax
import jax.numpy as jnp
import pytest
from oracle import raise_both, run_both

import minnx


def test_layer_without_rngs():
    raise_both(lambda nnx: nnx.Linear(2, 3), TypeError,
               r"minnx\.Linear needs `rngs=`.*Linear\(2, 3, rngs=minnx\.Rngs\(0\)\)")
    raise_both(lambda nnx: nnx.BatchNorm(3), TypeError, r"minnx\.BatchNorm needs `rngs=`")


def test_linear_input_of_the_wrong_size():
    def body(nnx):
        nnx.Linear(4, 3, rngs=nnx.Rngs(0))(jnp.ones((2, 5)))
    error = raise_both(body, TypeError,
                       r"minnx\.Linear expected inputs whose last axis .* size 4, "
                       r"got an input of shape \(2, 5\)\. Build it as Linear\(5, 3")
    # minnx's error is both: older minnx code caught ValueError
    assert isinstance(error, ValueError)


def test_merge_with_a_state_that_does_not_fit():
    def body(nnx):
        graphdef, _ = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
        _, other = nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
        nnx.merge(graphdef, other)
    raise_both(body, ValueError, r"minnx\.merge: the state does not fit the graphdef: there is no "
                                 r"value at kernel")

    def extra(nnx):
        _, _, rest = nnx.split(nnx.Dropout(0.1, rngs=nnx.Rngs(0)), nnx.Param, ...)
        graphdef, params, _ = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.Param, ...)
        nnx.merge(graphdef, params, rest)
    raise_both(extra, ValueError, "Was it split from another model")


def test_merge_missing_a_state_says_to_pass_all_of_them():
    def body(nnx):
        graphdef, params, _ = nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), nnx.Param, ...)
        nnx.merge(graphdef, params)
    raise_both(body, ValueError, r"Pass every State that split returned")


def test_merge_without_a_state_is_a_missing_argument():
    def body(nnx):
        class Empty(nnx.Module):
            pass
        graphdef, _ = nnx.split(Empty())
        nnx.merge(graphdef)  # flax needs the state even when it is empty
    raise_both(body, TypeError, r"missing 1 required positional argument: 'state'")


def test_merge_with_a_state_given_twice():
    def body(nnx):
        graphdef, params, rest = nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), nnx.Param, ...)
        nnx.merge(graphdef, params, nnx.state(nnx.BatchNorm(3, rngs=nnx.Rngs(0))))
    raise_both(body, ValueError, r"two of the states both hold a value at bias")


@pytest.mark.parametrize("bad, flax_error", [(3, ValueError), (2.5, ValueError),
                                             (object(), TypeError)])
def test_unknown_filter(bad, flax_error):
    # flax's message fails to format (ValueError or TypeError); minnx's error is both types
    def body(nnx):
        nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), bad)
    error = raise_both(body, flax_error, r"is not a filter\. A filter is a Variable type")
    assert isinstance(error, (TypeError)) and isinstance(error, ValueError)


def test_ellipsis_must_be_the_last_filter():
    def body(nnx):
        nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), ..., nnx.Param)
    raise_both(body, ValueError,
               r"`\.\.\.` or `True` can only be used as the last filters.*Move it")


def test_ellipsis_or_true_may_follow_ellipsis():
    def body(nnx):
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        _, params, rest, more = nnx.split(model, nnx.Param, ..., ...)
        _, everything, nothing = nnx.split(model, ..., True)
        return [params, rest, more, everything, nothing]
    run_both(body)


def test_array_assigned_to_a_static_attribute():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.scale = 2.0
        model = Model()
        model.scale = 3.0  # static stays static
        model.scale = jnp.ones(3)
    raise_both(body, ValueError, r"(?s)static attribute 'scale' of Model.*minnx\.data\(\.\.\.\)")

    class Model(minnx.Module):
        def __init__(self):
            self.scale = 2.0
    model = Model()
    model.scale = minnx.data(jnp.ones(3))  # the explicit override works, as in flax
    assert "scale" in minnx.state(model)


def test_plain_list_of_layers_is_refused_with_the_fix():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                self.layers = [nnx.Linear(2, 2, rngs=rngs)]
        Model(nnx.Rngs(0))
    raise_both(body, ValueError, r"(?s)static attribute 'layers' of Model.*minnx\.List")


def test_array_appended_to_a_plain_list_in_init():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.xs = []
                self.xs.append(jnp.ones(2))
        Model()
    raise_both(body, ValueError, r"(?s)Found data \(ArrayImpl\) in the static attribute 'xs'")


def test_split_with_filters_that_leave_state_out():
    def body(nnx):
        nnx.split(nnx.BatchNorm(3, rngs=nnx.Rngs(0)), nnx.Param)
    with pytest.raises(ValueError, match=r"minnx\.split: no filter in .* matches mean .*end the "
                                         r"list with `\.\.\.`"):
        body(minnx)


def test_dropout_in_training_without_rngs():
    with pytest.raises(ValueError, match=r"minnx\.Dropout .*no random stream.*model\.eval\(\)"):
        minnx.Dropout(0.5)(jnp.ones(3))


def test_batchnorm_channels_first_input():
    with pytest.raises(ValueError, match=r"minnx\.BatchNorm expected 3 features.*features "
                                         r"\(channels\) last"):
        minnx.BatchNorm(3, rngs=minnx.Rngs(0))(jnp.ones((2, 3, 8, 8)))


def test_module_closed_over_and_changed_inside_jax_jit():
    import flax.errors
    from flax import nnx as flax_nnx

    def body(nnx):
        layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))

        @jax.jit
        def f(x):
            layer.kernel[...] = layer.kernel[...] * x
            return x
        f(2.0)
        return layer
    with pytest.raises(flax.errors.TraceContextError):
        body(flax_nnx)
    with pytest.raises(minnx.TraceContextError, match=r"Cannot mutate Param from a different "
                                                      r"trace level.*Pass the Module"):
        body(minnx)


def test_rngs_closed_over_inside_jax_jit():
    rngs = minnx.Rngs(0)

    @jax.jit
    def f(x):
        return x + jax.random.normal(rngs.params(), ())
    with pytest.raises(minnx.TraceContextError, match="Cannot mutate RngCount from a different "
                                                      "trace level"):
        f(1.0)
    assert int(rngs.params.count[...]) == 0  # nothing leaked into the learner's object


def test_bound_method_given_to_jit():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.ones(2))

            def scaled(self, x):
                return self.w[...] * x
        nnx.jit(Model().scaled)
    raise_both(body, ValueError, r"does not support bound methods.*MyClass\.method")


@pytest.mark.parametrize("transform", ["vmap", "remat", "eval_shape", "grad",
                                       "value_and_grad", "scan"])
def test_bound_method_given_to_vmap_remat_eval_shape(transform):
    def body(nnx):
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        if transform == "eval_shape":
            nnx.eval_shape(model.__call__, jnp.ones(2))
        else:
            getattr(nnx, transform)(model.__call__)(jnp.ones((3, 2)))
    raise_both(body, ValueError, rf"nnx\.{transform} does not support bound methods")


@pytest.mark.parametrize("form", ["array", "Param", "data list", "dict"])
def test_an_attribute_set_inside_jax_jit_on_a_module_made_outside(form):
    import flax
    from flax import nnx as flax_nnx

    def body(nnx):
        forms = {"array": lambda x: x, "Param": nnx.Param, "data list": lambda x: nnx.data([x]),
                 "dict": lambda x: {"a": x}}
        layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        jax.jit(lambda x: setattr(layer, "extra", forms[form](x)))(jnp.ones(2))
    with pytest.raises(flax.errors.TraceContextError):
        body(flax_nnx)
    with pytest.raises(minnx.TraceContextError, match=r"Cannot mutate 'Linear' from a different "
                                                      r"trace level"):
        body(minnx)


def test_a_module_made_inside_jax_jit_may_take_more_tracers():
    def body(nnx):
        class Box(nnx.Module):
            def __init__(self, x):
                self.w = nnx.Param(x)

        @jax.jit
        def f(x):
            box = Box(x)  # made in this trace: it holds a tracer, so it may take more
            box.extra = x * 2
            return box.extra + box.w[...]
        return f(jnp.ones(2))
    run_both(body)


def test_a_module_made_inside_a_transform_may_hold_its_tracers():
    def body(nnx):
        class Box(nnx.Module):
            def __init__(self):
                self.size = 1

        @nnx.jit
        def twice(x):
            box = Box()
            box.value = x
            return box.value * 2
        return twice(jnp.ones(2))
    run_both(body)


@pytest.mark.parametrize("kwargs, got", [({}, "none"), ({"loss": 1.0}, r"\['loss'\]")])
def test_average_update_without_its_keyword(kwargs, got):
    raise_both(lambda nnx: nnx.metrics.Average().update(**kwargs), TypeError,
               rf"Expected keyword argument 'values' for Average\.update, got {got}\.")
