"""Optimizer: an optax optimizer whose state lives in Variables, so it is a graph node.

optax is pure; `Optimizer` keeps its state in `OptState` Variables (so `minnx.jit` carries it)
and `update(model, grads)` writes the new parameters into the model, like PyTorch's `step()`.
"""
import jax
import jax.numpy as jnp
import optax

from .graph import state
from .graph import update as update_graph
from .objects import Pytree, data
from .state import as_pure
from .variables import Variable

class OptState(Variable):
    """Optimizer state (the step counter, and the base of the two below)."""
class OptArray(OptState):
    """An optax state leaf that is a bare array (the step count inside adam, say)."""
class OptVariable(OptState):
    """An optax state leaf shaped like a parameter (adam's mu and nu)."""

def to_opt_state(tree):  # every leaf of an optax state in an OptState Variable
    def wrap(x):
        if isinstance(x, Variable):
            return OptVariable(x.get_value(), **x.get_metadata())
        return OptArray(x)
    return jax.tree.map(wrap, tree, is_leaf=lambda x: isinstance(x, Variable))

_MISSING = object()

class Optimizer(Pytree):
    """`Optimizer(model, optax.adamw(1e-3), wrt=minnx.Param)`, then `.update(model, grads)`."""
    def __init__(self, model, tx: optax.GradientTransformation, *, wrt=_MISSING, graph=None):
        if wrt is _MISSING:
            raise TypeError("Missing required argument `wrt`: which Variables to update. Write "
                            "Optimizer(model, tx, wrt=minnx.Param) (flax requires it since 0.11).")
        self.graph = graph
        self.step = OptState(jnp.array(0, dtype=jnp.uint32))
        self.tx = tx
        self.opt_state = data(to_opt_state(tx.init(state(model, wrt, graph=graph))))
        self.wrt = wrt

    def update(self, model, grads=_MISSING, /, **kwargs):
        """One step: new parameters into `model`, new state here; returns optax's updates."""
        if grads is _MISSING:
            raise TypeError("Missing required argument `grads`: write optimizer.update(model, "
                            "grads) (since flax 0.11 the optimizer does not hold the model).")
        params = as_pure(state(model, self.wrt, graph=self.graph))
        grad_values = as_pure(state(grads, self.wrt, graph=self.graph))
        updates, new_opt_state = self.tx.update(grad_values, as_pure(self.opt_state), params,
                                                **as_pure(kwargs))
        update_graph(model, optax.apply_updates(params, updates))
        update_graph(self.opt_state, state(new_opt_state, graph=self.graph))
        self.step[...] += 1
        return updates
