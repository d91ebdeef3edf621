"""Attention: scaled dot-product attention, its masks, and MultiHeadAttention with the key/value
cache of autoregressive decoding. Shapes follow flax: queries/keys/values are
`[batch..., length, heads, head_dim]`, weights and masks `[batch..., heads, q_len, kv_len]`."""
import jax
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..objects import data
from ..rngs import Rngs
from ..variables import Cache, Intermediate
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, check_rngs
from .linear import LinearGeneral
from .normalization import LayerNorm

def dot_product_attention_weights(query, key, bias=None, mask=None, broadcast_dropout=True,
                                  dropout_rng=None, dropout_rate=0.0, deterministic=False,
                                  dtype=None, precision=None, module=None,
                                  promote_dtype=promote_dtype, is_causal=False):
    """softmax(q k^T / sqrt(d) + bias), masked, then dropout. With fewer key heads than query
    heads (grouped-query attention), key head j serves query heads j * group ... up to the next."""
    query, key = promote_dtype((query, key), dtype=dtype)
    dtype = query.dtype
    group = query.shape[-2] // key.shape[-2]
    key = jnp.repeat(key, group, axis=-2)
    query = query / jnp.sqrt(query.shape[-1]).astype(dtype)
    weights = jnp.einsum("...qhd,...khd->...hqk", query, key, precision=precision)
    if bias is not None:
        weights = weights + bias
    if is_causal:
        causal = jnp.tril(jnp.ones(weights.shape[-2:], dtype))
        causal_shape = weights.shape if mask is None else mask.shape
        mask = combine_masks(mask, jnp.broadcast_to(causal, causal_shape), dtype=dtype)
    if mask is not None:
        weights = jnp.where(mask, weights, jnp.finfo(dtype).min)
    weights = jax.nn.softmax(weights).astype(dtype)
    if module is not None:
        module.sow(Intermediate, "attention_weights", weights)
    if not deterministic and dropout_rate > 0.0:
        keep_prob = 1.0 - dropout_rate
        shape = weights.shape
        if broadcast_dropout:  # one dropout pattern shared by every batch entry and head
            shape = (1,) * (key.ndim - 2) + weights.shape[-2:]
        keep = jax.random.bernoulli(dropout_rng, keep_prob, shape)
        weights = weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype=dtype))
    return weights

def dot_product_attention(query, key, value, bias=None, mask=None, broadcast_dropout=True,
                          dropout_rng=None, dropout_rate=0.0, deterministic=False, dtype=None,
                          precision=None, module=None, promote_dtype=promote_dtype,
                          is_causal=False):
    """The attention weights applied to `value`: shape `[batch..., q_len, heads, v_dim]`."""
    query, key, value = promote_dtype((query, key, value), dtype=dtype)
    if not query.ndim == key.ndim == value.ndim:
        raise ValueError("minnx attention: query, key and value ([batch..., length, heads, "
                         f"head_dim]) differ in rank: {query.shape}, {key.shape}, {value.shape}.")
    if key.shape[-3] != value.shape[-3]:
        raise ValueError(f"minnx attention: keys and values differ in length ({key.shape[-3]} "
                         f"vs {value.shape[-3]}); give one value per key.")
    if dropout_rate == 0.0 and module is None:
        return _fused_attention(query, key, value, bias, mask, is_causal)
    weights = dot_product_attention_weights(
        query, key, bias, mask, broadcast_dropout, dropout_rng, dropout_rate, deterministic,
        dtype, precision, module, promote_dtype, is_causal)
    value = jnp.repeat(value, weights.shape[-3] // value.shape[-2], axis=-2)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value, precision=precision)

def _fused_attention(query, key, value, bias, mask, is_causal):
    """As flax without dropout or sown weights: `jax.nn.dot_product_attention` (one batch axis)."""
    batch = query.shape[:-3]
    def one_batch_axis(x):
        if x is None or len(batch) <= 1:
            return x
        return x.reshape(-1, *x.shape[-3:])
    if mask is not None:
        mask = mask.astype(jnp.bool_)
    query, key, value, bias, mask = (one_batch_axis(x) for x in (query, key, value, bias, mask))
    out = jax.nn.dot_product_attention(query, key, value, bias, mask, is_causal=is_causal)
    return out.reshape(*batch, *out.shape[-3:])

def make_attention_mask(query_input, key_input, pairwise_fn=jnp.multiply, extra_batch_dims=0,
                        dtype=jnp.float32):
    """`pairwise_fn(query_input[..., :, None], key_input[..., None, :])`, `[batch..., 1, q, kv]`."""
    mask = pairwise_fn(jnp.expand_dims(query_input, -1), jnp.expand_dims(key_input, -2))
    mask = jnp.expand_dims(mask, -3)
    mask = jnp.expand_dims(mask, tuple(range(extra_batch_dims)))
    return mask.astype(dtype)

def make_causal_mask(x, extra_batch_dims=0, dtype=jnp.float32):
    """A `[batch..., 1, len, len]` mask letting position i attend to positions <= i."""
    idxs = jnp.broadcast_to(jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape)
    return make_attention_mask(idxs, idxs, jnp.greater_equal, extra_batch_dims, dtype)

def combine_masks(*masks, dtype=jnp.float32):
    """The logical AND of the masks that are not None (None if there are none)."""
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    if len({m.ndim for m in masks}) > 1:
        raise ValueError("minnx.combine_masks: masks must have the same rank, got "
                         f"{tuple(m.ndim for m in masks)}.")
    combined = masks[0]
    for mask in masks[1:]:
        combined = jnp.logical_and(combined, mask)
    return combined.astype(dtype)

FLAX_ONLY_OPTIONS = {"metadata": "sharding metadata (minnx has no sharding annotations)",
                     "sharding": "output sharding (minnx has no sharding annotations)"}

def refuse_flax_only_options(where, **options):
    """Refuse flax.nnx options minnx lacks, named by last word, if given (not None or {})."""
    given = [name for name, value in options.items() if value]
    if given:
        dot_general = "a custom dot_general (deprecated in flax too)"
        what = [f"{name}= is {FLAX_ONLY_OPTIONS.get(name.split('_')[-1], dot_general)}"
                for name in given]
        raise TypeError(f"{where} does not support {'; '.join(what)}. Leave it out, or run on "
                        "flax.nnx.")

class MultiHeadAttention(Module):
    """Like `torch.nn.MultiheadAttention(batch_first=True)`. With `decode=True` each call decodes
    one position, attending to every position written so far in the cache `init_cache` made."""
    def __init__(self, num_heads: int, in_features: int, qkv_features=None, out_features=None,
                 num_kv_heads=None, in_kv_features=None, *, dtype=None,
                 param_dtype=jnp.float32, broadcast_dropout=True, dropout_rate=0.0,
                 deterministic=None, precision=None, kernel_init=initializers.lecun_normal(),
                 out_kernel_init=None, bias_init=initializers.zeros_init(), out_bias_init=None,
                 use_bias=True, attention_fn=dot_product_attention, decode=None,
                 normalize_qk=False, qkv_promote_dtype=promote_dtype,
                 out_promote_dtype=promote_dtype, ln_promote_dtype=promote_dtype,
                 qkv_dot_general=None, out_dot_general=None, qkv_dot_general_cls=None,
                 out_dot_general_cls=None, rngs=None, keep_rngs=True, kernel_metadata=None,
                 out_kernel_metadata=None, bias_metadata=None, out_bias_metadata=None,
                 query_ln_scale_metadata=None, key_ln_scale_metadata=None):
        check_rngs(rngs, "MultiHeadAttention", num_heads, in_features, decode=False)
        refuse_flax_only_options(
            "minnx.MultiHeadAttention", qkv_dot_general=qkv_dot_general,
            out_dot_general=out_dot_general, qkv_dot_general_cls=qkv_dot_general_cls,
            out_dot_general_cls=out_dot_general_cls, kernel_metadata=kernel_metadata,
            out_kernel_metadata=out_kernel_metadata, bias_metadata=bias_metadata,
            out_bias_metadata=out_bias_metadata, query_ln_scale_metadata=query_ln_scale_metadata,
            key_ln_scale_metadata=key_ln_scale_metadata)
        self.num_heads = num_heads
        self.in_features = in_features
        self.qkv_features = in_features if qkv_features is None else qkv_features
        self.out_features = in_features if out_features is None else out_features
        self.in_kv_features = in_features if in_kv_features is None else in_kv_features
        self.num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        _check_heads(num_heads, self.num_kv_heads, self.qkv_features)
        self.head_dim = self.qkv_features // num_heads
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.broadcast_dropout = broadcast_dropout
        self.dropout_rate = dropout_rate
        self.deterministic = deterministic
        self.precision = precision
        self.use_bias = use_bias
        self.attention_fn = attention_fn
        self.decode = decode
        self.normalize_qk = normalize_qk

        def projection(in_features, out_features, promote, axis=-1, kernel=kernel_init,
                       bias=bias_init):
            return LinearGeneral(in_features, out_features, axis=axis, use_bias=use_bias,
                                 dtype=dtype, param_dtype=param_dtype, kernel_init=kernel,
                                 bias_init=bias, precision=precision, promote_dtype=promote,
                                 rngs=rngs)
        heads = (num_heads, self.head_dim)
        kv_heads = (self.num_kv_heads, self.head_dim)
        self.query = projection(in_features, heads, qkv_promote_dtype)
        self.key = projection(self.in_kv_features, kv_heads, qkv_promote_dtype)
        self.value = projection(self.in_kv_features, kv_heads, qkv_promote_dtype)
        def layer_norm():  # over each head's queries and keys (ViT-22B), if normalize_qk
            return LayerNorm(self.head_dim, use_bias=False, dtype=dtype, param_dtype=param_dtype,
                             promote_dtype=ln_promote_dtype, rngs=rngs)
        self.query_ln = layer_norm() if normalize_qk else None
        self.key_ln = layer_norm() if normalize_qk else None
        self.out = projection(heads, self.out_features, out_promote_dtype, (-2, -1),
                              out_kernel_init or kernel_init, out_bias_init or bias_init)
        self.rngs = rngs.dropout.fork() if keep_rngs and dropout_rate > 0 else None
        # The decoding cache, empty until init_cache: data(None) marks these as state, not config.
        self.cached_key = data(None)
        self.cached_value = data(None)
        self.cache_index = data(None)

    def __call__(self, inputs_q, inputs_k=None, inputs_v=None, *, mask=None, deterministic=None,
                 rngs=None, sow_weights=False, decode=None, is_causal=False, out_sharding=None,
                 qkv_sharding=None):
        """Attend from `inputs_q` to `inputs_k`/`inputs_v` (default `inputs_q`: self-attention)."""
        where = "minnx.MultiHeadAttention"
        refuse_flax_only_options(where, out_sharding=out_sharding, qkv_sharding=qkv_sharding)
        if inputs_k is None and inputs_v is not None:
            raise ValueError(f"{where}: inputs_v without inputs_k; pass the same array as "
                             "inputs_k for both.")
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        check_features("MultiHeadAttention", inputs_q, self.in_features, lambda got: (
            f"Build it with in_features={got}, or project the queries to {self.in_features} "
            "features."))
        for x in (inputs_k, inputs_v):
            check_features("MultiHeadAttention", x, self.in_kv_features, lambda got: (
                f"For cross-attention build it with in_kv_features={got}."),
                axis_name="key/value feature")
        query = self.query(inputs_q)
        key = self.key(inputs_k)
        value = self.value(inputs_v)
        if self.normalize_qk:
            query = self.query_ln(query)
            key = self.key_ln(key)
        decode = self.decode if decode is None else decode
        if decode is None:
            raise ValueError(f"{where}: pass decode=False (or True, to decode with a cache) to "
                             "the constructor or the call; flax 0.12 asks for it too.")
        if decode:
            key, value, mask = self._use_cache(key, value, mask)
        deterministic, dropout_rng = self._dropout(deterministic, rngs)
        module = self if sow_weights else None
        x = self.attention_fn(query, key, value, mask=mask, dropout_rng=dropout_rng,
                              dropout_rate=self.dropout_rate, deterministic=deterministic,
                              broadcast_dropout=self.broadcast_dropout, dtype=self.dtype,
                              precision=self.precision, module=module, is_causal=is_causal)
        return self.out(x)

    def _use_cache(self, key, value, mask):
        """Write the key and value at `cache_index`; return the cache, masking unwritten rows."""
        where = "minnx.MultiHeadAttention(decode=True)"
        if self.cached_key is None or self.cached_value is None or self.cache_index is None:
            raise ValueError(f"{where}: the key/value cache is not there; call "
                             "init_cache((batch, max_length, features)) first.")
        *batch, max_length, num_kv_heads, head_dim = self.cached_key.shape
        expected = (*batch, 1, num_kv_heads, head_dim)
        if key.shape != expected:
            raise ValueError(f"{where} decodes one position per call, into a cache for batch "
                             f"{tuple(batch)}: expected keys {expected}, got {key.shape}. Feed "
                             "inputs (*batch, 1, features), or init_cache for this batch.")
        if key.dtype != self.cached_key.dtype:
            raise TypeError(f"{where}: the cache holds {self.cached_key.dtype} but the keys are "
                            f"{key.dtype}; make it with init_cache(shape, dtype=jnp.{key.dtype}).")
        index = self.cache_index[...]
        zero = jnp.zeros((), index.dtype)
        start = (zero,) * len(batch) + (index, zero, zero)
        key = lax.dynamic_update_slice(self.cached_key[...], key, start)
        value = lax.dynamic_update_slice(self.cached_value[...], value, start)
        self.cached_key[...] = key
        self.cached_value[...] = value
        self.cache_index[...] = index + 1
        written = jnp.broadcast_to(jnp.arange(max_length) <= index, (*batch, 1, 1, max_length))
        return key, value, combine_masks(mask, written)

    def _dropout(self, deterministic, rngs):
        """(deterministic, dropout key): the call's choice first, then the constructor's."""
        if self.dropout_rate == 0.0:  # as flax: no dropout, no question
            return True, None
        deterministic = self.deterministic if deterministic is None else deterministic
        if deterministic is None:
            raise ValueError(f"minnx.MultiHeadAttention has dropout_rate={self.dropout_rate} but "
                             "does not know if it is training: call model.train() or model.eval(),"
                             " or pass deterministic= to the constructor or the call.")
        if deterministic:
            return True, None
        rngs = self.rngs if rngs is None else rngs
        if isinstance(rngs, Rngs):
            rngs = rngs.dropout
        if rngs is None:
            raise ValueError("minnx.MultiHeadAttention is training with dropout but has no random "
                             "stream (keep_rngs=False): pass rngs= to the call, or model.eval().")
        return False, rngs()

    def init_cache(self, input_shape, dtype=jnp.float32):
        """An empty cache for inputs (*batch, max_length, features), in the keys' dtype."""
        if len(input_shape) < 2:
            raise ValueError("minnx.MultiHeadAttention.init_cache takes the shape of a whole "
                             f"input, (*batch, max_length, features), got {tuple(input_shape)}.")
        cache_shape = (*input_shape[:-1], self.num_kv_heads, self.head_dim)
        self.cached_key = Cache(jnp.zeros(cache_shape, dtype))
        self.cached_value = Cache(jnp.zeros(cache_shape, dtype))
        self.cache_index = Cache(jnp.array(0, dtype=jnp.int32))

    def set_view(self, deterministic=None, decode=None, batch_size=None, max_length=None):
        # for nnx.view; as in flax 0.12.8 it makes no cache (batch_size, max_length unused)
        if deterministic is not None:
            self.deterministic = deterministic
        if decode is not None:
            self.decode = decode

def _check_heads(num_heads, num_kv_heads, qkv_features):
    if qkv_features % num_heads:
        ok = [h for h in range(1, qkv_features + 1) if qkv_features % h == 0]
        multiple = -(-qkv_features // num_heads) * num_heads
        raise ValueError(f"minnx.MultiHeadAttention: qkv_features={qkv_features} does not split "
                         f"evenly into num_heads={num_heads} heads. Use num_heads in {ok}, or "
                         f"qkv_features={multiple} (any multiple of {num_heads}).")
    if num_heads % num_kv_heads:
        raise ValueError(f"minnx.MultiHeadAttention: num_heads={num_heads} is not a multiple of "
                         f"num_kv_heads={num_kv_heads}: each key/value head serves a group.")
