"""Lifting: how an NNX transform carries Modules across a JAX transform, in three steps.

JAX transforms take pure functions of arrays, so every NNX transform wraps its JAX transform in
the split / merge / update a learner would write by hand around `jax.jit` (notebook 4):
1. `split_arguments` (outside): split the graph nodes among the arguments *together* (a layer
   passed twice stays one), and put in each node's place the values of its Variables.
2. `merge_arguments` (inside, while JAX traces): fresh objects around those values, which the
   function may change. `split_results` returns what changed and a static description of the
   rest (new attributes, objects in the output).
3. `update_arguments` (outside): write the changes into the caller's own objects.
With `graph_updates=False`, or in tree mode, only the values of the Variables passed in come
out, and the output must not contain them (flax's FLIP 5310).
"""
import dataclasses
from typing import Any, NamedTuple

import jax

from .graph import GraphDef, flatten, is_node_or_variable, unflatten, update
from .state import State
from .variables import Variable, raw_value

class Plan:
    """The static part of split arguments, hashed once: jit compiles once per Plan."""
    def __init__(self, treedef, positions, graphdef, paths, graph, graph_updates):
        self.treedef = treedef      # the arguments' pytree, with each graph node as one leaf
        self.positions = positions  # which of those leaves are graph nodes
        self.graphdef = graphdef    # the graph nodes, split together
        self.paths = paths          # each leaf's path; path[0] is the graph node it belongs to
        self.graph = graph
        self.graph_updates = graph_updates
        self._key = (treedef, positions, graphdef, paths, graph, graph_updates)
        self._hash = hash(self._key)

    def __eq__(self, other):
        return isinstance(other, Plan) and (self is other or self._key == other._key)
    def __hash__(self):
        return self._hash

class Lifted(NamedTuple):
    """Split arguments: their Plan, and the caller's graph nodes, leaves and objects."""
    plan: Plan
    nodes: tuple      # the graph nodes among the arguments, in order (path[0] indexes them)
    leaves: list      # the caller's Variables (or raw values), in path order
    objects: list     # the caller's objects and Variables, by GraphDef index

def per_argument(plan, paths, values, flat=None):
    """The arguments' pytree holding, in each graph node's place, the values whose paths start
    there (so vmap maps them on that argument's axis); elsewhere `flat`'s entries, or None."""
    flat = [None] * plan.treedef.num_leaves if flat is None else list(flat)
    for k, i in enumerate(plan.positions):
        flat[i] = [v for path, v in zip(paths, values) if path[0] == k]
    return plan.treedef.unflatten(flat)

def from_argument(plan, tree):  # what per_argument put in: all the values, in path order
    flat = plan.treedef.flatten_up_to(tree)
    return [value for i in plan.positions for value in flat[i]]

def split_arguments(args, *, graph, graph_updates):
    """Step 1: `args` -> (the same pytree with each graph node replaced by its values, Lifted)."""
    flat, treedef = jax.tree.flatten(args, is_leaf=is_node_or_variable)
    positions = tuple(i for i, x in enumerate(flat) if is_node_or_variable(x))
    objects = []
    nodes = tuple(flat[i] for i in positions)
    graphdef, leaves = flatten(nodes, graph=graph, objects=objects, where="the transform")
    graph_updates = graph and graph_updates  # tree mode never carries structure changes out
    plan = Plan(treedef, positions, graphdef, tuple(p for p, _ in leaves), graph, graph_updates)
    pure_args = per_argument(plan, plan.paths, [raw_value(leaf) for _, leaf in leaves], flat)
    return pure_args, Lifted(plan, nodes, [leaf for _, leaf in leaves], objects)

class Inner(NamedTuple):
    """Inside the transform: the fresh objects (by GraphDef index), leaves and their values."""
    roots: tuple
    objects: list
    leaves: list
    values: list

def merge_arguments(pure_args, plan):
    """Step 2a: rebuild the arguments with fresh objects around the (traced) values."""
    values = from_argument(plan, pure_args)
    roots = unflatten(plan.graphdef, dict(zip(plan.paths, values)))
    objects = []
    _, leaves = flatten(roots, graph=plan.graph, objects=objects)
    flat = plan.treedef.flatten_up_to(pure_args)
    for k, i in enumerate(plan.positions):
        flat[i] = roots[k]
    return plan.treedef.unflatten(flat), Inner(roots, objects, [x for _, x in leaves], values)

@jax.tree_util.register_static  # a pytree with no leaves: JAX carries it out as static data
@dataclasses.dataclass(frozen=True)
class Results:
    """split_results' static description. `changed`: which input leaves got new values, or None
    when the structure changed; then `graphdef` describes (inputs, new output nodes), and
    `reuse` maps its indexes to the inputs', else it describes ((), new output nodes)."""
    changed: tuple
    graphdef: GraphDef
    paths: tuple
    reuse: tuple
    out_treedef: Any
    out_positions: tuple  # which leaves of the output are graph nodes
    out_indexes: tuple    # for each of them, its input's GraphDef index, or None if it is new

def split_results(out, inner, plan, *, all_values=False):
    """Step 2b: `(output, updates, static)` for JAX to carry out: the output with each graph
    node replaced by its values (none for an input), the new values of the inputs' leaves (those
    that changed, or all: `cond`'s branches must agree), and how to put it all back."""
    out_flat, out_treedef = jax.tree.flatten(out, is_leaf=is_node_or_variable)
    out_positions = tuple(i for i, x in enumerate(out_flat) if is_node_or_variable(x))
    input_index = {id(obj): index for index, obj in enumerate(inner.objects)}
    out_indexes = tuple(input_index.get(id(out_flat[i])) for i in out_positions)
    structure_changed = False
    if plan.graph_updates:
        after = []  # the objects and Variables now reachable, by GraphDef index
        graphdef, leaves = flatten(inner.roots, graph=plan.graph, objects=after,
                                   where="the transform")
        values = [raw_value(leaf) for _, leaf in leaves]
        structure_changed = (graphdef != plan.graphdef or None in out_indexes
                             or any(a is not b for a, b in zip(after, inner.objects))
                             or any(not isinstance(leaf, Variable) and leaf is not inner.values[j]
                                    for j, (_, leaf) in enumerate(leaves)))
    else:  # only the input Variables' values come out; every graph node in the output is new
        out_indexes = (None,) * len(out_positions)
        values = [raw_value(leaf) for leaf in inner.leaves]
    new_places = [i for i, index in zip(out_positions, out_indexes) if index is None]
    roots = inner.roots if structure_changed else ()
    objects = []
    graphdef, leaves = flatten((roots, tuple(out_flat[i] for i in new_places)), graph=plan.graph,
                               objects=objects, where="the transform")
    paths = tuple(p for p, _ in leaves)
    out_values = [raw_value(leaf) for _, leaf in leaves]
    for i in out_positions:
        out_flat[i] = []
    for n, i in enumerate(new_places):
        out_flat[i] = [v for path, v in zip(paths, out_values) if path[:2] == (1, n)]
    if structure_changed:  # all the inputs' values come out, to refill the caller's objects
        changed = None
        reuse = tuple((index, input_index[id(obj)]) for index, obj in enumerate(objects)
                      if id(obj) in input_index)
        inputs = [(path[1:], v) for path, v in zip(paths, out_values) if path[0] == 0]
        updates = per_argument(plan, [p for p, _ in inputs], [v for _, v in inputs])
    else:
        for path, leaf in leaves:
            if id(leaf) in input_index:
                raise ValueError(f"Duplicate {type(leaf).__name__}: the function returned a "
                                 "Variable it was given, and tree mode (or graph_updates=False) "
                                 "does not support Variable aliasing between inputs and outputs.")
        changed = tuple(j for j, v in enumerate(values) if all_values or v is not inner.values[j])
        reuse = ()
        updates = per_argument(plan, [plan.paths[j] for j in changed], [values[j] for j in changed])
    static = Results(changed, graphdef, paths, reuse, out_treedef, out_positions, out_indexes)
    return out_treedef.unflatten(out_flat), updates, static

def write_leaf(lifted, j, value):
    """Write the caller's leaf j: a Variable in place, a raw value into its parent."""
    leaf = lifted.leaves[j]
    if isinstance(leaf, Variable):
        leaf.set_raw_value(value)
    else:
        path = lifted.plan.paths[j]
        update(lifted.nodes[path[0]], State.from_flat_path([(path[1:], value)]))

def update_arguments(result, lifted, *, write=True):
    """Step 3: write the changes into the caller's objects (if `write`); return the output."""
    out_pure, updates, static = result
    out_flat = static.out_treedef.flatten_up_to(out_pure)
    new_places = [i for i, index in zip(static.out_positions, static.out_indexes) if index is None]
    values = [v for i in new_places for v in out_flat[i]]
    reuse = {}
    if static.changed is None:  # the structure changed: refill the caller's objects in place
        values = from_argument(lifted.plan, updates) + values
        if write:
            reuse = {new: lifted.objects[old] for new, old in static.reuse}
    elif write:
        for j, value in zip(static.changed, from_argument(lifted.plan, updates)):
            write_leaf(lifted, j, value)
    _, new_nodes = unflatten(static.graphdef, dict(zip(static.paths, values)), reuse=reuse)
    for i, index in zip(static.out_positions, static.out_indexes):
        if index is not None:
            out_flat[i] = lifted.objects[index]
    for i, node in zip(new_places, new_nodes):
        out_flat[i] = node
    return static.out_treedef.unflatten(out_flat)
