"""State: the arrays of a Module as a nested mapping, a JAX pytree.

`split` returns a `State` keyed by attribute names (`state['linear']['kernel']`, or
`state.linear.kernel`); `merge_state`, `filter_state`, ... work on States alone.
"""
from collections.abc import Mapping

import jax

from .filters import filters_to_predicates, to_predicate
from .variables import Variable, array_summary, unbox

def sort_key(key):  # ints first, then the rest as text
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))

class State(dict):
    """A nested dict from attribute names (and list indexes) to Variables or raw values."""
    def __init__(self, mapping=(), /):
        super().__init__()
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key, value):
        if isinstance(value, Mapping) and not isinstance(value, State):
            value = State(value)
        super().__setitem__(key, value)

    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(f"State has no key '{name}'; its keys are {list(self)}")

    def __setattr__(self, name, value):
        self[name] = value

    def flat_state(self):  # a list of `(path, leaf)` pairs, depth first in sorted key order
        flat = []
        for key in sorted(self, key=sort_key):
            value = self[key]
            if isinstance(value, State):
                flat.extend(((key, *path), leaf) for path, leaf in value.flat_state())
            else:
                flat.append(((key,), value))
        return flat

    @classmethod
    def from_flat_path(cls, flat):  # the State holding each `(path, leaf)` at its path
        root = cls()
        for path, leaf in flat:
            node = root
            for key in path[:-1]:
                node = dict.setdefault(node, key, State())
            node[path[-1]] = leaf
        return root

    # the functions below, as methods
    def filter(self, first, /, *filters):
        return filter_state(self, first, *filters)
    def split(self, first, /, *filters):
        return split_state(self, first, *filters)
    @classmethod
    def merge(cls, state, /, *states):  # as in flax, a classmethod: State.merge(a, b)
        return merge_state(state, *states)
    def to_pure_dict(self):
        return to_pure_dict(self)

    def replace_by_pure_dict(self, pure_dict):
        """Put the raw values of `pure_dict` (a checkpoint) into this State, in new Variables."""
        leaves = dict(self.flat_state())
        for path, value in State(pure_dict).flat_state():
            if path not in leaves:
                raise ValueError(f"replace_by_pure_dict: the State has no {path_text(path)}.")
            old = leaves[path]
            leaves[path] = old.replace(value) if isinstance(old, Variable) else value
        self.update(State.from_flat_path(leaves.items()))

    def __repr__(self):
        return f"State({_nested_repr(self, '')})"

def _nested_repr(node, indent):
    if isinstance(node, Variable):
        return repr(node)
    if not isinstance(node, State):
        return array_summary(node)
    if not node:
        return "{}"
    lines = [f"{indent}  {k!r}: {_nested_repr(v, indent + '  ')}" for k, v in node.items()]
    return "{\n" + ",\n".join(lines) + f"\n{indent}}}"

def _flatten_state(state):
    keys = tuple(sorted(state, key=sort_key))
    return [(jax.tree_util.DictKey(k), state[k]) for k in keys], keys

jax.tree_util.register_pytree_with_keys(
    State, _flatten_state, lambda keys, children: State(zip(keys, children)))

def path_text(path):  # ('layers', 0, 'kernel') -> 'layers/0/kernel'
    return "/".join(map(str, path)) or "(root)"

def group_by_filters(flat, filters, where):
    """Put each `(path, leaf)` in the group of the first filter that matches it."""
    predicates = filters_to_predicates(filters)
    groups = [[] for _ in filters]
    for path, leaf in flat:
        for predicate, group in zip(predicates, groups):
            if predicate(path, leaf):
                group.append((path, leaf))
                break
        else:
            raise ValueError(f"minnx.{where}: no filter in {filters!r} matches {path_text(path)} "
                             f"({type(leaf).__name__}): add one, or end the list with `...`.")
    return groups

def one_or_tuple(items):
    return items[0] if len(items) == 1 else tuple(items)

def filter_state(state, first, /, *filters):
    """Keep only the leaves matching each filter: one State per filter."""
    flat = state.flat_state()
    states = []
    for f in (first, *filters):
        predicate = to_predicate(f)
        states.append(State.from_flat_path([(p, x) for p, x in flat if predicate(p, x)]))
    return one_or_tuple(states)

def split_state(state, first, /, *filters):
    """Partition a State: every leaf goes to the first filter that matches it."""
    groups = group_by_filters(state.flat_state(), (first, *filters), "split_state")
    return one_or_tuple([State.from_flat_path(group) for group in groups])

def merge_state(state, /, *states):
    """One State from several (a later one wins where paths repeat)."""
    flat = {}
    for s in (state, *states):
        flat.update(State(s).flat_state())
    return State.from_flat_path(flat.items())

def as_pure(tree):
    """Replace every Variable in a tree (a State, say) by the value it holds."""
    return jax.tree.map(unbox, tree, is_leaf=lambda x: isinstance(x, Variable))

pure = as_pure

def to_pure_dict(state):
    """Nested plain dicts of raw values: the form checkpoint libraries like."""
    return {k: to_pure_dict(v) if isinstance(v, State) else as_pure(v) for k, v in state.items()}
