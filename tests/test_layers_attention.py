"""Attention on minnx and flax.nnx side by side: the mask helpers, dot_product_attention, and
MultiHeadAttention (same parameters from the same seed, same outputs, dropout in train and eval
mode), plus the errors a learner meets. flax 0.12 wants `decode=False`, so every layer passes it."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx as flax_nnx
from flax.nnx.nn.attention import dot_product_attention_weights as flax_weights
from oracle import run_both

import minnx
from minnx.nn.attention import dot_product_attention_weights as minnx_weights

X = jax.random.normal(jax.random.key(42), (2, 4, 8))  # [batch, length, features]
KV = jax.random.normal(jax.random.key(7), (2, 6, 5))  # a longer, narrower memory
TOKENS = jnp.array([[3, 1, 4, 0], [1, 5, 0, 0]])  # 0 is padding
Q, K, V = (jax.random.normal(k, (2, 4, 3, 5)) for k in jax.random.split(jax.random.key(1), 3))


def test_mask_helpers():
    def body(nnx):
        pad = nnx.make_attention_mask(TOKENS > 0, TOKENS > 0)
        causal = nnx.make_causal_mask(TOKENS)
        return {
            "pad": pad,
            "causal": causal,
            "both": nnx.combine_masks(pad, causal),
            "one": nnx.combine_masks(None, causal, dtype=jnp.bool_),
            "none": nnx.combine_masks(None, None),
            "extra": nnx.make_attention_mask(
                TOKENS, TOKENS[:, :3], extra_batch_dims=2, dtype=jnp.int32
            ),
            "greater": nnx.make_attention_mask(TOKENS, TOKENS, jnp.greater),
            "1d": nnx.make_causal_mask(TOKENS[0]),
        }

    run_both(body)


@pytest.mark.parametrize("case", ["plain", "mask", "bias", "both", "causal", "mask+causal"])
def test_dot_product_attention(case):
    mask = (
        minnx.make_attention_mask(TOKENS > 0, TOKENS > 0)
        if "mask" in case or case == "both"
        else None
    )
    bias = jax.random.normal(jax.random.key(3), (2, 3, 4, 4)) if case in ("bias", "both") else None

    def body(nnx):
        kw = dict(bias=bias, mask=mask, is_causal="causal" in case)
        return {
            "out": nnx.dot_product_attention(Q, K, V, **kw),
            "weights": (minnx_weights if nnx is minnx else flax_weights)(Q, K, **kw),
            "no_batch": nnx.dot_product_attention(
                Q[0], K[0], V[0], mask=None if mask is None else mask[0]
            ),
            "two_batch": nnx.dot_product_attention(Q[None], K[None], V[None]),
        }

    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("broadcast_dropout", [True, False])
def test_dot_product_attention_dropout(broadcast_dropout):
    def body(nnx):
        kw = dict(
            dropout_rng=jax.random.key(0), dropout_rate=0.4, broadcast_dropout=broadcast_dropout
        )
        return [
            nnx.dot_product_attention(Q, K, V, **kw),
            nnx.dot_product_attention(Q, K, V, deterministic=True, **kw),
        ]

    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"qkv_features": 16},
        {"out_features": 3},
        {"use_bias": False},
        {"num_kv_heads": 2},
        {"kernel_init": jax.nn.initializers.xavier_uniform()},
        {"out_kernel_init": jax.nn.initializers.zeros, "out_bias_init": jax.nn.initializers.ones},
        {"dtype": jnp.bfloat16},
        {"param_dtype": jnp.bfloat16},
    ],
)
def test_mha_self_attention(kwargs):
    def body(nnx):
        layer = nnx.MultiHeadAttention(4, 8, decode=False, rngs=nnx.Rngs(0), **kwargs)
        return {
            "params": nnx.state(layer),
            "y": layer(X),
            "qq": layer(X, X),
            "batchless": layer(X[0]),
        }

    run_both(
        body, rtol=2e-2 if kwargs.get("dtype") or kwargs.get("param_dtype") else 1e-5, atol=1e-5
    )


def test_mha_cross_and_masked_attention_and_sown_weights():
    pad = minnx.make_attention_mask(TOKENS > 0, jnp.ones((2, 6)))

    def body(nnx):
        layer = nnx.MultiHeadAttention(
            2,
            8,
            qkv_features=6,
            out_features=7,
            in_kv_features=5,
            decode=False,
            rngs=nnx.Rngs(params=3),
        )
        y = layer(X, KV, KV * 2, mask=pad, sow_weights=True)
        out = {
            "params": nnx.state(layer, nnx.Param),
            "y": y,
            "kv": layer(X, KV, sow_weights=True),
            "sown": nnx.state(layer, nnx.Intermediate),
        }
        self_attn = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(params=3))
        causal = nnx.combine_masks(
            nnx.make_causal_mask(TOKENS), nnx.make_attention_mask(TOKENS > 0, TOKENS > 0)
        )
        return {
            **out,
            "causal": self_attn(X, mask=causal),
            "is_causal": self_attn(X, is_causal=True),
            "is_causal_sown": self_attn(X, mask=causal, is_causal=True, sow_weights=True),
            "self_sown": nnx.state(self_attn, nnx.Intermediate),
        }

    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"num_kv_heads": 1}])
def test_mha_dropout_train_and_eval(kwargs):
    def body(nnx):
        layer = nnx.MultiHeadAttention(
            2, 8, dropout_rate=0.5, decode=False, rngs=nnx.Rngs(0), **kwargs
        )
        layer.train()
        a, b = layer(X), layer(X)  # two draws from the layer's own stream
        det = layer(X, deterministic=True)
        given = layer(X, rngs=nnx.Rngs(dropout=5))  # a call-time stream takes precedence
        rng_state = nnx.state(layer, nnx.RngState)
        layer.eval()
        return {
            "a": a,
            "b": b,
            "det": det,
            "given": given,
            "rng_state": rng_state,
            "eval": layer(X),
            "forced": layer(X, deterministic=False),
            "deterministic": layer.deterministic,
        }

    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert not (out["a"] == out["b"]).all() and (out["det"] == out["eval"]).all()


@pytest.mark.parametrize("broadcast_dropout", [True, False])
def test_mha_dropout_without_kept_rngs(broadcast_dropout):
    def body(nnx):
        layer = nnx.MultiHeadAttention(
            2,
            8,
            dropout_rate=0.3,
            deterministic=False,
            keep_rngs=False,
            decode=False,
            broadcast_dropout=broadcast_dropout,
            rngs=nnx.Rngs(0),
        )
        stream = nnx.Rngs(dropout=1).dropout
        return {"state": nnx.state(layer), "y": layer(X, rngs=stream), "y2": layer(X, rngs=stream)}

    run_both(body, rtol=1e-5, atol=1e-6)


def test_mha_inside_jit_and_grad():
    def body(nnx):
        layer = nnx.MultiHeadAttention(
            2, 8, dropout_rate=0.2, deterministic=False, decode=False, rngs=nnx.Rngs(0)
        )

        @nnx.jit
        def step(layer, x):
            return nnx.grad(lambda m: (m(x) ** 2).mean())(layer)

        grads = step(layer, X)
        return {"grads": grads, "again": step(layer, X), "rngs": nnx.state(layer, nnx.RngState)}

    run_both(body, rtol=1e-4, atol=1e-6)


def test_mha_normalize_qk():
    try:
        minnx.LayerNorm(2, rngs=minnx.Rngs(0))
    except NotImplementedError:
        pytest.skip("minnx.LayerNorm is not written yet")

    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, normalize_qk=True, decode=False, rngs=nnx.Rngs(0))
        return {"params": nnx.state(layer), "y": layer(X)}

    run_both(body, rtol=1e-5, atol=1e-6)


# -- errors: minnx's message is pinned down; flax raises too -----------------------------------
def both_raise(make, minnx_error, match, flax_error=None):
    with pytest.raises(minnx_error, match=match):
        make(minnx)
    with pytest.raises(flax_error or minnx_error):
        make(flax_nnx)


def test_heads_that_do_not_split_the_features():
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(3, 10, decode=False, rngs=nnx.Rngs(0)),
        ValueError,
        r"qkv_features=10 does not split evenly into num_heads=3 heads\. "
        r"Use num_heads in \[1, 2, 5, 10\], or qkv_features=12",
    )
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(4, 8, num_kv_heads=3, decode=False, rngs=nnx.Rngs(0)),
        ValueError,
        r"num_heads=4 is not a multiple of num_kv_heads=3",
    )


def test_mha_without_rngs():
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(2, 8),
        TypeError,
        r"minnx\.MultiHeadAttention needs `rngs=`.*"
        r"MultiHeadAttention\(2, 8, decode=False, rngs=minnx\.Rngs",
    )


def test_inputs_of_the_wrong_size():
    make = lambda nnx: nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))  # noqa: E731
    both_raise(
        lambda nnx: make(nnx)(KV),
        ValueError,
        r"minnx\.MultiHeadAttention expected inputs whose last axis \(features\) has size 8, "
        r"got an input of shape \(2, 6, 5\)\. Build it with in_features=5",
    )
    both_raise(
        lambda nnx: make(nnx)(X, KV),
        ValueError,
        r"last axis \(key/value features\) has size 8.*build it with in_kv_features=5",
        flax_error=TypeError,
    )
    both_raise(lambda nnx: make(nnx)(X, inputs_v=X), ValueError, r"inputs_v without inputs_k")


def test_mode_and_decode_must_be_known():
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(2, 8, rngs=nnx.Rngs(0))(X),
        ValueError,
        r"pass decode=False",
    )
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(2, 8, dropout_rate=0.1, decode=False, rngs=nnx.Rngs(0))(
            X
        ),
        ValueError,
        r"dropout_rate=0\.1 but does not know if it is training: call model\.train\(\)",
    )
    both_raise(
        lambda nnx: nnx.MultiHeadAttention(
            2,
            8,
            dropout_rate=0.1,
            deterministic=False,
            keep_rngs=False,
            decode=False,
            rngs=nnx.Rngs(0),
        )(X),
        ValueError,
        r"training with dropout but has no random stream \(keep_rngs=False\): pass rngs=",
    )


# -- autoregressive decoding: decode=True and init_cache, step by step against flax --------------
def decode_steps(nnx, layer, x, **call_kwargs):
    """Feed `x` one position at a time; return every step's output and the cache after it."""
    steps = []
    for i in range(x.shape[-2]):
        y = layer(x[..., i : i + 1, :], decode=True, **call_kwargs)
        steps.append({"y": y, "cache": nnx.to_pure_dict(nnx.state(layer, nnx.Cache))})  # a copy
    return steps


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num_kv_heads": 1}, {"normalize_qk": True}, {"qkv_features": 12, "out_features": 5}],
)
def test_decode_step_by_step_equals_the_full_causal_pass(kwargs):
    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0), **kwargs)
        full = layer(X, is_causal=True)
        layer.init_cache(X.shape)
        empty = nnx.to_pure_dict(nnx.state(layer, nnx.Cache))
        steps = decode_steps(nnx, layer, X)
        names = {
            name: type(getattr(layer, name)).__name__
            for name in ("cached_key", "cached_value", "cache_index")
        }
        return {
            "full": full,
            "empty": empty,
            "steps": steps,
            "names": names,
            "index_dtype": str(layer.cache_index[...].dtype),
        }

    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert out["names"] == {"cached_key": "Cache", "cached_value": "Cache", "cache_index": "Cache"}
    assert out["empty"]["cached_key"].shape == (
        2,
        4,
        1 if "num_kv_heads" in kwargs else 2,
        6 if "qkv_features" in kwargs else 4,
    )
    decoded = jnp.concatenate([step["y"] for step in out["steps"]], axis=-2)
    assert jnp.allclose(decoded, out["full"], atol=1e-5), "decoding disagrees with the full pass"
    assert [int(step["cache"]["cache_index"]) for step in out["steps"]] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "case",
    [
        "constructor",
        "set_attributes",
        "padding_mask",
        "is_causal",
        "past_the_end",
        "two_batch_axes",
        "no_batch_axis",
        "bfloat16",
        "init_again",
    ],
)
def test_decode_variants_match_flax(case):
    """Each way to switch decoding on, and its corner cases, gives flax's outputs and cache."""
    x = X[:, :3]

    def body(nnx):
        dtype = jnp.bfloat16 if case == "bfloat16" else None
        layer = nnx.MultiHeadAttention(
            2, 8, decode=case == "constructor", dtype=dtype, rngs=nnx.Rngs(1)
        )
        if case == "set_attributes":
            layer.set_attributes(decode=True)
        inputs = {"two_batch_axes": jnp.stack([x, 2 * x]), "no_batch_axis": x[0]}.get(case, x)
        shape = inputs.shape
        if case == "past_the_end":  # flax clamps the write index: the last slot is overwritten
            shape = (*inputs.shape[:-2], 2, inputs.shape[-1])
        layer.init_cache(shape, dtype=dtype or jnp.float32)
        if case == "init_again":  # a new cache starts empty again
            layer(inputs[:, :1], decode=True)
            layer.init_cache(shape)
        kwargs = {}
        if case == "padding_mask":  # the caller's mask is combined with the cache's own
            kwargs["mask"] = jnp.array([1.0, 0.0, 1.0])[None, None, None, :]
        if case == "is_causal":  # a causal mask of one query row keeps only position 0
            kwargs["is_causal"] = True
        if case == "constructor":
            steps = [layer(inputs[:, i : i + 1]) for i in range(3)]
            return {"steps": steps, "cache": nnx.state(layer, nnx.Cache)}
        return decode_steps(nnx, layer, inputs, **kwargs)

    run_both(body, rtol=2e-2 if case == "bfloat16" else 1e-5, atol=1e-5)


def test_decode_inside_jit_and_scan_over_stacked_layers():
    """The GPT notebook's pattern: layers made by vmap, caches by a vmapped init_cache, one
    jitted decode step scanning over the layers; the Cache Variables come out updated."""

    def body(nnx):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make(rngs):
            return nnx.MultiHeadAttention(2, 8, decode=False, rngs=rngs)

        def run(layers, x, decode):
            @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
            def forward(x, layer):
                return x + layer(x, decode=decode, is_causal=not decode)

            return forward(x, layers)

        @nnx.vmap(in_axes=(0,), out_axes=0)
        def init_caches(layer):
            layer.init_cache(X.shape)

        layers = make(nnx.Rngs(0))
        full = run(layers, X, False)
        init_caches(layers)
        step = nnx.jit(run, static_argnums=2)
        ys = [step(layers, X[:, i : i + 1], True) for i in range(X.shape[1])]
        return {
            "full": full,
            "decoded": jnp.concatenate(ys, axis=1),
            "cache": nnx.state(layers, nnx.Cache),
        }

    out = run_both(body, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["decoded"], out["full"], atol=1e-5)
    assert out["cache"]["cache_index"]["value"].tolist() == [4, 4, 4]


def test_decode_with_dropout_draws_flaxs_keys():
    def body(nnx):
        layer = nnx.MultiHeadAttention(
            2, 8, dropout_rate=0.5, deterministic=False, decode=True, rngs=nnx.Rngs(0)
        )
        layer.init_cache(X.shape)
        return {"steps": decode_steps(nnx, layer, X), "rngs": nnx.state(layer, nnx.RngState)}

    run_both(body, rtol=1e-5, atol=1e-6)


def test_decoding_errors():
    def layer(nnx, **kwargs):
        return nnx.MultiHeadAttention(2, 8, decode=True, rngs=nnx.Rngs(0), **kwargs)

    def cached(nnx, shape=X.shape, **kwargs):
        made = layer(nnx, **kwargs)
        made.init_cache(shape)
        return made

    both_raise(
        lambda nnx: layer(nnx)(X[:, :1]),
        ValueError,
        r"decode=True\): the key/value cache is not there; call init_cache\(\(batch, "
        r"max_length, features\)\) first",
    )
    both_raise(
        lambda nnx: cached(nnx)(X[:, :2]),
        ValueError,
        r"decodes one position per call, into a cache for batch \(2,\): expected keys "
        r"\(2, 1, 2, 4\), got \(2, 2, 2, 4\)\. Feed inputs \(\*batch, 1, features\)",
    )
    both_raise(
        lambda nnx: cached(nnx)(X[:1, :1]),
        ValueError,
        r"expected keys \(2, 1, 2, 4\), got \(1, 1, 2, 4\).*or init_cache for this",
    )
    both_raise(
        lambda nnx: cached(nnx, dtype=jnp.bfloat16)(X[:, :1]),
        TypeError,
        r"the cache holds float32 but the keys are bfloat16; make it with "
        r"init_cache\(shape, dtype=jnp\.bfloat16\)",
    )
    both_raise(
        lambda nnx: cached(nnx, shape=(8,))(X[0, :1]),
        ValueError,
        r"init_cache takes the shape of a whole input, \(\*batch, max_length, features\), "
        r"got \(8,\)",
    )


@pytest.mark.parametrize("option", ["kernel_metadata", "qkv_dot_general", "out_sharding"])
def test_flax_options_minnx_does_not_support_are_refused(option):
    """flax accepts these; minnx does not implement them and says so rather than ignore them."""
    value = {
        "kernel_metadata": {"note": "a tag"},
        "qkv_dot_general": jax.lax.dot_general,
        "out_sharding": ("a",),
    }[option]
    if option == "out_sharding":
        with pytest.raises(TypeError, match=r"does not support out_sharding= is output sharding"):
            minnx.MultiHeadAttention(2, 8, decode=False, rngs=minnx.Rngs(0))(X, out_sharding=value)
        return
    with pytest.raises(
        TypeError,
        match=rf"minnx\.MultiHeadAttention does not support {option}= "
        r"is .*Leave it out, or run on flax\.nnx",
    ):
        minnx.MultiHeadAttention(2, 8, decode=False, rngs=minnx.Rngs(0), **{option: value})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flax_nnx.MultiHeadAttention(2, 8, decode=False, rngs=flax_nnx.Rngs(0), **{option: value})


def test_view_switches_decoding_on_without_making_a_cache():
    """nnx.view(decode=True) sets the flag only, in flax too: init_cache still has to run."""
    if not hasattr(minnx, "view"):
        pytest.skip("minnx.view is not written yet")

    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, dropout_rate=0.1, decode=False, rngs=nnx.Rngs(0))
        viewed = nnx.view(layer, decode=True, deterministic=True, batch_size=2, max_length=4)
        settings = {
            "viewed": (viewed.decode, viewed.deterministic, viewed.cached_key is None),
            "original": (layer.decode, layer.deterministic),
        }
        viewed.init_cache(X.shape)
        return {**settings, "steps": decode_steps(nnx, viewed, X[:, :2])}

    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert out["viewed"] == (True, True, True) and out["original"] == (False, None)
    both_raise(
        lambda nnx: nnx.view(
            nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0)),
            decode=True,
            batch_size=2,
            max_length=4,
        )(X[:, :1]),
        ValueError,
        r"the key/value cache is not there",
    )
