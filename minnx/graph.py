"""The graph: how a Python object graph becomes (GraphDef, State) and back.

`split` walks depth first, attributes sorted: Variables go into the State by path, the rest into
the hashable GraphDef. An object met again becomes a reference, so `merge` rebuilds the sharing.
"""
import functools
from typing import Any, NamedTuple

import jax

from .config import graph_mode
from .objects import Pytree, _static_holds_data_error, has_data
from .state import State, filter_state, group_by_filters, one_or_tuple, path_text
from .variables import Variable, raw_value, unbox

# -- the GraphDef: a tree of these named tuples (immutable and hashable) ----------------------
class NodeDef(NamedTuple):  # an object: its class, visit number and attributes' definitions
    type: type
    index: int
    attributes: tuple

class NodeRef(NamedTuple):  # an object or Variable visited before: the same one again
    index: int

class VariableDef(NamedTuple):  # a Variable (its value is in the State)
    type: type
    index: int
    metadata: tuple

class LeafDef(NamedTuple):  # a raw value (an array, a number) in a data attribute
    pass

class PytreeDef(NamedTuple):  # a list, dict, tuple, ... in a data attribute
    treedef: Any
    children: tuple

class Static:
    """A static value kept in the GraphDef, hashable even if the value is not (a list)."""
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        if not isinstance(other, Static) or type(self.value) is not type(other.value):
            return False
        try:
            return bool(self.value == other.value)
        except Exception:  # e.g. arrays, whose == is not a bool
            return self.value is other.value

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return hash((type(self.value), repr(self.value)))

    def __repr__(self):
        return f"Static({self.value!r})"

class GraphDef:
    """The structure of a graph: hashable, and a pytree with no leaves (jit takes it as is)."""
    def __init__(self, root, num_leaves):
        self.root = root
        self.num_leaves = num_leaves
        self._hash = hash(root)

    def __eq__(self, other):
        return isinstance(other, GraphDef) and (self is other or self.root == other.root)
    def __hash__(self):
        return self._hash
    def __class_getitem__(cls, item):  # `GraphDef[Model]` in type hints
        return cls
    def apply(self, state, *states):
        """`apply(params, rest)(x)` -> `(output, (graphdef, state))`; `.apply(...).encode(x)`."""
        return ApplyCaller(self, (state, *states))
    def __repr__(self):
        return f"GraphDef({_definition_repr(self.root)}, num_leaves={self.num_leaves})"

def _definition_repr(d):
    if isinstance(d, NodeDef):
        shown = [f"{k}={_definition_repr(v)}" for k, v in d.attributes if not isinstance(v, Static)]
        return f"{d.type.__name__}({', '.join(shown)})"
    if isinstance(d, VariableDef):
        return d.type.__name__
    if isinstance(d, NodeRef):
        return f"<shared #{d.index}>"
    if isinstance(d, PytreeDef):
        return "[" + ", ".join(_definition_repr(v) for _, v in d.children) + "]"
    return "Array"

jax.tree_util.register_static(GraphDef)

class ApplyCaller:
    """What `GraphDef.apply` returns: call it (or one of its methods) on a merged model."""
    def __init__(self, graphdef, states):
        self.graphdef = graphdef
        self.states = states
    def __getattr__(self, name):
        return functools.partial(self._call, name)
    def __call__(self, *args, **kwargs):
        return self._call("__call__", *args, **kwargs)

    def _call(self, method, *args, **kwargs):
        module = merge(self.graphdef, *self.states)
        out = getattr(module, method)(*args, **kwargs)
        return out, split(module)

# -- walking a graph -----------------------------------------------------------------------
def is_graph_node(x) -> bool:
    return isinstance(x, Pytree)
def is_node_or_variable(x) -> bool:
    return isinstance(x, (Pytree, Variable))

def key_name(key):  # a JAX key-path entry as a path part: 'mu', 0, ...
    for attribute in ("name", "key", "idx"):
        if hasattr(key, attribute):
            return getattr(key, attribute)
    return str(key)

def _shared_reference_error(x, first_path, path, where):
    return ValueError(f"Duplicate {type(x).__name__} found at paths {path_text(first_path)} and "
                      f"{path_text(path)}. Tree mode (graph=False) does not support shared "
                      f"references: make the model a tree, or pass graph=True to {where}.")

def flatten(node, *, graph=None, objects=None, where="split"):
    """`node` -> (GraphDef, [(path, leaf), ...]); `objects` receives the nodes by GraphDef index."""
    graph = graph_mode(graph)
    first_visit = {}  # id(object or Variable) -> (index, path)
    leaves = []
    objects = [] if objects is None else objects

    def visit(x, path):
        if is_node_or_variable(x):
            if id(x) in first_visit:
                index, first_path = first_visit[id(x)]
                if not graph:
                    raise _shared_reference_error(x, first_path, path, where)
                return NodeRef(index)
            index = len(objects)
            first_visit[id(x)] = (index, path)
            objects.append(x)
            if isinstance(x, Variable):
                leaves.append((path, x))
                return VariableDef(type(x), index, tuple(sorted(x.get_metadata().items())))
            attributes = []
            for key, value in x._graph_items():
                if x._is_data_attribute(key, value):
                    attributes.append((key, visit(value, path + (key,))))
                elif has_data(value):  # filled in after __init__, e.g. by list.append
                    raise _static_holds_data_error(x, key, value)
                else:
                    attributes.append((key, Static(value)))
            return NodeDef(type(x), index, tuple(attributes))
        pairs, treedef = jax.tree_util.tree_flatten_with_path(x, is_leaf=is_node_or_variable)
        if jax.tree_util.treedef_is_leaf(treedef) and pairs:
            leaves.append((path, x))
            return LeafDef()
        children = []
        for key_path, leaf in pairs:
            keys = tuple(key_name(k) for k in key_path)
            children.append((keys, visit(leaf, path + keys)))
        return PytreeDef(treedef, tuple(children))
    root = visit(node, ())
    return GraphDef(root, len(leaves)), leaves

def unflatten(graphdef, leaves, *, reuse=None, copy=False):
    """Objects from a GraphDef and `{path: leaf}` (consumed: what is left was unused): fresh ones,
    but those in `reuse` (`{index: object}`) refilled in place; Variables kept unless `copy`."""
    if not isinstance(graphdef, GraphDef):
        raise TypeError(f"minnx.merge: the first argument must be the GraphDef returned by split, "
                        f"got {type(graphdef).__name__}.")
    built = {}  # index -> the object built for it, for the NodeRefs
    reuse = reuse or {}

    def take(path, kind):
        if path not in leaves:
            raise ValueError(f"minnx.merge: the state does not fit the graphdef: there is no value "
                             f"at {path_text(path)}, where it expects a {kind}. Pass every State "
                             "that split returned.")
        return leaves.pop(path)

    def build(d, path):
        if isinstance(d, NodeRef):
            return built[d.index]
        if isinstance(d, Static):
            return d.value
        if isinstance(d, LeafDef):
            return unbox(take(path, "value"))
        if isinstance(d, PytreeDef):
            children = [build(sub, path + keys) for keys, sub in d.children]
            return d.treedef.unflatten(children)
        if isinstance(d, VariableDef):
            leaf = take(path, d.type.__name__)
            value = raw_value(leaf)
            metadata = leaf.get_metadata() if isinstance(leaf, Variable) else dict(d.metadata)
            if d.index in reuse:
                variable = reuse[d.index]
                variable.set_raw_value(value)
                variable.set_metadata(metadata)
            elif isinstance(leaf, Variable) and not copy:
                variable = leaf
            else:
                variable = d.type.from_metadata(value, metadata)
            built[d.index] = variable
            return variable
        obj = reuse.get(d.index)  # a NodeDef: make the object first, cycles may point back at it
        if obj is None:
            obj = object.__new__(d.type)  # without __init__: filled by _graph_set below
        else:  # empty it, keeping its bookkeeping (objects.py) but not its data/static map
            for name in [k for k in vars(obj) if not k.startswith("_object__")]:
                del obj.__dict__[name]
            obj.__dict__.pop("_object__nodes", None)
        built[d.index] = obj
        for key, sub in d.attributes:
            obj._graph_set(key, build(sub, path + (key,)), not isinstance(sub, Static))
        return obj
    return build(graphdef.root, ())

# -- the functional API --------------------------------------------------------------------
def _states_to_flat(states):  # `{path: leaf}` from the States split returned
    flat = {}
    for s in states:
        pairs = State(s).flat_state() if isinstance(s, dict) else [((), s)]  # a bare Variable
        for path, leaf in pairs:
            if path in flat:
                raise ValueError(f"minnx.merge: two of the states both hold a value at "
                                 f"{path_text(path)}. Pass each part of the state once.")
            flat[path] = leaf
    return flat

def _state_of(leaves):  # the State of a walk's leaves; for a bare Variable, itself
    if len(leaves) == 1 and leaves[0][0] == ():
        return leaves[0][1]
    return State.from_flat_path(leaves)

def split(node, *filters, graph=None):
    """`graphdef, state = split(model)`, or `graphdef, params, rest = split(model, Param, ...)`."""
    graphdef, leaves = flatten(node, graph=graph)
    if not filters:
        return graphdef, _state_of(leaves)
    groups = group_by_filters(leaves, filters, "split")
    return (graphdef, *(_state_of(group) for group in groups))

def merge(graphdef, state, /, *states, copy=False):
    """A new object from a GraphDef and the State(s) split returned."""
    leaves = _states_to_flat([s for s in (state, *states) if s is not None])
    node = unflatten(graphdef, leaves, copy=copy)
    if leaves:
        extra = ", ".join(path_text(p) for p in list(leaves)[:5])
        raise ValueError(f"minnx.merge: the state does not fit the graphdef: it has values the "
                         f"model has no place for ({extra}). Was it split from another model?")
    return node

def state(node, *filters, graph=None):
    """The State of `node` (one per filter, if given), holding the node's own Variables."""
    _, leaves = flatten(node, graph=graph, where="state")
    if not filters:
        return _state_of(leaves)
    return filter_state(State.from_flat_path(leaves), *filters)

def set_metadata(node, /, *, only=Variable, **metadata):
    """Set metadata entries on every Variable in `node` that `only` selects."""
    for variable in jax.tree.leaves(state(node, only), is_leaf=lambda x: isinstance(x, Variable)):
        variable.set_metadata(**metadata)

def graphdef(node, /, *, graph=None):
    return flatten(node, graph=graph, where="graphdef")[0]

def _at(node, path):  # what `node` holds at `path` (attributes, indexes, dict keys), or None
    for key in path:
        if isinstance(node, Pytree):
            node = dict(node._graph_items()).get(key)
            continue
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = getattr(node, str(key), None)  # a field of a NamedTuple inside a pytree
    return node

def update(node, state, /, *states):
    """Write State(s) into `node`'s own Variables, after checking every path."""
    writes = []
    for path, leaf in _states_to_flat((state, *states)).items():
        parent = _at(node, path[:-1])
        target = _at(parent, path[-1:])
        if not isinstance(target, Variable) and not isinstance(parent, (Pytree, dict, list)):
            raise ValueError(f"minnx.update: the model has nothing at {path_text(path[:-1])} "
                             f"(or it cannot change) to write {path_text(path)} into.")
        writes.append((parent, path[-1], target, leaf))
    for parent, key, target, leaf in writes:
        if isinstance(target, Variable):
            target.update_from_state(leaf)
        elif isinstance(parent, Pytree):
            new = leaf.copy() if isinstance(leaf, Variable) and target is None else leaf
            parent._graph_set(key, new)
        else:
            parent[key] = leaf

def pop(node, *filters):
    """Remove the Variables matching `filters` from `node`; return them as State(s)."""
    _, leaves = flatten(node, where="pop")
    groups = group_by_filters(leaves, (*filters, ...), "pop")[:-1]
    for group in groups:
        for path, _ in group:
            parent = _at(node, path[:-1])
            if isinstance(parent, Pytree):
                delattr(parent, path[-1])
            else:
                del parent[path[-1]]
    return one_or_tuple([State.from_flat_path(group) for group in groups])

def clone(node, variables=True, *, arrays=False, graph=None):
    """A copy with the same sharing; new Variables unless `variables=False`, new arrays if asked."""
    graphdef, leaves = flatten(node, graph=graph, where="clone")
    copies = {}
    for path, leaf in leaves:
        value = raw_value(leaf)
        if arrays:
            value = jax.tree.map(lambda a: a.copy() if hasattr(a, "copy") else a, value)
        if isinstance(leaf, Variable):
            copies[path] = leaf.copy(value) if variables or arrays else leaf
        else:
            copies[path] = value
    return unflatten(graphdef, copies)

def iter_graph(node, /, *, graph=None):
    """`(path, value)` for every object, Variable and attribute value, children first."""
    graph = graph_mode(graph)
    seen = {}

    def walk(x, path):
        if is_node_or_variable(x):
            if id(x) in seen:
                if not graph:
                    raise _shared_reference_error(x, seen[id(x)], path, "iter_graph")
                return
            seen[id(x)] = path
        if isinstance(x, Pytree):
            for key, value in x._graph_items():
                yield from walk(value, path + (key,))
        elif not isinstance(x, Variable):
            pairs, treedef = jax.tree_util.tree_flatten_with_path(x, is_leaf=is_node_or_variable)
            if not jax.tree_util.treedef_is_leaf(treedef):
                for key_path, leaf in pairs:
                    yield from walk(leaf, path + tuple(key_name(k) for k in key_path))
        yield path, x
    yield from walk(node, ())

def iter_children(node, /, *, graph=None):
    """`(name, child)` for the direct children of `node` that are graph nodes or Variables."""
    for key, value in node._graph_items():
        if is_node_or_variable(value):  # Variables too, as in flax
            yield key, value
