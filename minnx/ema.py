"""EMA: an exponential moving average of a model's weights, kept in Variables.

`ema = EMA(model, decay=0.99, only=Param)`; `ema.update(model)` after each step (inside `jit`
too) blends the values in; `ema.apply_to(model)` is a model whose Variables are the averages.
"""
import jax
import jax.numpy as jnp

from .graph import merge, split, state
from .objects import Object, data
from .state import merge_state
from .variables import Variable

def _is_variable(x):
    return isinstance(x, Variable)

def _copy(path, x):
    if not isinstance(x, Variable):
        raise TypeError(f"minnx.EMA only averages Variables, got a {type(x).__name__} at '"
                        f"{'/'.join(map(str, path))}': select Variables, e.g. only=minnx.Param.")
    return type(x)(jnp.copy(x.get_value()), **x.get_metadata())

class EMA(Object):
    """`EMA(model, decay, only=...)`: the moving averages live in `ema.params`, a State."""
    def __init__(self, params, decay: float, *, only=..., graph=None):
        self.graph = graph
        self.decay = decay
        self.filter = only
        self.params = data(jax.tree.map_with_path(_copy, state(params, only), is_leaf=_is_variable))

    def update(self, updates):
        """Blend the values of `updates` (a model, or a State like `params`) into the averages."""
        def blend(average, value):
            new = value.get_value() if isinstance(value, Variable) else value
            average.set_value(self.decay * average.get_value() + (1.0 - self.decay) * new)
        jax.tree.map(blend, self.params, state(updates, self.filter), is_leaf=_is_variable)

    def apply_to(self, model):
        """A new model like `model`, whose averaged Variables are the EMA's own."""
        graphdef, model_state = split(model)
        return merge(graphdef, merge_state(model_state, self.params))
