"""Lifting: how an NNX transform carries Modules across a JAX transform, in three steps.

JAX transforms take pure functions of arrays; a Module is neither pure nor an array. So every
NNX transform wraps its JAX transform in the split / merge / update a learner would write by
hand around `jax.jit` (notebook 4 does):

1. `split_arguments` (outside): split the graph nodes among the arguments *together*, so that a
   layer passed twice stays one layer, and put in each node's place the list of its Variables'
   values: plain arrays, which JAX can trace.
2. `merge_arguments` (inside, while JAX traces): build fresh objects around those (traced)
   values and call the function with them. It may read and change them freely. Then
   `split_results` splits them again and returns the values that changed, plus a static
   description of anything else (new attributes, objects in the output).
3. `update_arguments` (outside): write the changed values into the caller's own Variables,
   and hand back the output, with the caller's objects where the function returned them.

What step 2 may change depends on two switches (config.py). With `graph_updates=True` (the
default) structure changes come out too: a new attribute, a sown value, a replaced layer. With
`graph_updates=False`, or in tree mode (`graph=False`), only the values of the Variables passed
in come out, and the output must not contain them (flax's "simple transforms", FLIP 5310).
"""
from typing import Any, NamedTuple

import jax

from .graph import (GraphDef, LeafDef, NodeDef, PytreeDef, VariableDef, flatten,
                    is_node_or_variable, unflatten, update)
from .state import State
from .variables import Variable


class Plan:
    """The static part of split arguments. Hashable (the hash is computed once), so a jitted
    function is compiled once per plan and reused for arguments of the same structure."""

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

def _value(leaf):
    return leaf.get_raw_value() if isinstance(leaf, Variable) else leaf

def split_arguments(args, *, graph, graph_updates):
    """Step 1: `args` -> (the same pytree with each graph node replaced by its values, Lifted)."""
    flat, treedef = jax.tree.flatten(args, is_leaf=is_node_or_variable)
    positions = tuple(i for i, x in enumerate(flat) if is_node_or_variable(x))
    objects = []
    nodes = tuple(flat[i] for i in positions)
    graphdef, leaves = flatten(nodes, graph=graph, objects=objects, where="the transform")
    graph_updates = graph and graph_updates  # tree mode never carries structure changes out
    plan = Plan(treedef, positions, graphdef, tuple(p for p, _ in leaves), graph, graph_updates)
    lifted = Lifted(plan, nodes, [leaf for _, leaf in leaves], objects)
    return pure_arguments(flat, lifted), lifted

def pure_arguments(flat, lifted):
    """The arguments as JAX receives them: each graph node replaced by its leaves' values."""
    plan = lifted.plan
    flat = list(flat)
    for k, i in enumerate(plan.positions):
        flat[i] = [_value(leaf) for path, leaf in zip(plan.paths, lifted.leaves) if path[0] == k]
    return plan.treedef.unflatten(flat)

class Inner(NamedTuple):
    """Inside the transform: the fresh objects, by GraphDef index, and their starting values."""
    roots: tuple
    built: dict
    values: list

def merge_arguments(pure_args, plan):
    """Step 2a: rebuild the arguments with fresh objects around the (traced) values."""
    flat = plan.treedef.flatten_up_to(pure_args)
    values = [value for i in plan.positions for value in flat[i]]
    built = {}
    roots = unflatten(plan.graphdef, dict(zip(plan.paths, values)), built=built)
    for k, i in enumerate(plan.positions):
        flat[i] = roots[k]
    return plan.treedef.unflatten(flat), Inner(roots, built, values)

class Changes(NamedTuple):
    """split_results' description when no structure changed: which input leaves got new values,
    and for each graph node in the output the input it is (its GraphDef index), or None for a
    new object, rebuilt outside from `out_graphdef`."""
    changed: tuple
    out_treedef: Any
    out_positions: tuple
    out_indexes: tuple
    out_graphdef: GraphDef
    out_paths: tuple

class NewStructure(NamedTuple):
    """split_results' description when structure changed: the GraphDef of (inputs, new outputs)
    and its paths; `reuse` maps its indexes to input indexes."""
    graphdef: GraphDef
    paths: tuple
    reuse: tuple
    out_treedef: Any
    out_positions: tuple
    out_sources: tuple  # for each graph node in the output: ("input", index) or ("new", n)

class StaticResult:
    """A pytree with no leaves: JAX carries `value` out of a transform as static data."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, StaticResult) and self.value == other.value

    def __hash__(self):
        return hash(self.value)

def _static_result_flatten(static):
    return (), static.value

def _static_result_unflatten(value, children):
    return StaticResult(value)

jax.tree_util.register_pytree_node(StaticResult, _static_result_flatten, _static_result_unflatten)

def _per_argument(plan, paths, values):
    """The arguments' pytree with, at each graph node's place, the values whose path starts
    there (so `vmap` maps them on that argument's axis)."""
    flat = [None] * plan.treedef.num_leaves
    for k, i in enumerate(plan.positions):
        flat[i] = [v for path, v in zip(paths, values) if path[0] == k]
    return plan.treedef.unflatten(flat)

def _from_argument(plan, updates):
    flat = plan.treedef.flatten_up_to(updates)
    return [value for i in plan.positions for value in flat[i]]

def split_results(out, inner, plan, *, all_values=False):
    """Step 2b: after the call, `(output, updates, static)` for JAX to carry out.

    In `output` each graph node is replaced by its leaves' values (none if it is one of the
    inputs); `updates` holds, at each graph node argument's place, the new values of its leaves
    (those that changed, or all of them: every branch of `cond` must return the same structure);
    `static` says how to put it all back."""
    out_flat, out_treedef = jax.tree.flatten(out, is_leaf=is_node_or_variable)
    out_positions = tuple(i for i, x in enumerate(out_flat) if is_node_or_variable(x))
    input_index = {id(obj): index for index, obj in inner.built.items()}
    if plan.graph_updates:
        out_indexes = tuple(input_index.get(id(out_flat[i])) for i in out_positions)
        graphdef, leaves = flatten(inner.roots, graph=plan.graph, where="the transform")
        values = [_value(leaf) for _, leaf in leaves]
        changed_raw = any(not isinstance(leaf, Variable) and value is not inner.values[j]
                          for j, ((_, leaf), value) in enumerate(zip(leaves, values)))
        if graphdef != plan.graphdef or None in out_indexes or changed_raw:
            return _new_structure_results(out_flat, out_treedef, out_positions, inner, plan)
    else:  # only Variable values come out; what else changed stays inside
        out_indexes = (None,) * len(out_positions)
        values = [inner.values[j] if d is None else _value(inner.built[d.index])
                  for j, d in enumerate(_leaf_defs(plan.graphdef))]
    new_nodes = tuple(out_flat[i] for i, index in zip(out_positions, out_indexes) if index is None)
    out_graphdef, out_leaves = flatten(new_nodes, graph=plan.graph, where="the transform")
    for path, leaf in out_leaves:
        if id(leaf) in input_index:
            raise ValueError(
                f"Duplicate {type(leaf).__name__}: the function returned a Variable it was given. "
                "With graph_updates=False (and in tree mode) a transform does not support Variable "
                "aliasing between inputs and outputs: return new values, or pass graph=True, "
                "graph_updates=True.")
    for n, i in enumerate(i for i, index in zip(out_positions, out_indexes) if index is None):
        out_flat[i] = [_value(leaf) for path, leaf in out_leaves if path[0] == n]
    for i, index in zip(out_positions, out_indexes):
        if index is not None:
            out_flat[i] = []
    changed = tuple(j for j, v in enumerate(values) if all_values or v is not inner.values[j])
    updates = _per_argument(plan, [plan.paths[j] for j in changed], [values[j] for j in changed])
    static = Changes(changed, out_treedef, out_positions, out_indexes, out_graphdef,
                     tuple(p for p, _ in out_leaves))
    return out_treedef.unflatten(out_flat), updates, StaticResult(static)

def _new_structure_results(out_flat, out_treedef, out_positions, inner, plan):
    input_index = {id(obj): index for index, obj in inner.built.items()}
    new_nodes = tuple(out_flat[i] for i in out_positions if id(out_flat[i]) not in input_index)
    objects = []
    graphdef, leaves = flatten((inner.roots, new_nodes), graph=plan.graph, objects=objects,
                               where="the transform")
    paths = tuple(p for p, _ in leaves)
    values = [_value(leaf) for _, leaf in leaves]
    out_sources = []
    for i in out_positions:
        if id(out_flat[i]) in input_index:
            out_sources.append(("input", input_index[id(out_flat[i])]))
            out_flat[i] = []
        else:
            n = sum(kind == "new" for kind, _ in out_sources)
            out_sources.append(("new", n))
            out_flat[i] = [v for path, v in zip(paths, values) if path[:2] == (1, n)]
    reuse = tuple((index, input_index[id(obj)]) for index, obj in enumerate(objects)
                  if id(obj) in input_index)
    static = NewStructure(graphdef, paths, reuse, out_treedef, out_positions, tuple(out_sources))
    inputs = [(path[1:], v) for path, v in zip(paths, values) if path[0] == 0]
    updates = _per_argument(plan, [p for p, _ in inputs], [v for _, v in inputs])
    return out_treedef.unflatten(out_flat), updates, StaticResult(static)

def _leaf_defs(graphdef):
    """One entry per State leaf, in path order: its VariableDef, or None for a raw value."""
    found = []

    def walk(d):
        if isinstance(d, VariableDef):
            found.append(d)
        elif isinstance(d, LeafDef):
            found.append(None)
        elif isinstance(d, NodeDef):
            for _, sub in d.attributes:
                walk(sub)
        elif isinstance(d, PytreeDef):
            for _, sub in d.children:
                walk(sub)

    walk(graphdef.root)
    return found

def write_leaf(lifted, j, value):
    """Write a new value into the caller's leaf j: a Variable in place, a raw value (an array
    attribute, an array in a `minnx.data` dict) into its parent."""
    leaf = lifted.leaves[j]
    if isinstance(leaf, Variable):
        leaf.set_raw_value(value)
    else:
        path = lifted.plan.paths[j]
        update(lifted.nodes[path[0]], State.from_flat_path([(path[1:], value)]))

def update_arguments(result, lifted, *, write=True):
    """Step 3: write the changes into the caller's objects (unless `write` is False, for
    eval_shape), and return the output with the graph nodes put back."""
    out_pure, updates, static = result
    static = static.value
    out_flat = static.out_treedef.flatten_up_to(out_pure)
    update_values = _from_argument(lifted.plan, updates)
    if isinstance(static, Changes):
        if write:
            for j, value in zip(static.changed, update_values):
                write_leaf(lifted, j, value)
        new_values = [v for i, index in zip(static.out_positions, static.out_indexes)
                      if index is None for v in out_flat[i]]
        new_nodes = iter(unflatten(static.out_graphdef, dict(zip(static.out_paths, new_values))))
        for i, index in zip(static.out_positions, static.out_indexes):
            out_flat[i] = next(new_nodes) if index is None else lifted.objects[index]
        return static.out_treedef.unflatten(out_flat)
    new_values = [v for i, (kind, _) in zip(static.out_positions, static.out_sources)
                  if kind == "new" for v in out_flat[i]]
    reuse = {new: lifted.objects[old] for new, old in static.reuse} if write else {}
    leaves = dict(zip(static.paths, update_values + new_values))
    roots, new_nodes = unflatten(static.graphdef, leaves, reuse=reuse)
    for i, (kind, n) in zip(static.out_positions, static.out_sources):
        out_flat[i] = lifted.objects[n] if kind == "input" else new_nodes[n]
    return static.out_treedef.unflatten(out_flat)
