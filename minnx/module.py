"""Module: the base class of layers and models, the counterpart of `torch.nn.Module`.

Parameters are made eagerly in `__init__` (pass every shape, and an `Rngs`); the forward pass is
`__call__`. It adds `set_attributes` (and `train()`/`eval()`), `sow`, and walking sub-Modules.
"""
import jax
import jax.numpy as jnp

from .filters import to_predicate
from .graph import iter_graph
from .objects import Pytree
from .variables import Perturbation, Variable

def _append(values, value):  # sow's default: keep every value, in a tuple
    return (*values, value)

class Module(Pytree):
    """Base class for layers and models."""
    def set_attributes(self, *filters, raise_if_not_found=True, graph=None, **attributes):
        """Set `attributes` on every sub-Module (selected by `filters`) that has them."""
        predicates = [to_predicate(f) for f in (filters or (True,))]
        not_found = set(attributes)
        for path, module in iter_modules(self, graph=graph):
            if not any(predicate(path, module) for predicate in predicates):
                continue
            for name, value in attributes.items():
                if hasattr(module, name):
                    not_found.discard(name)
                    setattr(module, name, value)
        if not_found and raise_if_not_found:
            raise ValueError(f"Could not find at least one instance of the following attributes: "
                             f"{sorted(not_found)}. Pass raise_if_not_found=False to ignore this.")

    def train(self, **attributes):
        """Training mode: Dropout drops, BatchNorm uses and updates batch statistics."""
        self.set_attributes(deterministic=False, use_running_average=False, **attributes,
                            raise_if_not_found=False)

    def eval(self, **attributes):
        """Evaluation mode: Dropout is off, BatchNorm uses its running averages."""
        self.set_attributes(deterministic=True, use_running_average=True, **attributes,
                            raise_if_not_found=False)

    def sow(self, variable_type, name, value, reduce_fn=_append, init_fn=tuple):
        """Keep an intermediate value: `self.<name>` becomes `variable_type((value,))`, and later
        calls add to the tuple (under `minnx.capture`, the captured State does)."""
        captures = vars(self).get("__captures__")
        if captures is not None:  # inside capture (views.py): one dict per captured type
            for box in captures:
                if type(box) is variable_type:
                    box[name] = reduce_fn(box[name] if name in box else init_fn(), value)
                    return True
            return False
        if name not in vars(self):
            setattr(self, name, variable_type(reduce_fn(init_fn(), value)))
            return True
        current = getattr(self, name)
        if not isinstance(current, Variable) or type(current) is not variable_type:
            raise ValueError(f"{type(self).__name__}.sow: expected '{name}' to be of type "
                             f"'{variable_type.__name__}', got '{type(current).__name__}'. Sow "
                             "under another name.")
        current.set_value(reduce_fn(current.get_value(), value))
        return True

    def perturb(self, name, value, variable_type=Perturbation):
        """`value` plus a zero kept as `variable_type` `name`, whose gradient is `value`'s."""
        captures = vars(self).get("__captures__")
        if captures is not None:
            for box in captures:
                if type(box) is variable_type:
                    if name not in box:
                        box[name] = jax.tree.map(jnp.zeros_like, value)
                    return box[name] + value
            return value
        if name not in vars(self):
            setattr(self, name, variable_type(jax.tree.map(jnp.zeros_like, value)))
        return getattr(self, name).get_value() + value

    def iter_modules(self):
        return iter_modules(self)

    def iter_children(self):
        for key, value in self._graph_items():
            if isinstance(value, Module):
                yield key, value

def iter_modules(module, /, *, graph=None):
    """Yield `(path, module)` for every Module in the graph, children first, each once."""
    for path, value in iter_graph(module, graph=graph):
        if isinstance(value, Module):
            yield path, value
