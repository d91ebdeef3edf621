"""minnx.jit's repeat-call fast path (fastpath.py): reused only while it describes the
arguments, invalidated per object, holding no model alive. Each test checks results against a
fresh split (or flax), and counts the walks to see that the fast path was, or was not, used."""
import gc
import weakref

import jax.numpy as jnp
import pytest

import minnx
from minnx import transforms
from oracle import run_both


@pytest.fixture
def walks(monkeypatch):
    """Counts the full walks (split_arguments calls) minnx.jit makes."""
    counter = {"n": 0}
    original = transforms.split_arguments

    def counting(*args, **kwargs):
        counter["n"] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(transforms, "split_arguments", counting)
    return counter


def _mlp():
    return minnx.Sequential(minnx.Linear(3, 4, rngs=minnx.Rngs(0)), minnx.relu,
                            minnx.Linear(4, 2, rngs=minnx.Rngs(1)))


X = jnp.ones((2, 3))


def test_repeat_calls_reuse_the_walk(walks):
    model = _mlp()
    step = minnx.jit(lambda m, x: m(x))
    first = step(model, X)
    for _ in range(3):
        assert jnp.allclose(step(model, X), first)
    assert walks["n"] == 1


def test_a_change_to_an_unrelated_object_keeps_the_walk(walks):
    model, other = _mlp(), _mlp()
    step = minnx.jit(lambda m, x: m(x))
    step(model, X)
    other.flag = True  # a structure change elsewhere
    other.layers[0].kernel.set_metadata(note="x")
    step(model, X)
    assert walks["n"] == 1


@pytest.mark.parametrize("change", ["new attribute", "replaced layer", "appended layer",
                                    "deleted attribute", "metadata", "metadata by update",
                                    "replaced variable"])
def test_every_structure_change_is_seen(walks, change):
    model = _mlp()
    model.extra = minnx.Param(jnp.ones(2))
    step = minnx.jit(lambda m, x: m(x) + m.extra[...].sum() if hasattr(m, "extra") else m(x))
    step(model, X)
    if change == "new attribute":
        model.scale = minnx.Param(jnp.ones(()))
    elif change == "replaced layer":
        model.layers[0] = minnx.Linear(3, 4, rngs=minnx.Rngs(9))
    elif change == "appended layer":
        model.layers.append(minnx.relu)
    elif change == "deleted attribute":
        del model.extra
    elif change == "metadata":
        model.layers[0].kernel.set_metadata(note="changed")
    elif change == "metadata by update":
        changed = model.layers[0].kernel.replace(note="changed")
        minnx.update(model.layers[0], minnx.State({"kernel": changed}))
    elif change == "replaced variable":
        model.layers[2].bias = minnx.Param(jnp.full(2, 5.0))
    got = step(model, X)
    fresh = minnx.jit(lambda m, x: m(x) + m.extra[...].sum() if hasattr(m, "extra") else m(x))
    assert jnp.allclose(got, fresh(model, X))
    assert walks["n"] == 3  # the first call, the call after the change, the fresh function


def test_values_written_outside_are_read(walks):
    model = _mlp()
    step = minnx.jit(lambda m, x: m(x))
    step(model, X)
    model.layers[0].kernel[...] = jnp.zeros((3, 4))
    assert jnp.allclose(step(model, X), model(X))
    assert walks["n"] == 1


def test_plain_containers_are_never_remembered(walks):
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.d = nnx.data({"w": jnp.ones(2)})
        model = Model()
        step = nnx.jit(lambda m: m.d["w"].sum())
        outs = [step(model)]
        model.d["w"] = jnp.full(2, 3.0)
        outs.append(step(model))
        return outs
    assert [float(x) for x in run_both(body)] == [2.0, 6.0]


def test_deleted_models_are_not_kept_alive():
    step = minnx.jit(lambda m, x: m(x))
    refs = []
    for _ in range(5):
        model = minnx.Linear(256, 1024, rngs=minnx.Rngs(0))  # a 1 MiB kernel
        step(model, jnp.ones((1, 256)))
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_a_new_model_in_place_of_an_old_one(walks):
    step = minnx.jit(lambda m, x: m(x))
    outs = []
    for seed in range(3):
        model = minnx.Linear(3, 2, rngs=minnx.Rngs(seed))
        outs.append((step(model, X), model(X)))
        del model
        gc.collect()  # the next model may get the old one's id
    for got, expected in outs:
        assert jnp.allclose(got, expected)


def test_a_module_inside_a_tuple_argument(walks):
    """A tuple or dict holding a Module cannot be weakly referenced: such a call is never
    remembered, and it runs (flax runs it too)."""
    def body(nnx):
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        step = nnx.jit(lambda pair: pair[0]["m"](jnp.ones(2)))
        return [step(({"m": model},)), step(({"m": model},))]
    run_both(body)
    assert walks["n"] == 2


def test_a_module_passed_by_keyword():
    def body(nnx):
        first = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        second = nnx.Linear(2, 2, rngs=nnx.Rngs(1))

        @nnx.jit
        def step(x, model):
            model.bias[...] += 1
            return model(x).sum()
        outs = [step(jnp.ones(2), model=m) for m in (first, first, second, first)]
        return {"outs": outs, "first": first.bias, "second": second.bias}
    out = run_both(body)
    assert out["first"]["value"].tolist() == [3.0, 3.0]
