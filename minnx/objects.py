"""Objects: the base class of everything NNX keeps state in (Modules, Rngs, Optimizer, ...).

Each attribute is *data* (Variables, arrays, Objects, `minnx.data(...)`: the pytree children and
what graph.py walks) or *static* (configuration); the first assignment decides, for good.
"""
import abc
import dataclasses

import jax
import numpy as np
from jax.tree_util import GetAttrKey, SequenceKey

from .variables import (RngState, TraceContextError, Variable, _transform_depth, array_summary,
                        has_tracer, note_structure_change)

DATA_TYPES = set()  # types registered with register_data_type

def data(value=dataclasses.MISSING, /, **field_options):
    """Mark a value as data: `self.layers = minnx.data([...])`; or a field: `x = minnx.data()`."""
    return _marked(value, is_static=False, field_options=field_options)
def static(value=dataclasses.MISSING, /, **field_options):
    """Mark a value as static (configuration): `self.shape = minnx.static(shape)`."""
    return _marked(value, is_static=True, field_options=field_options)

def _marked(value, is_static, field_options):
    if value is not dataclasses.MISSING and field_options:
        raise TypeError("minnx.data() and minnx.static() take a value or field options, not both.")
    extra = field_options.pop("metadata", None) or {}
    metadata = {**extra, "nnx_value": value, "static": is_static}
    return dataclasses.field(**field_options, metadata=metadata)

def _marker(value):  # (is it a data/static marker, is_data, the value inside)
    if isinstance(value, dataclasses.Field) and "nnx_value" in value.metadata:
        return True, not value.metadata["static"], value.metadata["nnx_value"]
    return False, None, value

def register_data_type(type_):  # values of `type_` are data wherever assigned, like arrays
    DATA_TYPES.add(type_)
    return type_

def is_data(value):  # arrays, Variables, Objects and registered types
    return isinstance(value, (jax.Array, np.ndarray, Variable, Pytree)) or type(value) in DATA_TYPES
def has_data(value):  # data, or a pytree (a list, a dict, ...) holding some
    return any(is_data(leaf) for leaf in jax.tree.leaves(value, is_leaf=is_data))

def dataclass(cls=None, /, **options):
    """`dataclasses.dataclass` for Objects; fields may use `minnx.data()`/`minnx.static()`."""
    return dataclasses.dataclass(cls, repr=False, **options)

class ObjectMeta(abc.ABCMeta):
    """After `__init__`: no static attribute may hold data, and was it made outside a trace?"""
    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        outside = _transform_depth[0] == 0
        for name, value in obj._graph_items():
            if not obj._is_data_attribute(name, value) and has_data(value):
                raise _static_holds_data_error(obj, name, value)
            if isinstance(value, Variable) and has_tracer(value.get_raw_value()):
                outside = False  # it holds traced values: evidently built inside a JAX trace
            if isinstance(value, Pytree) and value.__dict__.get("_object__outside_trace") is False:
                outside = False
        object.__setattr__(obj, "_object__outside_trace", outside)
        return obj

class Pytree(metaclass=ObjectMeta):
    """Base class of graph nodes: the data/static rules, pytree registration and repr."""
    _object__is_pytree = True
    _object__class_nodes = {}  # name -> is data, from class annotations and dataclass fields

    def __init_subclass__(cls, *, pytree=True, **kwargs):
        super().__init_subclass__(**kwargs)
        nodes = dict(cls._object__class_nodes)
        for name, value in vars(cls).items():
            is_marker, is_data_field, _ = _marker(value)
            if is_marker:
                nodes[name] = is_data_field
        cls._object__class_nodes = nodes
        cls._object__is_pytree = pytree
        if pytree:
            jax.tree_util.register_pytree_with_keys(cls, _flatten_with_keys, _unflatten(cls))

    # -- the attribute rules -------------------------------------------------------------------
    def __setattr__(self, name, value):
        is_marker, marked_data, value = _marker(value)
        if self.__dict__.get("_object__outside_trace") and has_tracer(value):
            raise TraceContextError(f"Cannot mutate '{type(self).__name__}' from a different trace "
                                    "level: pass it to the NNX transform as an argument.")
        if self._object__is_pytree:
            nodes = self._data_status()
            if not is_marker:
                was_static = name in vars(self) and not nodes.get(name, False)
                if is_data(value) and was_static:
                    raise ValueError(
                        f"Cannot assign data value of type '{type(value).__name__}' to static "
                        f"attribute '{name}' of {type(self).__name__}: its first value made it "
                        f"configuration. To make it state, write `self.{name} = minnx.data(...)`.")
                marked_data = nodes.get(name, is_data(value))
            if not marked_data and has_data(value):
                raise _static_holds_data_error(self, name, value)
            nodes[name] = marked_data
        note_structure_change(self)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._data_status().pop(name, None)
        note_structure_change(self)
        object.__delattr__(self, name)

    def _data_status(self):  # this object's `name -> is data` map, from the class's at first
        if "_object__nodes" not in self.__dict__:
            object.__setattr__(self, "_object__nodes", dict(self._object__class_nodes))
        return self.__dict__["_object__nodes"]

    def _is_data_attribute(self, name, value):
        if self._object__is_pytree:
            return self._data_status().get(name, False)
        return has_data(value)  # `pytree=False` classes decide by the value

    # -- the graph protocol ----------------------------------------------------------------------
    def _graph_items(self):  # `(name, value)` for every attribute, sorted: the order split walks
        return sorted((k, v) for k, v in vars(self).items() if not k.startswith("_object__"))

    def _graph_set(self, name, value, is_data_attribute=True):  # rebuilding: no rules to check
        if self._object__is_pytree:
            self._data_status()[name] = is_data_attribute
        note_structure_change(self)
        object.__setattr__(self, name, value)

    def __setstate__(self, state):  # copy.copy and pickle: a data/static map of its own
        self.__dict__.update(state)
        self.__dict__["_object__nodes"] = dict(self._data_status())
    def _repr_items(self):  # attributes in the order __init__ set them, as flax prints them
        return [(k, v) for k, v in vars(self).items() if not k.startswith("_object__")]
    def __repr__(self):
        return object_repr(self)

class Object(Pytree, pytree=False):
    """A graph node that is not a JAX pytree (flax's `nnx.Object`)."""
    def __init_subclass__(cls, **kwargs):
        if kwargs.pop("pytree", False):
            raise ValueError(f"Object is not a pytree, but 'pytree' was set for {cls.__name__}.")
        super().__init_subclass__(pytree=False, **kwargs)

def _static_holds_data_error(obj, name, value):
    leaves = jax.tree.leaves(value, is_leaf=is_data)
    kinds = sorted({type(x).__name__ for x in leaves if is_data(x)})
    return ValueError(f"Found data ({', '.join(kinds)}) in the static attribute '{name}' of "
                      f"{type(obj).__name__}: as in flax 0.12, a plain list or dict is "
                      f"configuration. Write `self.{name} = minnx.List([...])` (or minnx.Dict), "
                      f"or `self.{name} = minnx.data(...)`.")

# -- Objects are pytrees: data attributes are the children, static ones the aux data ---------
def _flatten_with_keys(obj):
    children = []
    names = []
    static = []
    for name, value in obj._graph_items():
        if obj._is_data_attribute(name, value):
            key = SequenceKey(name) if isinstance(name, int) else GetAttrKey(name)  # List items
            children.append((key, value))
            names.append(name)
        else:
            static.append((name, value))
    return children, (tuple(names), tuple(static))

def _unflatten(cls):
    def unflatten(aux, children):
        names, static = aux
        obj = object.__new__(cls)  # without __init__: filled by _graph_set
        for name, value in zip(names, children):
            obj._graph_set(name, value)
        for name, value in static:
            obj._graph_set(name, value, is_data_attribute=False)
        return obj
    return unflatten

# -- repr: a Module printed as a tree, with its Variables counted by type ---------------------
def _variables(x, seen):  # every Variable reachable through data attributes, each once
    for leaf in jax.tree.leaves(x, is_leaf=lambda y: isinstance(y, (Pytree, Variable))):
        if id(leaf) in seen or not isinstance(leaf, (Pytree, Variable)):
            continue
        seen.add(id(leaf))
        if isinstance(leaf, Variable):
            yield leaf
        else:
            for name, value in leaf._graph_items():
                if leaf._is_data_attribute(name, value):
                    yield from _variables(value, seen)

def count_variables(node):  # `{'Param': (numbers, bytes), ...}`, each Variable once
    counts = {}
    for x in _variables(node, set()):
        name = "RngState" if isinstance(x, RngState) else type(x).__name__  # keys and counts
        for leaf in jax.tree.leaves(x.get_raw_value()):
            if not hasattr(leaf, "dtype"):
                continue
            is_key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
            itemsize = 8 if is_key else np.dtype(leaf.dtype).itemsize  # a key is two uint32
            numbers, size = counts.get(name, (0, 0))
            counts[name] = (numbers + leaf.size, size + leaf.size * itemsize)
    return counts

def size_text(numbers, size):  # `4,482 (17.9 KB)`: a count and its bytes, as flax writes them
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size > scale:
            return f"{numbers:,} ({size / scale:,.1f} {unit})"
    return f"{numbers:,} ({size:,} B)"

def _counts_comment(counts):  # ` # Param: 15 (60 B)`, and a Total when there are several types
    if len(counts) > 1:
        numbers = sum(n for n, _ in counts.values())
        size = sum(b for _, b in counts.values())
        counts = {**counts, "Total": (numbers, size)}
    parts = [f"{kind}: {size_text(n, b)}" for kind, (n, b) in counts.items()]
    return " # " + ", ".join(parts) if parts else ""

def _value_repr(x):
    if isinstance(x, Variable):
        return repr(x)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return array_summary(x)
    if isinstance(x, type):  # a class by its name (jnp.float32 and friends by their dtype's)
        return np.dtype(x).name if hasattr(x, "dtype") else x.__name__
    if callable(x) and hasattr(x, "__name__"):
        return f"<{type(x).__name__} {x.__name__}>"
    return repr(x)

def object_repr(obj):  # the text tree `print(model)` shows; a shared object is printed once
    seen = set()

    def show(x, indent):
        if not isinstance(x, Pytree):
            return _value_repr(x)
        if id(x) in seen:
            return f"<the same {type(x).__name__} as above>"
        seen.add(id(x))
        lines = [f"{type(x).__name__}({_counts_comment(count_variables(x))}"]
        for key, value in x._repr_items():
            name = f"{key}=" if isinstance(key, str) else f"[{key}]: "
            lines.append(f"{indent}  {name}{show(value, indent + '  ')},")
        return "\n".join(lines) + f"\n{indent})"
    return show(obj, "")
