"""Dropout: zero a random fraction of inputs in training, do nothing in eval mode. The layer
keeps its own forked RngStream, so calling it advances only its stream."""
import jax
import jax.numpy as jnp
from jax import lax

from ..module import Module
from ..rngs import Rngs, RngStream

class Dropout(Module):
    def __init__(self, rate: float, *, broadcast_dims=(), deterministic: bool = False,
                 rng_collection: str = "dropout", rngs=None):
        self.rate = rate
        self.broadcast_dims = broadcast_dims
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        if isinstance(rngs, Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = None
        else:
            raise TypeError("minnx.Dropout: rngs must be a minnx.Rngs or RngStream, got "
                            f"{type(rngs).__name__}.")

    def set_view(self, deterministic=None):  # what nnx.view(model, deterministic=...) sets
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(self, inputs, *, deterministic=None, rngs=None):
        deterministic = self.deterministic if deterministic is None else deterministic
        if self.rate == 0.0 or deterministic:
            return inputs
        if self.rate == 1.0:
            return jnp.zeros_like(inputs)
        rngs = rngs if rngs is not None else self.rngs
        if rngs is None:
            raise ValueError("minnx.Dropout is in training mode (deterministic=False) but has no "
                             "random stream. Build it with Dropout(rate, rngs=rngs), pass rngs= "
                             "when calling it, or call model.eval() to switch it off.")
        key = rngs  # a key, or a stream or Rngs to draw one from
        if isinstance(rngs, Rngs):
            key = rngs[self.rng_collection]()
        elif isinstance(rngs, RngStream):
            key = rngs()
        keep = 1.0 - self.rate
        shape = list(inputs.shape)
        for dim in self.broadcast_dims:
            shape[dim] = 1
        mask = jnp.broadcast_to(jax.random.bernoulli(key, p=keep, shape=shape), inputs.shape)
        return lax.select(mask, inputs / keep, jnp.zeros_like(inputs))
