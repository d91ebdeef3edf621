"""Attention on minnx and flax.nnx side by side: the mask helpers, dot_product_attention, and
MultiHeadAttention (same parameters from the same seed, same outputs, dropout in train and eval
mode), plus the errors a learner meets. flax 0.12 wants `decode=False`, so every layer passes it."""
import jax
import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx
from flax.nnx.nn.attention import dot_product_attention_weights as flax_weights
from oracle import run_both

import minnx
from minnx.nn.attention import dot_product_attention_weights as minnx_weights

X = jax.random.normal(jax.random.key(42), (2, 4, 8))          # [batch, length, features]
KV = jax.random.normal(jax.random.key(7), (2, 6, 5))          # a longer, narrower memory
TOKENS = jnp.array([[3, 1, 4, 0], [1, 5, 0, 0]])              # 0 is padding
Q, K, V = (jax.random.normal(k, (2, 4, 3, 5)) for k in jax.random.split(jax.random.key(1), 3))


def test_mask_helpers():
    def body(nnx):
        pad = nnx.make_attention_mask(TOKENS > 0, TOKENS > 0)
        causal = nnx.make_causal_mask(TOKENS)
        return {"pad": pad, "causal": causal, "both": nnx.combine_masks(pad, causal),
                "one": nnx.combine_masks(None, causal, dtype=jnp.bool_), "none": nnx.combine_masks(None, None),
                "extra": nnx.make_attention_mask(TOKENS, TOKENS[:, :3], extra_batch_dims=2, dtype=jnp.int32),
                "greater": nnx.make_attention_mask(TOKENS, TOKENS, jnp.greater), "1d": nnx.make_causal_mask(TOKENS[0])}
    run_both(body)


@pytest.mark.parametrize("case", ["plain", "mask", "bias", "both", "causal", "mask+causal"])
def test_dot_product_attention(case):
    mask = minnx.make_attention_mask(TOKENS > 0, TOKENS > 0) if "mask" in case or case == "both" else None
    bias = jax.random.normal(jax.random.key(3), (2, 3, 4, 4)) if case in ("bias", "both") else None

    def body(nnx):
        kw = dict(bias=bias, mask=mask, is_causal="causal" in case)
        return {"out": nnx.dot_product_attention(Q, K, V, **kw),
                "weights": (minnx_weights if nnx is minnx else flax_weights)(Q, K, **kw),
                "no_batch": nnx.dot_product_attention(Q[0], K[0], V[0], mask=None if mask is None else mask[0]),
                "two_batch": nnx.dot_product_attention(Q[None], K[None], V[None])}
    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("broadcast_dropout", [True, False])
def test_dot_product_attention_dropout(broadcast_dropout):
    def body(nnx):
        kw = dict(dropout_rng=jax.random.key(0), dropout_rate=0.4, broadcast_dropout=broadcast_dropout)
        return [nnx.dot_product_attention(Q, K, V, **kw), nnx.dot_product_attention(Q, K, V, deterministic=True, **kw)]
    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"qkv_features": 16}, {"out_features": 3}, {"use_bias": False},
                                    {"num_kv_heads": 2}, {"kernel_init": jax.nn.initializers.xavier_uniform()},
                                    {"out_kernel_init": jax.nn.initializers.zeros, "out_bias_init": jax.nn.initializers.ones},
                                    {"dtype": jnp.bfloat16}, {"param_dtype": jnp.bfloat16}])
def test_mha_self_attention(kwargs):
    def body(nnx):
        layer = nnx.MultiHeadAttention(4, 8, decode=False, rngs=nnx.Rngs(0), **kwargs)
        return {"params": nnx.state(layer), "y": layer(X), "qq": layer(X, X), "batchless": layer(X[0])}
    run_both(body, rtol=2e-2 if kwargs.get("dtype") or kwargs.get("param_dtype") else 1e-5, atol=1e-5)


def test_mha_cross_and_masked_attention_and_sown_weights():
    pad = minnx.make_attention_mask(TOKENS > 0, jnp.ones((2, 6)))

    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, qkv_features=6, out_features=7, in_kv_features=5, decode=False,
                                       rngs=nnx.Rngs(params=3))
        y = layer(X, KV, KV * 2, mask=pad, sow_weights=True)
        out = {"params": nnx.state(layer, nnx.Param), "y": y, "kv": layer(X, KV, sow_weights=True),
               "sown": nnx.state(layer, nnx.Intermediate)}
        self_attn = nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(params=3))
        causal = nnx.combine_masks(nnx.make_causal_mask(TOKENS), nnx.make_attention_mask(TOKENS > 0, TOKENS > 0))
        return {**out, "causal": self_attn(X, mask=causal), "is_causal": self_attn(X, is_causal=True),
                "is_causal_sown": self_attn(X, mask=causal, is_causal=True, sow_weights=True),
                "self_sown": nnx.state(self_attn, nnx.Intermediate)}
    run_both(body, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"num_kv_heads": 1}])
def test_mha_dropout_train_and_eval(kwargs):
    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, dropout_rate=0.5, decode=False, rngs=nnx.Rngs(0), **kwargs)
        layer.train()
        a, b = layer(X), layer(X)                       # two draws from the layer's own stream
        det = layer(X, deterministic=True)
        given = layer(X, rngs=nnx.Rngs(dropout=5))      # a call-time stream takes precedence
        rng_state = nnx.state(layer, nnx.RngState)
        layer.eval()
        return {"a": a, "b": b, "det": det, "given": given, "rng_state": rng_state, "eval": layer(X),
                "forced": layer(X, deterministic=False), "deterministic": layer.deterministic}
    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert not (out["a"] == out["b"]).all() and (out["det"] == out["eval"]).all()


@pytest.mark.parametrize("broadcast_dropout", [True, False])
def test_mha_dropout_without_kept_rngs(broadcast_dropout):
    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, dropout_rate=0.3, deterministic=False, keep_rngs=False, decode=False,
                                       broadcast_dropout=broadcast_dropout, rngs=nnx.Rngs(0))
        stream = nnx.Rngs(dropout=1).dropout
        return {"state": nnx.state(layer), "y": layer(X, rngs=stream), "y2": layer(X, rngs=stream)}
    run_both(body, rtol=1e-5, atol=1e-6)


def test_mha_inside_jit_and_grad():
    def body(nnx):
        layer = nnx.MultiHeadAttention(2, 8, dropout_rate=0.2, deterministic=False, decode=False, rngs=nnx.Rngs(0))

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
    both_raise(lambda nnx: nnx.MultiHeadAttention(3, 10, decode=False, rngs=nnx.Rngs(0)), ValueError,
               r"qkv_features=10 does not split evenly into num_heads=3 heads\. Use num_heads in \[1, 2, 5, 10\], "
               r"or qkv_features=12")
    both_raise(lambda nnx: nnx.MultiHeadAttention(4, 8, num_kv_heads=3, decode=False, rngs=nnx.Rngs(0)),
               ValueError, r"num_heads=4 is not a multiple of num_kv_heads=3")


def test_mha_without_rngs():
    both_raise(lambda nnx: nnx.MultiHeadAttention(2, 8), TypeError,
               r"minnx\.MultiHeadAttention needs `rngs=`.*MultiHeadAttention\(2, 8, decode=False, rngs=minnx\.Rngs")


def test_inputs_of_the_wrong_size():
    make = lambda nnx: nnx.MultiHeadAttention(2, 8, decode=False, rngs=nnx.Rngs(0))  # noqa: E731
    both_raise(lambda nnx: make(nnx)(KV), ValueError,
               r"minnx\.MultiHeadAttention expected inputs whose last axis \(features\) has size 8, got an input of "
               r"shape \(2, 6, 5\)\. Build it with in_features=5")
    both_raise(lambda nnx: make(nnx)(X, KV), ValueError,
               r"last axis \(key/value features\) has size 8.*build it with in_kv_features=5", flax_error=TypeError)
    both_raise(lambda nnx: make(nnx)(X, inputs_v=X), ValueError, r"inputs_v without inputs_k")


def test_mode_and_decode_must_be_known():
    both_raise(lambda nnx: nnx.MultiHeadAttention(2, 8, rngs=nnx.Rngs(0))(X), ValueError, r"pass decode=False")
    both_raise(lambda nnx: nnx.MultiHeadAttention(2, 8, dropout_rate=0.1, decode=False, rngs=nnx.Rngs(0))(X),
               ValueError, r"dropout_rate=0\.1 but does not know if it is training: call model\.train\(\)")
    both_raise(lambda nnx: nnx.MultiHeadAttention(2, 8, dropout_rate=0.1, deterministic=False, keep_rngs=False,
                                                  decode=False, rngs=nnx.Rngs(0))(X),
               ValueError, r"training with dropout but has no random stream \(keep_rngs=False\): pass rngs=")
