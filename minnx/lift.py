"""Lifting: how a transform carries graph nodes across a JAX transform boundary.

JAX transforms take pure functions of pytrees of arrays; a Module is neither. So every NNX
transform does three steps around the JAX one:
1. `lift` (outside): split the graph nodes in the arguments *together* (shared references stay
   shared) and put, in each node's place, the list of its Variables' values: plain arrays.
2. `lower` (inside, while JAX traces): merge the values into fresh objects the function may use
   and mutate; then `lift_out` splits them again and returns their values, plus a static
   description of anything whose structure changed.
3. `lower_out` (outside): write the new values into the caller's own objects (an `update`), and
   turn graph nodes the function returned into objects.

It is the split / merge / update a learner writes by hand around `jax.jit` (notebook 4). Walking
the graph in Python is slow next to a jitted call, so `split_nodes` reuses its last walk of the
same objects while no graph structure has changed (see `module.structure_version`).
"""
import functools
from typing import Any, NamedTuple

import jax
import numpy as np

from .graph import flatten, unflatten, update
from .module import Object, structure_version, _is_node_or_variable as is_node
from .state import State
from .variables import Variable


class Split:
    """One walk of a tuple of graph nodes: GraphDef, the leaves in order, and which node each
    leaf belongs to. Equal (and hashing alike) when the structure is the same, so a jitted
    function compiled for one Split is reused for the next with that structure."""

    def __init__(self, nodes):
        self.nodes = nodes  # kept alive: the cache key holds their ids
        self.objects = []   # every object and Variable, by GraphDef index
        self.graphdef, leaves = flatten(nodes, self.objects)
        self.paths = tuple(path for path, _ in leaves)
        self.leaves = [leaf for _, leaf in leaves]  # Variables (or bare array attributes)
        self.by_node = [[j for j, p in enumerate(self.paths) if p[0] == k] for k in range(len(nodes))]
        self.node_leaves = [[self.leaves[j] for j in js] for js in self.by_node]
        # equal structures share one (graphdef, paths) object, so comparing two Splits is cheap
        self.structure = _structures.setdefault((self.graphdef, self.paths), (self.graphdef, self.paths))
        self._hash = hash(self.structure)

    def node_values(self, k):
        """The values of node k's leaves, as the transform passes them to JAX."""
        return [v._value if isinstance(v, Variable) else v for v in self.node_leaves[k]]

    def write(self, j, value):
        leaf = self.leaves[j]
        if isinstance(leaf, Variable):
            leaf.set_value(value)
        else:  # a bare array attribute: replace it in its parent
            path = self.paths[j]
            update(self.nodes[path[0]], State.from_flat_path([(path[1:], value)]))

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, Split) and self.structure is other.structure


_cache, _structures = {}, {}


def split_nodes(nodes):
    key = (tuple(map(id, nodes)), structure_version[0])
    split = _cache.get(key)
    if split is None:
        split = _cache[key] = Split(nodes)
        if len(_cache) > 32:
            del _cache[next(iter(_cache))]
    return split


class Lifted(NamedTuple):
    """Where the graph nodes sat in a pytree of arguments, and their Split."""
    treedef: Any
    positions: tuple
    split: Split


_LEAF_TYPES = (jax.Array, np.ndarray, int, float, complex)


@functools.lru_cache
def _tuple_of_leaves(n):
    return jax.tree.structure((0,) * n)


def _flat_arguments(tree):
    """`f(model, optimizer, x, y)`: a tuple of graph nodes and arrays needs no pytree walk."""
    if type(tree) is not tuple:
        return None
    positions = []
    for i, x in enumerate(tree):
        if isinstance(x, (Object, Variable)):
            positions.append(i)
        elif not isinstance(x, _LEAF_TYPES):
            return None
    return tuple(positions)


def lift(tree):
    """`tree` -> (the same tree with each graph node replaced by its values, Lifted)."""
    positions = _flat_arguments(tree)
    if positions is None:
        leaves, treedef = jax.tree.flatten(tree, is_leaf=is_node)
        positions = tuple(i for i, x in enumerate(leaves) if is_node(x))
    else:
        leaves, treedef = list(tree), _tuple_of_leaves(len(tree))
    split = split_nodes(tuple(leaves[i] for i in positions))
    for k, i in enumerate(positions):
        leaves[i] = split.node_values(k)
    return treedef.unflatten(leaves), Lifted(treedef, positions, split)


class Inner(NamedTuple):
    """The fresh objects built inside a transform, and the values they started from."""
    roots: tuple
    built: dict
    values: list

    def current(self):
        """The GraphDef of the inner objects now, and their leaves' values."""
        graphdef, leaves = flatten(self.roots)
        return graphdef, [v._value if isinstance(v, Variable) else v for _, v in leaves]


def lower(pure, lifted):
    """Inside a transform: rebuild the tree with fresh objects holding the (traced) values."""
    split = lifted.split
    leaves = lifted.treedef.flatten_up_to(pure)
    values = [None] * len(split.paths)
    for k, i in enumerate(lifted.positions):
        for j, value in zip(split.by_node[k], leaves[i]):
            values[j] = value
    built = {}
    roots = unflatten(split.graphdef, dict(zip(split.paths, values)), built=built)
    for k, i in enumerate(lifted.positions):
        leaves[i] = roots[k]
    return lifted.treedef.unflatten(leaves), Inner(roots, built, values)


class Static:
    """A pytree with no leaves: JAX carries `value` through a transform as static data."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Static) and self.value == other.value

    def __hash__(self):
        return hash(self.value)


jax.tree_util.register_pytree_node(Static, lambda s: ((), s.value), lambda value, _: Static(value))


# What lift_out tells lower_out, as static data. `Fast`: the inputs kept their structure and no
# new object came out: `order` says which leaves changed; `markers` which input object each
# graph node in the output is. `Graph`: otherwise; it carries the GraphDef of inputs and new
# outputs, `reuse` maps its indices to the caller's objects, `markers` are ("in", i) or ("new", n).
Fast = NamedTuple("Fast", [("order", tuple), ("out_treedef", Any), ("out_positions", tuple), ("markers", tuple)])
Graph = NamedTuple("Graph", [("graphdef", Any), ("paths", tuple), ("reuse", tuple), ("out_treedef", Any),
                             ("out_positions", tuple), ("markers", tuple)])


def lift_out(out, inner, lifted, only_changed=False):
    """Inside, after the call: `(out with new nodes as value lists, updates, Static)`.

    `updates` mirrors the lifted arguments: at each graph node's place, the values of its leaves
    that changed (all of them if `only_changed` is False). If the inputs kept their structure and
    the output holds no new objects, that is all (`Fast`, the common case). Otherwise the inputs
    and the new outputs are split together and a `Graph` carries their GraphDef."""
    split = lifted.split
    out_leaves, out_treedef = jax.tree.flatten(out, is_leaf=is_node)
    old_index = {id(obj): i for i, obj in inner.built.items()}
    out_positions = tuple(i for i, x in enumerate(out_leaves) if is_node(x))
    new_nodes = tuple(out_leaves[i] for i in out_positions if id(out_leaves[i]) not in old_index)
    graphdef, now = inner.current()
    update_leaves = [None] * lifted.treedef.num_leaves
    if graphdef == split.graphdef and not new_nodes:
        changed = {j for j, v in enumerate(now) if not only_changed or v is not inner.values[j]}
        for k, i in enumerate(lifted.positions):
            update_leaves[i] = [now[j] for j in split.by_node[k] if j in changed]
        order = tuple(j for k in range(len(lifted.positions)) for j in split.by_node[k] if j in changed)
        markers = tuple(old_index[id(out_leaves[i])] for i in out_positions)
        for i in out_positions:
            out_leaves[i] = []
        static = Fast(order, out_treedef, out_positions, markers)
    else:
        objects = []
        graphdef, leaves = flatten((inner.roots, new_nodes), objects)
        paths = tuple(p for p, _ in leaves)
        values = [v._value if isinstance(v, Variable) else v for _, v in leaves]
        for k, i in enumerate(lifted.positions):
            update_leaves[i] = [v for p, v in zip(paths, values) if p[:2] == (0, k)]
        markers = []
        for i in out_positions:
            if id(out_leaves[i]) in old_index:
                markers.append(("in", old_index[id(out_leaves[i])]))
                out_leaves[i] = []
            else:
                n = sum(m[0] == "new" for m in markers)
                markers.append(("new", n))
                out_leaves[i] = [v for p, v in zip(paths, values) if p[:2] == (1, n)]
        reuse = tuple((new, old_index[id(obj)]) for new, obj in enumerate(objects) if id(obj) in old_index)
        static = Graph(graphdef, paths, reuse, out_treedef, out_positions, tuple(markers))
    return out_treedef.unflatten(out_leaves), lifted.treedef.unflatten(update_leaves), Static(static)


def lower_out(result, lifted, write=True):
    """Outside, after the call: write the updates into the caller's objects (unless `write` is
    False, for eval_shape); return `out`."""
    out_pure, updates, static = result
    split, static = lifted.split, static.value
    if isinstance(static, Fast) and not static.order and not static.out_positions:
        return out_pure  # nothing changed, no graph node in the output: the common case
    update_leaves = lifted.treedef.flatten_up_to(updates)
    update_values = [v for i in lifted.positions for v in update_leaves[i]]
    out_leaves = static.out_treedef.flatten_up_to(out_pure)
    if isinstance(static, Fast):
        for j, value in zip(static.order, update_values if write else ()):
            split.write(j, value)
        if not static.out_positions:
            return out_pure
        for i, old in zip(static.out_positions, static.markers):
            out_leaves[i] = split.objects[old]
        return static.out_treedef.unflatten(out_leaves)
    new_values = [v for i, m in zip(static.out_positions, static.markers) if m[0] == "new" for v in out_leaves[i]]
    flat = dict(zip(static.paths, update_values + new_values))
    reuse = {new: split.objects[old] for new, old in static.reuse} if write else {}
    _, new_nodes = unflatten(static.graphdef, flat, reuse=reuse)
    for i, (kind, n) in zip(static.out_positions, static.markers):
        out_leaves[i] = split.objects[n] if kind == "in" else new_nodes[n]
    return static.out_treedef.unflatten(out_leaves)
