"""Attention: scaled dot-product attention, its mask helpers, and MultiHeadAttention.

Shapes follow flax, not PyTorch: queries/keys/values are `[batch..., length, heads, head_dim]`,
weights and masks `[batch..., heads, q_length, kv_length]`, and a mask keeps where it is True.
"""
import functools
import math

import jax
import jax.numpy as jnp

from ..module import Module
from ..rngs import Rngs
from ..variables import Intermediate, Param
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, need_rngs
from .normalization import LayerNorm


def dot_product_attention_weights(query, key, bias=None, mask=None, broadcast_dropout=True, dropout_rng=None,
                                  dropout_rate=0.0, deterministic=False, dtype=None, precision=None, module=None,
                                  promote_dtype=promote_dtype, is_causal=False):
    """softmax(q k^T / sqrt(d) + bias, masked), with dropout: shape `[batch..., heads, q_len, kv_len]`."""
    query, key = promote_dtype((query, key), dtype=dtype)
    dtype, ndim = query.dtype, key.ndim
    query = query / jnp.sqrt(query.shape[-1]).astype(dtype)
    key = jnp.repeat(key, query.shape[-2] // key.shape[-2], axis=-2)  # grouped-query attention: share k heads
    weights = jnp.einsum("...qhd,...khd->...hqk", query, key, precision=precision)
    weights = weights if bias is None else weights + bias
    if is_causal:
        causal = jnp.tril(jnp.ones(weights.shape[-2:], dtype))
        mask = combine_masks(mask, jnp.broadcast_to(causal, weights.shape if mask is None else mask.shape), dtype=dtype)
    if mask is not None:
        weights = jnp.where(mask, weights, jnp.finfo(dtype).min)
    weights = jax.nn.softmax(weights).astype(dtype)
    if module is not None:
        module.sow(Intermediate, "attention_weights", weights)
    if not deterministic and dropout_rate > 0.0:
        keep_prob = 1.0 - dropout_rate
        shape = (1,) * (ndim - 2) + weights.shape[-2:] if broadcast_dropout else weights.shape
        keep = jax.random.bernoulli(dropout_rng, keep_prob, shape)
        weights = weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype=dtype))
    return weights


def dot_product_attention(query, key, value, bias=None, mask=None, broadcast_dropout=True, dropout_rng=None,
                          dropout_rate=0.0, deterministic=False, dtype=None, precision=None, module=None,
                          promote_dtype=promote_dtype, is_causal=False):
    """The attention weights applied to `value`: shape `[batch..., q_len, heads, v_dim]`."""
    query, key, value = promote_dtype((query, key, value), dtype=dtype)
    if key.shape[-3] != value.shape[-3]:
        raise ValueError(f"minnx attention: keys and values differ in length ({key.shape[-3]} vs {value.shape[-3]}).")
    if dropout_rate == 0.0 and module is None:  # as flax: JAX's fused attention, one batch axis at most
        batch = query.shape[:-3]
        flat = lambda x: x.reshape(-1, *x.shape[-3:]) if len(batch) > 1 else x  # noqa: E731
        query, key, value, bias, mask = jax.tree.map(flat, (query, key, value, bias, mask))
        mask = None if mask is None else mask.astype(jnp.bool_)
        out = jax.nn.dot_product_attention(query, key, value, bias, mask, is_causal=is_causal)
        return out.reshape(*batch, *out.shape[-3:])
    weights = dot_product_attention_weights(query, key, bias, mask, broadcast_dropout, dropout_rng, dropout_rate,
                                            deterministic, dtype, precision, module, promote_dtype, is_causal)
    value = jnp.repeat(value, weights.shape[-3] // value.shape[-2], axis=-2)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value, precision=precision)


def make_attention_mask(query_input, key_input, pairwise_fn=jnp.multiply, extra_batch_dims=0, dtype=jnp.float32):
    """`pairwise_fn(query_input[..., :, None], key_input[..., None, :])` as a `[batch..., 1, q, kv]` mask."""
    mask = pairwise_fn(jnp.expand_dims(query_input, -1), jnp.expand_dims(key_input, -2))
    mask = jnp.expand_dims(jnp.expand_dims(mask, -3), tuple(range(extra_batch_dims)))
    return mask.astype(dtype)


def make_causal_mask(x, extra_batch_dims=0, dtype=jnp.float32):
    """A `[batch..., 1, len, len]` mask letting position i attend to positions <= i."""
    idxs = jnp.broadcast_to(jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape)
    return make_attention_mask(idxs, idxs, jnp.greater_equal, extra_batch_dims, dtype)


def combine_masks(*masks, dtype=jnp.float32):
    """The logical AND of the masks that are not None (None if there are none)."""
    masks = [m for m in masks if m is not None]
    if len({m.ndim for m in masks}) > 1:
        raise ValueError(f"minnx.combine_masks: masks must have the same rank, got {tuple(m.ndim for m in masks)}.")
    return functools.reduce(jnp.logical_and, masks).astype(dtype) if masks else None


class _Projection(Module):
    """flax's LinearGeneral as attention uses it: contract the last `len(in_shape)` input axes."""

    def __init__(self, in_shape, out_shape, kernel_init, bias_init, promote_dtype, *, use_bias, dtype, param_dtype,
                 precision, rngs):
        n_in, n_out = math.prod(in_shape), math.prod(out_shape)  # flax draws the flat (in, out) matrix
        self.kernel = Param(kernel_init(rngs.params(), (n_in, n_out), param_dtype).reshape(*in_shape, *out_shape))
        self.bias = Param(bias_init(rngs.params(), (n_out,), param_dtype).reshape(out_shape)) if use_bias else None
        self.in_features, self.out_features, self.use_bias = in_shape, out_shape, use_bias
        self.dtype, self.param_dtype, self.precision, self.promote_dtype = dtype, param_dtype, precision, promote_dtype

    def __call__(self, inputs):
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        y = jnp.tensordot(inputs, kernel, len(self.in_features), precision=self.precision)  # a lax.dot_general
        return y if bias is None else y + bias


class MultiHeadAttention(Module):
    """Multi-head attention (`torch.nn.MultiheadAttention(batch_first=True)`): query/key/value/out projections."""

    def __init__(self, num_heads: int, in_features: int, qkv_features=None, out_features=None, num_kv_heads=None,
                 in_kv_features=None, *, dtype=None, param_dtype=jnp.float32, broadcast_dropout=True,
                 dropout_rate=0.0, deterministic=None, precision=None, kernel_init=initializers.lecun_normal(),
                 out_kernel_init=None, bias_init=initializers.zeros_init(), out_bias_init=None, use_bias=True,
                 attention_fn=dot_product_attention, decode=None, normalize_qk=False, qkv_promote_dtype=promote_dtype,
                 out_promote_dtype=promote_dtype, ln_promote_dtype=promote_dtype, rngs=None, keep_rngs=True):
        if rngs is None:
            raise need_rngs("MultiHeadAttention", f"MultiHeadAttention({num_heads}, {in_features}, decode=False, "
                                                  "rngs=minnx.Rngs(0))")
        self.num_heads, self.in_features = num_heads, in_features
        q = self.qkv_features = in_features if qkv_features is None else qkv_features
        self.out_features = in_features if out_features is None else out_features
        self.in_kv_features = in_features if in_kv_features is None else in_kv_features
        self.num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if q % num_heads:
            ok = [h for h in range(1, q + 1) if q % h == 0]
            raise ValueError(f"minnx.MultiHeadAttention: qkv_features={q} does not split evenly into num_heads="
                             f"{num_heads} heads. Use num_heads in {ok}, or qkv_features="
                             f"{-(-q // num_heads) * num_heads} (any multiple of {num_heads}).")
        if num_heads % self.num_kv_heads:
            raise ValueError(f"minnx.MultiHeadAttention: num_heads={num_heads} is not a multiple of num_kv_heads="
                             f"{self.num_kv_heads}; each key/value head must serve a whole group of query heads.")
        self.head_dim = q // num_heads
        self.dtype, self.param_dtype, self.precision, self.use_bias = dtype, param_dtype, precision, use_bias
        self.broadcast_dropout, self.dropout_rate, self.deterministic = broadcast_dropout, dropout_rate, deterministic
        self.attention_fn, self.decode, self.normalize_qk = attention_fn, decode, normalize_qk
        common = dict(use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, precision=precision, rngs=rngs)
        qkv = functools.partial(_Projection, kernel_init=kernel_init, bias_init=bias_init,
                                promote_dtype=qkv_promote_dtype, **common)
        kv = ((self.in_kv_features,), (self.num_kv_heads, self.head_dim))
        self.query, self.key, self.value = qkv((in_features,), (num_heads, self.head_dim)), qkv(*kv), qkv(*kv)
        ln = lambda: LayerNorm(self.head_dim, use_bias=False, dtype=dtype, param_dtype=param_dtype,  # noqa: E731
                               promote_dtype=ln_promote_dtype, rngs=rngs)
        self.query_ln, self.key_ln = (ln(), ln()) if normalize_qk else (None, None)
        self.out = _Projection((num_heads, self.head_dim), (self.out_features,), out_kernel_init or kernel_init,
                               out_bias_init or bias_init, out_promote_dtype, **common)
        self.rngs = rngs.dropout.fork() if keep_rngs and dropout_rate > 0 else None

    def __call__(self, inputs_q, inputs_k=None, inputs_v=None, *, mask=None, deterministic=None, rngs=None,
                 sow_weights=False, decode=None, is_causal=False):
        """Attend from `inputs_q` to `inputs_k`/`inputs_v` (both default to `inputs_q`: self-attention)."""
        where = "minnx.MultiHeadAttention"
        if inputs_k is None and inputs_v is not None:
            raise ValueError(f"{where}: inputs_v without inputs_k; pass the same array as inputs_k for both.")
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        check_features("MultiHeadAttention", inputs_q, self.in_features, lambda got: (
            f"Build it with in_features={got}, or project the queries to {self.in_features} features."))
        for x in (inputs_k, inputs_v):
            check_features("MultiHeadAttention", x, self.in_kv_features, lambda got: f"For cross-attention build "
                           f"it with in_kv_features={got}.", axis_name="key/value feature")
        if (self.decode if decode is None else decode) is not False:
            raise ValueError(f"{where}: pass decode=False to the constructor or the call (flax 0.12 asks for it "
                             "too); autoregressive decoding (decode=True, init_cache) is not part of minnx.")
        deterministic = self.deterministic if deterministic is None else deterministic
        deterministic = True if self.dropout_rate == 0.0 else deterministic  # as flax: no dropout, no question
        if deterministic is None:
            raise ValueError(f"{where} has dropout_rate={self.dropout_rate} but does not know if it is training: call "
                             "model.train() or model.eval(), or pass deterministic= to the constructor or the call.")
        rngs = self.rngs if rngs is None else rngs.dropout if isinstance(rngs, Rngs) else rngs
        if not deterministic and rngs is None:
            raise ValueError(f"{where} is training with dropout but has no random stream (keep_rngs=False): pass "
                             "rngs=minnx.Rngs(dropout=...) to the call, or call model.eval().")
        dropout_rng = None if deterministic else rngs()
        query, key, value = self.query(inputs_q), self.key(inputs_k), self.value(inputs_v)
        if self.normalize_qk:
            query, key = self.query_ln(query), self.key_ln(key)
        x = self.attention_fn(query, key, value, mask=mask, dropout_rng=dropout_rng, dropout_rate=self.dropout_rate,
                              broadcast_dropout=self.broadcast_dropout, deterministic=deterministic, dtype=self.dtype,
                              precision=self.precision, module=self if sow_weights else None, is_causal=is_causal)
        return self.out(x)
