"""Optimizer: an optax optimizer whose state lives in Variables, so it is a graph node.

PyTorch's `optimizer.step()` updates the parameters it was given in place. optax is pure: its
`update(grads, opt_state, params)` returns new updates and a new state. `Optimizer` keeps that
state in `OptVariable`s so that `minnx.jit` can carry it in and out like a Module's, and its
`update(model, grads)` writes the new parameters into the model.
"""
import jax
import jax.numpy as jnp
import optax

from .graph import state, update as update_graph
from .module import Object, data
from .state import State, as_pure
from .variables import Variable


class OptState(Variable): """Optimizer state (the step counter, and the base of the two below)."""
class OptArray(OptState): """An optax state leaf that is a bare array (a step count inside adam, say)."""
class OptVariable(OptState): """An optax state leaf shaped like a parameter (adam's mu and nu)."""


def to_opt_state(tree):
    """Wrap every leaf of an optax state in an OptState Variable."""
    def wrap(x):
        return OptVariable(x.get_value(), **x.get_metadata()) if isinstance(x, Variable) else OptArray(x)
    return jax.tree.map(wrap, tree, is_leaf=lambda x: isinstance(x, Variable))


class Optimizer(Object):
    """`Optimizer(model, optax.adamw(1e-3), wrt=minnx.Param)`; then `optimizer.update(model, grads)`."""

    def __init__(self, model, tx: optax.GradientTransformation, *, wrt):
        self.step = OptState(jnp.array(0, dtype=jnp.uint32))
        self.tx = tx
        self.opt_state = data(to_opt_state(tx.init(state(model, wrt))))
        self.wrt = wrt

    def update(self, model, grads, /, **kwargs):
        """One optimisation step: new parameters into `model`, new state into the optimizer.
        Returns the updates optax computed."""
        params = as_pure(state(model, self.wrt))
        if isinstance(grads, State):
            grads = grads.filter(self.wrt)
        updates, new_opt_state = self.tx.update(as_pure(grads), as_pure(self.opt_state), params,
                                                **as_pure(kwargs))
        update_graph(model, optax.apply_updates(params, updates))
        jax.tree.map(lambda var, value: var.set_value(value), self.opt_state, new_opt_state,
                     is_leaf=lambda x: isinstance(x, Variable))
        self.step[...] += 1
        return updates
