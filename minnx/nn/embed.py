"""Embed: a table of learned vectors looked up by integer id (`attend`: as an output layer)."""
import jax.numpy as jnp

from ..module import Module
from ..variables import Param
from . import initializers
from .dtypes import promote_dtype
from .errors import check_features, check_rngs

default_embed_init = initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)

class Embed(Module):
    """Like `torch.nn.Embedding`: row i of `embedding` is id i's vector."""
    def __init__(self, num_embeddings: int, features: int, *, dtype=None,
                 param_dtype=jnp.float32, embedding_init=default_embed_init,
                 promote_dtype=promote_dtype, rngs=None):
        check_rngs(rngs, "Embed", num_embeddings, features)
        self.embedding = Param(embedding_init(rngs.params(), (num_embeddings, features),
                                              param_dtype))
        self.num_embeddings = num_embeddings
        self.features = features
        self.dtype = dtype or self.embedding.dtype
        self.param_dtype = param_dtype
        self.promote_dtype = promote_dtype

    def __call__(self, inputs):
        """Look up each id: the output has the input's shape plus a trailing `features` axis."""
        if not jnp.issubdtype(inputs.dtype, jnp.integer):
            raise ValueError(f"minnx.Embed looks up integer ids, got an input of dtype "
                             f"{inputs.dtype}. Pass integers, e.g. `ids.astype(jnp.int32)`.")
        embedding = self.embedding[...]
        (embedding,) = self.promote_dtype((embedding,), dtype=self.dtype, inexact=False)
        if self.num_embeddings == 1:
            return jnp.broadcast_to(embedding, inputs.shape + (self.features,))
        return jnp.take(embedding, inputs, axis=0)  # an id out of range gives NaNs, as in flax

    def attend(self, query):
        """Logits (..., num_embeddings): `query` dotted with every embedding (tied weights)."""
        check_features("Embed.attend", query, self.features, lambda got: (
            f"The query's last axis must be the embedding size {self.features}, not {got}."))
        query, embedding = self.promote_dtype((query, self.embedding[...]), dtype=self.dtype)
        return jnp.dot(query, embedding.T)
