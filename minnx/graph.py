"""The graph: how a Python object graph becomes (GraphDef, State) and back.

`split(model)` walks the model depth first, attributes in sorted order. Each Variable goes into
the State under its path (`('linear', 'kernel')`); the rest (classes, static attributes, where
each Variable sat) into the GraphDef, an immutable, hashable description of the structure. An
object met again (a shared layer, a cycle) is a reference to its first index, so `merge`, which
builds fresh objects around the State's Variables, rebuilds the same sharing. `update(model,
state)` writes a State's values into an existing model.
"""
import functools
from typing import Any, NamedTuple

import jax
import numpy as np

from .filters import to_predicate
from .module import Object, _Hashable, _is_node_or_variable, holds_state as _holds_state, touch
from .state import State, _one_or_tuple, split_by_filters
from .variables import Variable


# -- the GraphDef: a tree of these named tuples (immutable and hashable) ----------------------
NodeDef = NamedTuple("NodeDef", [("type", type), ("index", int), ("attributes", tuple)])  # an object
NodeRef = NamedTuple("NodeRef", [("index", int)])  # an object met before: share it
VariableDef = NamedTuple("VariableDef", [("type", type), ("index", int), ("metadata", tuple)])
LeafDef = NamedTuple("LeafDef", [])  # a bare array: its value is in the State
PytreeDef = NamedTuple("PytreeDef", [("treedef", Any), ("children", tuple)])  # a list, dict, ... holding state
Static = NamedTuple("Static", [("value", Any)])  # anything else: configuration, kept in the GraphDef


class GraphDef:
    """The structure of a graph. Immutable and hashable, and a JAX pytree with no leaves, so
    `jax.jit` takes it as an ordinary argument (as flax's does)."""

    def __init__(self, root, num_leaves):
        self.root, self.num_leaves, self._hash = root, num_leaves, hash(root)

    def __eq__(self, other):
        return isinstance(other, GraphDef) and (self is other or self.root == other.root)

    def __hash__(self):
        return self._hash

    def apply(self, state, *states):
        """`graphdef.apply(params, rest)(x)` merges a model, calls it and returns
        `(output, (graphdef, state))`; `.apply(...).encode(x)` calls a method instead."""
        return _Applier(self, (state, *states))

    def __repr__(self):
        def show(d):
            if isinstance(d, NodeDef):
                return f"{d.type.__name__}({', '.join(f'{k}={show(v)}' for k, v in d.attributes if not isinstance(v, Static))})"
            return {VariableDef: lambda: d.type.__name__, NodeRef: lambda: f"<shared #{d.index}>",
                    PytreeDef: lambda: "[" + ", ".join(show(v) for _, v in d.children) + "]"}.get(type(d), lambda: "Array")()
        return f"GraphDef({show(self.root)}, num_leaves={self.num_leaves})"


jax.tree_util.register_pytree_node(GraphDef, lambda g: ((), g), lambda g, _: g)


class _Applier:
    def __init__(self, graphdef, states):
        self.graphdef, self.states = graphdef, states

    def __getattr__(self, name):
        return functools.partial(self._run, name)

    def __call__(self, *args, **kwargs):
        return self._run("__call__", *args, **kwargs)

    def _run(self, method, *args, **kwargs):
        module = merge(self.graphdef, *self.states)
        return getattr(module, method)(*args, **kwargs), split(module)


# -- walking a graph -----------------------------------------------------------------------
def is_graph_node(x) -> bool:
    return isinstance(x, Object)


def _key_name(k):
    """A JAX key-path entry as a plain path component: 'mu', 0, ..."""
    return next((getattr(k, a) for a in ("name", "key", "idx") if hasattr(k, a)), str(k))


def flatten(node, nodes=None):
    """`node` -> (GraphDef, [(path, Variable or array), ...]). If a list is passed as `nodes`,
    it receives every object and Variable in index order (what the transforms map back to)."""
    index, leaves = {}, []
    nodes = [] if nodes is None else nodes

    def visit(x, path):
        if not _holds_state(x):
            return Static(_Hashable(x))
        if id(x) in index:
            return NodeRef(index[id(x)])
        if isinstance(x, (jax.Array, np.ndarray)):
            leaves.append((path, x))
            return LeafDef()
        if not _is_node_or_variable(x):  # a pytree: visit its leaves, keep its structure
            pairs, treedef = jax.tree_util.tree_flatten_with_path(x, is_leaf=_is_node_or_variable)
            keys = [tuple(map(_key_name, k)) for k, _ in pairs]
            return PytreeDef(treedef, tuple((k, visit(leaf, path + k)) for k, (_, leaf) in zip(keys, pairs)))
        index[id(x)] = len(index)
        nodes.append(x)
        if isinstance(x, Variable):
            leaves.append((path, x))
            return VariableDef(type(x), index[id(x)], tuple(sorted((k, _Hashable(v)) for k, v in x._meta.items())))
        return NodeDef(type(x), index[id(x)], tuple((k, visit(v, path + (k,))) for k, v in x._graph_items()))

    return GraphDef(visit(node, ()), len(leaves)), leaves


def unflatten(graphdef, flat, reuse=None, built=None):
    """Build objects from a GraphDef and a `{path: leaf}` dict (consumed). Fresh objects, except
    those in `reuse` (`{index: existing object}`), which are emptied and refilled in place.
    If a dict is passed as `built`, it receives `{index: object}` for everything built."""
    if not isinstance(graphdef, GraphDef):
        raise TypeError(f"minnx.merge: the first argument must be the GraphDef returned by split, "
                        f"got {type(graphdef).__name__}.")
    built, reuse = {} if built is None else built, reuse or {}

    def take(path, kind):
        if path not in flat:
            raise ValueError(
                f"minnx.merge: the state does not fit the graphdef: no value at {'/'.join(map(str, path))} "
                f"(the graphdef expects a {kind} there). Pass every State that split returned, e.g. "
                "`merge(graphdef, params, rest)`, and check it came from the same kind of model.")
        return flat.pop(path)

    def build(d, path):
        if isinstance(d, NodeRef):
            return built[d.index]
        if isinstance(d, Static):
            return d.value.value
        if isinstance(d, LeafDef):
            return _value_of(take(path, "array"))
        if isinstance(d, PytreeDef):
            return d.treedef.unflatten([build(sub, path + key) for key, sub in d.children])
        if isinstance(d, VariableDef):
            leaf = take(path, d.type.__name__)
            if isinstance(leaf, Variable) and d.index not in reuse:
                var = leaf  # like flax, merge puts the State's own Variable in the model
            else:
                var = reuse[d.index] if d.index in reuse else d.type.__new__(d.type)
                var.__dict__.update(_value=_value_of(leaf), _meta={k: v.value for k, v in d.metadata})
            built[d.index] = var
            return var
        obj = reuse.get(d.index)  # a NodeDef: create the object first (cycles may point back at it)
        obj = d.type.__new__(d.type) if obj is None else obj
        obj.__dict__.clear()
        built[d.index] = obj
        for key, sub in d.attributes:
            obj._graph_set(key, build(sub, path + (key,)))
        return obj

    node = build(graphdef.root, ())
    if flat:
        extra = ", ".join("/".join(map(str, p)) for p in list(flat)[:5])
        raise ValueError(f"minnx.merge: the state does not fit the graphdef: it has values the model "
                         f"has no place for ({extra}). Was it split from a different model?")
    return node


def _value_of(leaf):
    return leaf.get_value() if isinstance(leaf, Variable) else leaf


def _flat_of(states):
    return {p: x for s in states for p, x in (s if isinstance(s, State) else State(s)).flat_state()}


# -- the functional API --------------------------------------------------------------------
def split(node, *filters):
    """`graphdef, state = split(model)`; with filters, one State per filter:
    `graphdef, params, rest = split(model, Param, ...)`."""
    if isinstance(node, (jax.Array, np.ndarray)) or not _holds_state(node):
        raise TypeError(f"minnx.split: expected a Module (or another minnx graph node), got "
                        f"{type(node).__name__}. Plain arrays and pytrees need no split: pass them to JAX as they are.")
    graphdef, leaves = flatten(node)
    groups = split_by_filters(leaves, filters, "split") if filters else [leaves]
    return (graphdef, *(State.from_flat_path(g) for g in groups))


def merge(graphdef, state=None, /, *states):
    """A new object from a GraphDef and the State(s) split returned."""
    return unflatten(graphdef, _flat_of(s for s in (state, *states) if s is not None))


def state(node, *filters):
    """The State of `node` (one per filter if filters are given). Leaves are the node's
    own Variables, so `state(model)['kernel'] is model.kernel`."""
    _, leaves = flatten(node)
    return _one_or_tuple([State.from_flat_path([(p, x) for p, x in leaves if to_predicate(f)(p, x)])
                          for f in filters or [...]])


def graphdef(node):
    return flatten(node)[0]


def _get(node, key):
    try:
        return node._graph_get(key) if isinstance(node, Object) else node[key]
    except (KeyError, IndexError, TypeError):
        return getattr(node, str(key), None)  # a field of a NamedTuple inside a pytree


def _parent(node, path, where):
    for key in path[:-1]:
        node = _get(node, key)
        if node is None:
            raise ValueError(f"minnx.{where}: nothing at {'/'.join(map(str, path))}; was the state split "
                             "from another model?")
    return node


def update(node, state, /, *states):
    """Write the values of State(s) into `node` in place (the model keeps its Variables)."""
    for path, leaf in _flat_of((state, *states)).items():
        parent = _parent(node, path, "update")
        target = _get(parent, path[-1])
        if isinstance(target, Variable):
            target.set_value(_value_of(leaf))
            if isinstance(leaf, Variable) and leaf._meta != target._meta:
                touch()
                target._meta.update(leaf._meta)
        elif isinstance(parent, Object):
            parent._graph_set(path[-1], leaf.copy() if isinstance(leaf, Variable) and target is None else leaf)
        else:
            parent[path[-1]] = leaf


def pop(node, *filters):
    """Remove the Variables matching `filters` from `node` and return them as State(s)."""
    groups = split_by_filters(flatten(node)[1], (*filters, ...), "pop")[:-1]
    for path, _ in (pair for group in groups for pair in group):
        parent = _parent(node, path, "pop")
        if isinstance(parent, Object):
            delattr(parent, path[-1])
        else:
            del parent[path[-1]]
    return _one_or_tuple([State.from_flat_path(g) for g in groups])


def clone(node):
    """A deep copy: same structure and sharing, new Variables."""
    graphdef, leaves = flatten(node)
    return unflatten(graphdef, {p: x.copy() if isinstance(x, Variable) else x for p, x in leaves})


def iter_graph(node):
    """Yield `(path, value)` for every node and leaf, children before their parent, each shared
    object once (the order flax uses)."""
    seen = set()

    def walk(x, path):
        if _is_node_or_variable(x):
            if id(x) in seen:
                return
            seen.add(id(x))
        if isinstance(x, Object):
            for key, value in x._graph_items():
                yield from walk(value, path + (key,))
        elif not isinstance(x, (Variable, jax.Array, np.ndarray)) and _holds_state(x):  # a pytree
            for keys, leaf in jax.tree_util.tree_flatten_with_path(x, is_leaf=_is_node_or_variable)[0]:
                yield from walk(leaf, path + tuple(map(_key_name, keys)))
        yield path, x

    yield from walk(node, ())
