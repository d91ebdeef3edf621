"""The graph: how a Python object graph becomes (GraphDef, State) and back.

`split(model)` walks the model depth first, attribute names in sorted order. Every
Variable it meets goes into the State under its path (`('linear', 'kernel')`);
everything else (the classes, the static attributes, where each Variable sat) goes
into the GraphDef, an immutable, hashable description of the structure. An object
met a second time (a shared layer, or a cycle) is written as a reference to its
first index, so `merge` rebuilds the same sharing.

`merge(graphdef, state)` does the reverse: it creates fresh objects and puts the
State's Variables in them. `update(model, state)` writes a State's values into an
existing model in place.
"""
from typing import Any, NamedTuple

import jax
import numpy as np

from .module import Object, _Hashable, _TRACE_FLAG, touch
from .state import State, split_by_filters
from .variables import Variable


# -- the GraphDef: a tree of these named tuples (hashable, so jax.jit can key on it) --
class NodeDef(NamedTuple):
    type: type
    index: int
    attributes: tuple   # ((key, NodeDef | NodeRef | VariableDef | LeafDef | Static), ...)


class NodeRef(NamedTuple):
    index: int          # the object at this index was already built: share it


class VariableDef(NamedTuple):
    type: type
    index: int
    metadata: tuple


class LeafDef(NamedTuple):
    pass                # a bare array attribute: its value is in the State


class PytreeDef(NamedTuple):
    treedef: Any        # any other JAX pytree holding Variables (an optax state, say)
    children: tuple     # ((key, VariableDef | LeafDef | ...), ...) in the treedef's leaf order


class Static(NamedTuple):
    value: Any


class GraphDef:
    """The structure of a graph: a tree of the definitions above. Immutable and hashable, and a
    JAX pytree with no leaves, so `jax.jit` takes it as an ordinary argument (as flax's does)."""

    def __init__(self, root, num_leaves):
        self.root, self.num_leaves = root, num_leaves
        self._hash = hash(root)

    def __eq__(self, other):
        return isinstance(other, GraphDef) and (self is other or self.root == other.root)

    def __hash__(self):
        return self._hash

    def apply(self, state, *states):
        """`graphdef.apply(state)(x)` merges, calls, and returns `(out, split(model))`."""
        return _Applier(self, (state, *states))

    def __repr__(self):
        return f"GraphDef({_def_repr(self.root)}, num_leaves={self.num_leaves})"


def _def_repr(d):
    if isinstance(d, NodeDef):
        inner = ", ".join(f"{k}={_def_repr(v)}" for k, v in d.attributes if not isinstance(v, Static))
        return f"{d.type.__name__}({inner})"
    if isinstance(d, VariableDef):
        return d.type.__name__
    if isinstance(d, NodeRef):
        return f"<shared #{d.index}>"
    return "Array"


jax.tree_util.register_pytree_node(GraphDef, lambda g: ((), g), lambda g, _: g)


class _Applier:
    def __init__(self, graphdef, states):
        self._graphdef, self._states = graphdef, states

    def _run(self, method, args, kwargs):
        module = merge(self._graphdef, *self._states)
        out = method(module)(*args, **kwargs)
        return out, split(module)

    def __call__(self, *args, **kwargs):
        return self._run(lambda m: m, args, kwargs)

    def __getattr__(self, name):
        return lambda *args, **kwargs: self._run(lambda m: getattr(m, name), args, kwargs)


# -- walking a graph ----------------------------------------------------------------
def is_graph_node(x) -> bool:
    return isinstance(x, Object)


def _is_container(x):
    return type(x) in (list, tuple, dict)


def _node_items(node):
    if isinstance(node, Object):
        return node._graph_items()
    if isinstance(node, dict):
        return sorted(node.items(), key=lambda kv: str(kv[0]))
    return list(enumerate(node))


def _is_array(x):
    return isinstance(x, (jax.Array, np.ndarray))


def _is_node_or_variable(x):
    return isinstance(x, (Object, Variable))


def _holds_state(x):
    if isinstance(x, (Variable, Object)) or _is_array(x):
        return True
    if _is_container(x):
        return any(_holds_state(v) for _, v in _node_items(x))
    # any other pytree (a NamedTuple, a State) holds state if one of its leaves does
    leaves = jax.tree.leaves(x, is_leaf=_is_node_or_variable)
    return not (len(leaves) == 1 and leaves[0] is x) and any(_holds_state(leaf) for leaf in leaves)


def _key_name(k):
    """A JAX key-path entry as a plain path component: 'mu', 0, ..."""
    for attr in ("name", "key", "idx"):
        if hasattr(k, attr):
            return getattr(k, attr)
    return str(k)


def flatten(node, nodes=None):
    """`node` -> (GraphDef, [(path, Variable or array), ...]). If a list is passed as `nodes`,
    it receives every object and Variable in index order (what the transforms map back to)."""
    index, leaves = {}, []
    nodes = [] if nodes is None else nodes

    def visit(x, path):
        if id(x) in index:
            return NodeRef(index[id(x)])
        if isinstance(x, Variable):
            index[id(x)] = len(index)
            nodes.append(x)
            leaves.append((path, x))
            return VariableDef(type(x), index[id(x)], tuple(sorted((k, _Hashable(v)) for k, v in x._meta.items())))
        if _is_array(x):
            leaves.append((path, x))
            return LeafDef()
        if not (isinstance(x, Object) or _is_container(x)):  # another pytree: walk its leaves
            pairs, treedef = jax.tree_util.tree_flatten_with_path(x, is_leaf=_is_node_or_variable)
            children = []
            for keys, leaf in pairs:
                key = tuple(_key_name(k) for k in keys)
                children.append((key, visit(leaf, path + key) if _holds_state(leaf) else Static(_Hashable(leaf))))
            return PytreeDef(treedef, tuple(children))
        index[id(x)] = len(index)
        nodes.append(x)
        attrs = []
        for key, value in _node_items(x):
            if key == _TRACE_FLAG:
                continue
            attrs.append((key, visit(value, path + (key,)) if _holds_state(value) else Static(_Hashable(value))))
        return NodeDef(type(x), index[id(x)], tuple(attrs))

    if not (isinstance(node, Object) or _is_container(node)):
        raise TypeError(f"minnx.split: expected a Module (or another minnx graph node), got "
                        f"{type(node).__name__}. Plain arrays and pytrees need no split: pass them to JAX as they are.")
    root = visit(node, ())
    return GraphDef(root, len(leaves)), leaves


def unflatten(graphdef, flat, reuse=None, built=None):
    """Build objects from a GraphDef and a `{path: leaf}` dict (consumed). Fresh objects, except
    those in `reuse` (`{index: existing object}`), which are emptied and refilled in place.
    If a dict is passed as `built`, it receives `{index: object}` for everything built."""
    if not isinstance(graphdef, GraphDef):
        raise TypeError(f"minnx.merge: the first argument must be the GraphDef returned by split, got {type(graphdef).__name__}.")
    built = {} if built is None else built
    reuse = reuse or {}

    def missing(path, kind):
        return ValueError(
            f"minnx.merge: the state does not fit the graphdef: no value at {'/'.join(map(str, path))} "
            f"(the graphdef expects a {kind} there). Pass every State that split returned, e.g. "
            "`merge(graphdef, params, rest)`, and check it came from the same kind of model.")

    def build(d, path):
        if isinstance(d, NodeRef):
            return built[d.index]
        if isinstance(d, Static):
            return d.value.value
        if isinstance(d, LeafDef):
            if path not in flat:
                raise missing(path, "array")
            return _value_of(flat.pop(path))
        if isinstance(d, VariableDef):
            if path not in flat:
                raise missing(path, d.type.__name__)
            leaf = flat.pop(path)
            if isinstance(leaf, Variable) and d.index not in reuse:
                var = leaf  # like flax, merge puts the State's own Variable in the model
            else:
                var = reuse[d.index] if d.index in reuse else d.type.__new__(d.type)
                object.__setattr__(var, "_value", _value_of(leaf))
                object.__setattr__(var, "_meta", {k: v.value for k, v in d.metadata})
                object.__setattr__(var, "_trace_copy", False)
            built[d.index] = var
            return var
        if isinstance(d, PytreeDef):
            return d.treedef.unflatten([build(sub, path + key) for key, sub in d.children])
        # a NodeDef: create the object first (cycles may point back at it), then fill it
        if d.type in (list, dict, tuple):
            items = [(k, build(v, path + (k,))) for k, v in d.attributes]
            obj = dict(items) if d.type is dict else d.type(v for _, v in items)
            built[d.index] = obj
            return obj
        obj = reuse.get(d.index)
        if obj is None:
            obj = d.type.__new__(d.type)
        else:
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
    flat = {}
    for s in states:
        if not isinstance(s, State):
            s = State(s)
        flat.update(s.flat_state())
    return flat


# -- the functional API ---------------------------------------------------------------
def split(node, *filters):
    """`graphdef, state = split(model)`; with filters, one State per filter:
    `graphdef, params, rest = split(model, Param, ...)`."""
    graphdef, leaves = flatten(node)
    if not filters:
        return graphdef, State.from_flat_path(leaves)
    groups = split_by_filters(leaves, filters, "split")
    return (graphdef, *(State.from_flat_path(g) for g in groups))


def merge(graphdef, state=None, /, *states):
    """A new object from a GraphDef and the State(s) split returned."""
    return unflatten(graphdef, _flat_of(s for s in (state, *states) if s is not None))


def state(node, *filters):
    """The State of `node` (one per filter if filters are given). Leaves are the node's
    own Variables, so `state(model)['kernel'] is model.kernel`."""
    _, leaves = flatten(node)
    if not filters:
        return State.from_flat_path(leaves)
    from .filters import to_predicate
    out = [State.from_flat_path([(p, x) for p, x in leaves if to_predicate(f)(p, x)]) for f in filters]
    return out[0] if len(out) == 1 else tuple(out)


def graphdef(node):
    return flatten(node)[0]


def _get(node, key):
    try:
        return node._graph_get(key) if isinstance(node, Object) else node[key]
    except (KeyError, IndexError, TypeError):
        return getattr(node, str(key), _MISSING)  # a field of a NamedTuple inside a pytree


_MISSING = object()


def update(node, state, /, *states):
    """Write the values of State(s) into `node` in place (the model keeps its Variables)."""
    for path, leaf in _flat_of((state, *states)).items():
        parent = node
        for key in path[:-1]:
            parent = _get(parent, key)
            if parent is _MISSING:
                raise ValueError(f"minnx.update: {type(node).__name__} has nothing at "
                                 f"{'/'.join(map(str, path))}; was the state split from another model?")
        key = path[-1]
        target = _get(parent, key)
        if isinstance(target, Variable):
            target.set_value(_value_of(leaf))
            if isinstance(leaf, Variable) and leaf._meta != target._meta:
                touch()
                target._meta.update(leaf._meta)
        elif isinstance(parent, Object):
            parent._graph_set(key, leaf.copy() if isinstance(leaf, Variable) and target is _MISSING else leaf)
        else:
            parent[key] = leaf


def pop(node, *filters):
    """Remove the Variables matching `filters` from `node` and return them as State(s)."""
    _, leaves = flatten(node)
    groups = split_by_filters(leaves, (*filters, ...), "pop")[:-1]
    for group in groups:
        for path, _ in group:
            parent = node
            for key in path[:-1]:
                parent = _get(parent, key)
            if isinstance(parent, Object):
                delattr(parent, path[-1])
            else:
                del parent[path[-1]]
    out = [State.from_flat_path(g) for g in groups]
    return out[0] if len(out) == 1 else tuple(out)


def clone(node):
    """A deep copy: same structure and sharing, new Variables."""
    graphdef, leaves = flatten(node)
    return unflatten(graphdef, {p: x.copy() if isinstance(x, Variable) else x for p, x in leaves})


def iter_graph(node):
    """Yield `(path, value)` for every node and leaf, children before their parent,
    each shared object once (the order flax uses)."""
    seen = set()

    def walk(x, path):
        if isinstance(x, (Object, Variable)) or _is_container(x):
            if id(x) in seen:
                return
            seen.add(id(x))
        if isinstance(x, Object) or (_is_container(x) and _holds_state(x)):
            for key, value in _node_items(x):
                if key != _TRACE_FLAG:
                    yield from walk(value, path + (key,))
        yield path, x

    yield from walk(node, ())
