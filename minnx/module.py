"""Module: a plain Python object whose arrays live in Variables.

`Object` is the base of every graph node in minnx (Modules, Rngs, Optimizer, the
List/Dict containers). Three ideas live here:

1. *Attributes are data or static.* Arrays, Variables and other Objects are data:
   they make up the state that `split` extracts. Everything else (ints, strings,
   functions) is static configuration that goes into the GraphDef. As in flax 0.12,
   a plain list/dict/tuple that hides arrays or Modules is refused, because it
   would be silently treated as static: use `List`, `Dict` or `data(...)`.
2. *Objects are JAX pytrees* (flax 0.12 does the same), so `jax.tree.map(f, model)`
   works. A plain `jax.jit` gets a *copy*: minnx refuses a mutation made to such a
   copy instead of losing it silently.
3. *Graph protocol*: `_graph_items`, `_graph_set`. The graph functions (split,
   merge, update) only use these two, so containers override them.
"""
import jax
import numpy as np

from . import filters as filterlib
from .variables import Variable, lost_mutation_error, variable_type_from_name

_TRACE_FLAG = "_minnx_trace_copy"

# Every change to the *structure* of a graph (an attribute set or deleted, a List item added,
# Variable metadata changed) goes through `touch()`. minnx.jit remembers its last walk of a graph
# and reuses it while this number has not moved; a Variable's value changing does not move it.
structure_version = [0]


def touch():
    structure_version[0] += 1
_DATA_NAMES = "_minnx_data"  # names marked with `data(...)`; a static attribute itself


class _Marked:
    def __init__(self, value):
        self.value = value


class _DataMark(_Marked):
    pass


class _StaticMark(_Marked):
    pass


def data(value):
    """Mark an attribute value as data (state), e.g. `self.layers = minnx.data([...])`."""
    return _DataMark(value)


def static(value):
    """Mark an attribute value as static configuration, even if it is an array."""
    return _StaticMark(value)


def is_data(value) -> bool:
    """Arrays, Variables and graph nodes are data; ints, strings, functions are not."""
    return isinstance(value, (jax.Array, np.ndarray, Variable, Object))


def _contains_data(value) -> bool:
    leaves = jax.tree.leaves(value, is_leaf=lambda x: isinstance(x, (Variable, Object)))
    return any(is_data(leaf) for leaf in leaves)


class Object:
    """Base class of graph nodes: attribute rules, pytree registration, repr."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(cls, _pytree_flatten, _pytree_unflatten(cls))

    def __setattr__(self, name, value):
        if self.__dict__.get(_TRACE_FLAG):
            raise lost_mutation_error(f"Attribute '{name}' of {type(self).__name__}")
        marked = set(self.__dict__.get(_DATA_NAMES, ()))
        cname = type(self).__name__
        if isinstance(value, _DataMark):
            value = value.value
            marked.add(name)
        elif isinstance(value, _StaticMark):
            value = value.value
            marked.discard(name)
        elif is_data(value) and name in self.__dict__ and name not in marked \
                and not is_data(self.__dict__[name]):
            old = type(self.__dict__[name]).__name__
            raise ValueError(
                f"{cname}.{name} was first set to a {old}, so it is static configuration (part of the "
                f"GraphDef); a {type(value).__name__} assigned to it now would not be seen by split/jit/grad "
                f"(flax 0.12 refuses this too).\nWrite one of:\n"
                f"  self.{name} = minnx.Param(...)  (or another Variable) in __init__  # state from the start\n"
                f"  self.{name} = minnx.data(...)                             # make it data from now on")
        elif name not in marked and not is_data(value) and _contains_data(value):
            kinds = sorted({type(x).__name__ for x in jax.tree.leaves(
                value, is_leaf=lambda x: isinstance(x, (Variable, Object))) if is_data(x)})
            cname = type(self).__name__
            raise ValueError(
                f"{cname}.{name}: a plain {type(value).__name__} holding {', '.join(kinds)} would be "
                f"treated as static configuration, so split/jit/grad would not see the arrays inside "
                f"(flax 0.12 refuses this too).\nWrite one of:\n"
                f"  self.{name} = minnx.List([...])  or  minnx.Dict({{...}})   # a container of state\n"
                f"  self.{name} = minnx.data(...)                          # keep the Python container\n"
                f"  self.{name} = minnx.Param(...)  (or another Variable)  # one array as state")
        touch()
        object.__setattr__(self, name, value)
        if marked != set(self.__dict__.get(_DATA_NAMES, ())):
            object.__setattr__(self, _DATA_NAMES, frozenset(marked))

    # -- graph protocol ----------------------------------------------------
    def _graph_items(self):
        return sorted((k, v) for k, v in vars(self).items() if k != _TRACE_FLAG)

    def _graph_get(self, key):
        return self.__dict__[key]

    def __delattr__(self, name):
        touch()
        object.__delattr__(self, name)

    def _graph_set(self, key, value):
        touch()
        object.__setattr__(self, key, value)

    def __repr__(self):
        from .display import object_repr
        return object_repr(self)


def _is_data_attr(obj, name, value):
    return is_data(value) or name in obj.__dict__.get(_DATA_NAMES, ())


def _pytree_flatten(obj):
    items = obj._graph_items()
    children = [(jax.tree_util.GetAttrKey(str(k)), v) for k, v in items if _is_data_attr(obj, k, v)]
    static = tuple((k, _Hashable(v)) for k, v in items if not _is_data_attr(obj, k, v))
    return children, (tuple(k for k, v in items if _is_data_attr(obj, k, v)), static)


def _pytree_unflatten(cls):
    def unflatten(aux, children):
        names, static = aux
        obj = cls.__new__(cls)
        for k, v in static:
            obj._graph_set(k, v.value)
        for k, v in zip(names, children):
            obj._graph_set(k, v)
        # Inside a JAX trace this object is a throw-away copy: refuse mutations.
        traced = [x for x in children if isinstance(x, Variable) and isinstance(x.get_value(), jax.core.Tracer)]
        for var in traced:
            object.__setattr__(var, "_trace_copy", True)
        if traced or any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(children)):
            object.__setattr__(obj, _TRACE_FLAG, True)
        return obj
    return unflatten


class _Hashable:
    """Wraps a static value so it can sit in a GraphDef or pytree aux data."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        if not isinstance(other, _Hashable) or type(self.value) is not type(other.value):
            return False
        try:
            return bool(self.value == other.value)
        except Exception:
            return self.value is other.value

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return hash((type(self.value), repr(self.value)))

    def __repr__(self):
        return repr(self.value)


class Module(Object):
    """Base class for layers and models, the counterpart of `torch.nn.Module`.

    Parameters are created eagerly in `__init__` (pass all shapes and an `Rngs`);
    the forward pass is `__call__`.
    """

    def set_attributes(self, *filters, raise_if_not_found=True, **attributes):
        """Set `attributes` on every sub-Module (selected by `filters`) that has them."""
        remaining = set(attributes)
        predicates = [filterlib.to_predicate(f) for f in (filters or (True,))]
        for path, module in iter_modules(self):
            if any(p(path, module) for p in predicates):
                for name, value in attributes.items():
                    if hasattr(module, name):
                        remaining.discard(name)
                        setattr(module, name, value)
        if remaining and raise_if_not_found:
            raise ValueError(
                f"{type(self).__name__}.set_attributes: no sub-Module has the attribute(s) "
                f"{sorted(remaining)}; pass raise_if_not_found=False to ignore this.")

    def train(self, **attributes):
        """Training mode: Dropout drops, BatchNorm uses and updates batch statistics."""
        self.set_attributes(deterministic=False, use_running_average=False, **attributes,
                            raise_if_not_found=False)

    def eval(self, **attributes):
        """Evaluation mode: Dropout is off, BatchNorm uses its running averages."""
        self.set_attributes(deterministic=True, use_running_average=True, **attributes,
                            raise_if_not_found=False)

    def sow(self, variable_type, name, value, reduce_fn=lambda acc, x: (*acc, x),
            init_fn=tuple):
        """Keep an intermediate value: `self.<name>` becomes `variable_type((value,))`, and
        later calls append to the tuple. Read them with `minnx.state(model, Intermediate)`
        or take them out with `minnx.pop(model, Intermediate)`."""
        if isinstance(variable_type, str):
            variable_type = variable_type_from_name(variable_type)
        current = self.__dict__.get(name)
        if current is None:
            setattr(self, name, variable_type(reduce_fn(init_fn(), value)))
        elif type(current) is not variable_type:
            raise ValueError(
                f"{type(self).__name__}.sow: attribute '{name}' is a {type(current).__name__}, "
                f"expected a {variable_type.__name__}. Use another name for the sown value.")
        else:
            current.set_value(reduce_fn(current.get_value(), value))
        return True

    def iter_modules(self):
        yield from iter_modules(self)

    def iter_children(self):
        yield from iter_children(self)


def iter_modules(node):
    """Yield `(path, module)` for every Module in the graph, each shared one once."""
    from .graph import iter_graph
    for path, value in iter_graph(node):
        if isinstance(value, Module):
            yield path, value


def iter_children(node):
    """Yield `(name, module)` for the direct sub-Modules."""
    for key, value in node._graph_items():
        if isinstance(value, Module):
            yield key, value
