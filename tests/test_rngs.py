"""Rngs on minnx and flax.nnx side by side: the very same keys from the same seed."""
import jax
import jax.numpy as jnp
import pytest
from oracle import raise_both, run_both

import minnx


def test_key_sequences():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        return [rngs.params(), rngs.params(), rngs(), rngs.dropout(), rngs["dropout"](),
                rngs.default(), rngs.noise(), rngs.params.count[...], rngs.dropout.count[...]]
    run_both(body)


def test_rngs_is_a_mapping_of_streams():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        return {"in": ["default" in rngs, "dropout" in rngs, "noise" in rngs], "len": len(rngs),
                "names": sorted(rngs), "items": sorted(name for name, _ in rngs.items())}
    assert run_both(body)["in"] == [True, True, False]


@pytest.mark.parametrize("seed", ["an array of floats", "a string", "a float"])
def test_what_is_not_a_seed_is_refused(seed):
    values = {"an array of floats": jnp.ones(2), "a string": "seed", "a float": 1.5}
    raise_both(lambda nnx: nnx.Rngs(values[seed]), ValueError, "Invalid rng value")


def test_seeds_as_keys_and_dicts():
    def body(nnx):
        return [nnx.Rngs(jax.random.key(3)).params(), nnx.Rngs(params=7).params(),
                nnx.Rngs({"params": 2, "dropout": 3}).dropout(), nnx.Rngs(5)()]
    run_both(body)


def test_fork():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        forked = rngs.fork()
        return [forked.params(), forked.dropout(), rngs.params(), rngs.dropout()]
    run_both(body)


def test_reseed():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                self.dropout = nnx.Dropout(0.5, rngs=rngs)

            def __call__(self, x):
                return self.dropout(x)

        model = Model(nnx.Rngs(0, dropout=1))
        x = jnp.ones((2, 8))
        a = model(x)
        nnx.reseed(model, dropout=1)
        b = model(x)
        nnx.reseed(model, dropout=1)
        return [a, b, model(x)]
    out = run_both(body)
    assert (out[1] == out[2]).all()


def test_layers_keep_a_forked_stream():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        dropout = nnx.Dropout(0.5, rngs=rngs)
        before = rngs.dropout.count[...]
        y = dropout(jnp.ones(10))
        return {"y": y, "outer_count_unchanged": rngs.dropout.count[...] == before,
                "layer_count": dropout.rngs.count[...]}
    run_both(body)


def test_random_helpers():
    def body(nnx):
        rngs = nnx.Rngs(0, noise=1)
        return {"default": [rngs.normal((2, 3)), rngs.uniform((2,)), rngs.bernoulli(0.5, (3,)),
                            rngs.categorical(jnp.zeros(4), shape=(3,)), rngs.randint((3,), 0, 5),
                            rngs.permutation(5), rngs.choice(jnp.arange(5), (2,)),
                            rngs.truncated_normal(-1.0, 1.0, (2,)), rngs.gumbel((2,)),
                            rngs.bits((2,))],
                "stream": [rngs.noise.normal((2,)), rngs.noise.categorical(jnp.zeros(3))]}
    run_both(body)


def test_rngs_in_state():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        rngs.params()
        return nnx.state(rngs)
    run_both(body)


def test_missing_stream_without_default_names_the_fix():
    rngs = minnx.Rngs(params=0)
    with pytest.raises(AttributeError, match=r"Rngs\(dropout=0\)"):
        rngs.dropout()
