"""Module: a plain Python object whose arrays live in Variables.

`Object` is the base of every graph node (Modules, Rngs, Optimizer, List/Dict). Three ideas:
1. *Attributes are state or static.* Variables, arrays, Objects, and any pytree holding them are
   state: `split` extracts them. The rest (ints, strings, functions) is static configuration in
   the GraphDef. As in flax 0.12, a plain list of Modules is refused: use `List` or `data(...)`.
2. *Objects are JAX pytrees*, so `jax.tree.map(f, model)` works. A plain `jax.jit` gets a copy:
   minnx refuses a mutation made to that copy instead of losing it.
3. *The graph protocol*: split, merge and update use only `_graph_items/_get/_set`.
"""
import jax
import numpy as np

from .filters import to_predicate
from .variables import Variable, lost_mutation_error

_TRACE_FLAG = "_minnx_trace_copy"

# Every change to the *structure* of a graph (an attribute set or deleted, a List item added,
# Variable metadata changed) goes through `touch()`. minnx.jit remembers its last walk of a graph
# and reuses it while this number has not moved; a Variable's value changing does not move it.
structure_version = [0]


def touch():
    structure_version[0] += 1


def _is_node_or_variable(x):
    return isinstance(x, (Object, Variable))


def holds_state(x) -> bool:
    """Graph nodes, Variables and arrays are state; so is any pytree (a list, a dict, an optax
    state) that holds one of them. Everything else is static configuration."""
    if isinstance(x, (Object, Variable, jax.Array, np.ndarray)):
        return True
    leaves = jax.tree.leaves(x, is_leaf=_is_node_or_variable)
    return not (len(leaves) == 1 and leaves[0] is x) and any(map(holds_state, leaves))


class _Data:
    def __init__(self, value):
        self.value = value


def data(value):
    """Assign a Python container of state as it is: `self.layers = minnx.data([...])`."""
    return _Data(value)


class Object:
    """Base class of graph nodes: the attribute rules, pytree registration, repr."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(cls, _pytree_flatten, _pytree_unflatten(cls))

    def __setattr__(self, name, value):
        if self.__dict__.get(_TRACE_FLAG):
            raise lost_mutation_error(f"Attribute '{name}' of {type(self).__name__}")
        where = f"{type(self).__name__}.{name}"
        if isinstance(value, _Data):
            value = value.value
        elif name in self.__dict__ and holds_state(value) and not holds_state(self.__dict__[name]):
            raise ValueError(
                f"{where} was first set to a {type(self.__dict__[name]).__name__}, so it is static "
                f"configuration (part of the GraphDef); a {type(value).__name__} assigned to it now would "
                f"not be seen by split/jit/grad (flax 0.12 refuses this too).\nWrite one of:\n"
                f"  self.{name} = minnx.Param(...)  (or another Variable) in __init__  # state from the start\n"
                f"  self.{name} = minnx.data(...)                             # make it state from now on")
        elif type(value) in (list, tuple, dict) and holds_state(value):
            kinds = sorted({type(x).__name__ for x in jax.tree.leaves(value, is_leaf=_is_node_or_variable)
                            if holds_state(x)})
            raise ValueError(
                f"{where}: a plain {type(value).__name__} holding {', '.join(kinds)} is refused, as in flax "
                f"0.12: say whether it is state.\nWrite one of:\n"
                f"  self.{name} = minnx.List([...])  or  minnx.Dict({{...}})   # a container of state\n"
                f"  self.{name} = minnx.data(...)                          # keep the Python container\n"
                f"  self.{name} = minnx.Param(...)  (or another Variable)  # one array as state")
        touch()
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        touch()
        object.__delattr__(self, name)

    # -- the graph protocol --------------------------------------------------------------
    def _graph_items(self):
        return sorted((k, v) for k, v in vars(self).items() if k != _TRACE_FLAG)

    def _graph_get(self, key):
        return self.__dict__[key]

    def _graph_set(self, key, value):
        touch()
        object.__setattr__(self, key, value)

    def __repr__(self):
        from .display import object_repr
        return object_repr(self)


# -- Objects are pytrees: state attributes are children, the rest is static aux data -------
def _pytree_flatten(obj):
    items = obj._graph_items()
    state = [(k, v) for k, v in items if holds_state(v)]
    static = tuple((k, _Hashable(v)) for k, v in items if not holds_state(v))
    return [(jax.tree_util.GetAttrKey(str(k)), v) for k, v in state], (tuple(k for k, _ in state), static)


def _pytree_unflatten(cls):
    def unflatten(aux, children):
        names, static = aux
        obj = cls.__new__(cls)
        for k, v in [*((k, v.value) for k, v in static), *zip(names, children)]:
            obj._graph_set(k, v)
        # Inside a JAX trace this object is a throw-away copy: refuse mutations.
        traced = [x for x in children if isinstance(x, Variable) and isinstance(x.get_value(), jax.core.Tracer)]
        for var in traced:
            var.__dict__["_trace_copy"] = True
        if traced or any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(children)):
            object.__setattr__(obj, _TRACE_FLAG, True)
        return obj
    return unflatten


class _Hashable:
    """Wraps a static value so it can sit in a GraphDef or pytree aux data, hashable or not."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        try:
            return type(other) is _Hashable and type(self.value) is type(other.value) and bool(self.value == other.value)
        except Exception:  # values whose == is not a plain bool
            return self.value is other.value

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return hash((type(self.value), repr(self.value)))


class Module(Object):
    """Base class for layers and models, the counterpart of `torch.nn.Module`. Parameters are
    created eagerly in `__init__` (pass all shapes and an `Rngs`); the forward pass is `__call__`."""

    def set_attributes(self, *filters, raise_if_not_found=True, **attributes):
        """Set `attributes` on every sub-Module (selected by `filters`) that has them."""
        predicates = [to_predicate(f) for f in (filters or (True,))]
        found = set()
        for path, module in iter_modules(self):
            for name, value in attributes.items():
                if hasattr(module, name) and any(p(path, module) for p in predicates):
                    found.add(name)
                    setattr(module, name, value)
        if raise_if_not_found and set(attributes) - found:
            raise ValueError(f"{type(self).__name__}.set_attributes: no sub-Module has the attribute(s) "
                             f"{sorted(set(attributes) - found)}; pass raise_if_not_found=False to ignore this.")

    def train(self, **attributes):
        """Training mode: Dropout drops, BatchNorm uses and updates batch statistics."""
        self.set_attributes(deterministic=False, use_running_average=False, **attributes, raise_if_not_found=False)

    def eval(self, **attributes):
        """Evaluation mode: Dropout is off, BatchNorm uses its running averages."""
        self.set_attributes(deterministic=True, use_running_average=True, **attributes, raise_if_not_found=False)

    def sow(self, variable_type, name, value, reduce_fn=lambda acc, x: (*acc, x), init_fn=tuple):
        """Keep an intermediate value: `self.<name>` becomes `variable_type((value,))`, and later
        calls append to the tuple. Read them with `minnx.state(model, Intermediate)` or take them
        out with `minnx.pop(model, Intermediate)`."""
        current = self.__dict__.get(name)
        if current is None:
            setattr(self, name, variable_type(reduce_fn(init_fn(), value)))
        elif type(current) is not variable_type:
            raise ValueError(f"{type(self).__name__}.sow: attribute '{name}' is a {type(current).__name__}, "
                             f"expected a {variable_type.__name__}. Use another name for the sown value.")
        else:
            current.set_value(reduce_fn(current.get_value(), value))
        return True

    def iter_modules(self):
        return iter_modules(self)

    def iter_children(self):
        return iter_children(self)


def iter_modules(node):
    """Yield `(path, module)` for every Module in the graph, each shared one once."""
    from .graph import iter_graph
    return ((path, value) for path, value in iter_graph(node) if isinstance(value, Module))


def iter_children(node):
    """Yield `(name, module)` for the direct sub-Modules."""
    return ((key, value) for key, value in node._graph_items() if isinstance(value, Module))
