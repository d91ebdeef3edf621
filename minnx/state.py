"""State: the arrays of a Module as a nested mapping, a JAX pytree.

`split` returns a `State` whose keys follow attribute names (`state['linear']['kernel']`,
or `state.linear.kernel`) and whose leaves are the Module's Variables. Because State is
a pytree, `jax.jit`, `jax.grad` and `jax.tree.map` accept it directly. The helpers here
work on States alone: `merge_state`, `split_state`, `filter_state`, `as_pure`,
`to_pure_dict`.
"""
from collections.abc import Mapping, MutableMapping

import jax

from . import filters as filterlib
from .variables import Variable


def _sort_key(k):
    return (not isinstance(k, int), str(k) if not isinstance(k, int) else k)


class State(MutableMapping):
    """A nested mapping from attribute names to Variables (or raw arrays)."""

    def __init__(self, mapping=(), /):
        items = mapping.items() if isinstance(mapping, Mapping) else mapping
        object.__setattr__(self, "_mapping", {
            k: State(v) if isinstance(v, Mapping) and not isinstance(v, State) else v
            for k, v in items})

    # -- mapping -------------------------------------------------------------
    def __getitem__(self, key):
        return self._mapping[key]

    def __setitem__(self, key, value):
        self._mapping[key] = State(value) if isinstance(value, dict) else value

    def __delitem__(self, key):
        del self._mapping[key]

    def __iter__(self):
        return iter(self._mapping)

    def __len__(self):
        return len(self._mapping)

    def __getattr__(self, name):
        mapping = object.__getattribute__(self, "_mapping")
        if name in mapping:
            return mapping[name]
        raise AttributeError(f"State has no key '{name}'; its keys are {list(mapping)}")

    def __setattr__(self, name, value):
        self[name] = value

    def raw_mapping(self):
        return self._mapping

    # -- flat views --------------------------------------------------------------
    def flat_state(self):
        """A list of `(path, leaf)` pairs, depth first in sorted key order."""
        out = []

        def walk(prefix, node):
            for k in sorted(node._mapping, key=_sort_key):
                v = node._mapping[k]
                if isinstance(v, State):
                    walk(prefix + (k,), v)
                else:
                    out.append((prefix + (k,), v))
        walk((), self)
        return out

    @classmethod
    def from_flat_path(cls, flat):
        root = {}
        for path, leaf in flat:
            node = root
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = leaf
        return cls(root)

    def to_pure_dict(self):
        return to_pure_dict(self)

    def filter(self, first, /, *filters):
        return filter_state(self, first, *filters)

    def split(self, first, /, *filters):
        return split_state(self, first, *filters)

    def merge(self, state, /, *states):
        return merge_state(self, state, *states)

    def replace_by_pure_dict(self, pure_dict):
        """Put the raw arrays of `pure_dict` into this State's Variables."""
        flat = dict(State(pure_dict).flat_state())
        for path, leaf in self.flat_state():
            if path in flat:
                node = self
                for k in path[:-1]:
                    node = node[k]
                if isinstance(leaf, Variable):
                    node[path[-1]] = leaf.replace(flat[path])
                else:
                    node[path[-1]] = flat[path]

    def __repr__(self):
        from .display import state_repr
        return state_repr(self)

    def __eq__(self, other):
        return isinstance(other, State) and self.flat_state() == other.flat_state()

    __hash__ = None


def _state_flatten(state):
    keys = tuple(sorted(state._mapping, key=_sort_key))
    return [(jax.tree_util.DictKey(k), state._mapping[k]) for k in keys], keys


def _state_unflatten(keys, children):
    new = State.__new__(State)
    object.__setattr__(new, "_mapping", dict(zip(keys, children)))
    return new


jax.tree_util.register_pytree_with_keys(State, _state_flatten, _state_unflatten)


def split_by_filters(flat, filters, where="split"):
    """Route each `(path, leaf)` to the first filter that matches it."""
    predicates = [filterlib.to_predicate(f) for f in filters]
    groups = [[] for _ in filters]
    for path, leaf in flat:
        for i, predicate in enumerate(predicates):
            if predicate(path, leaf):
                groups[i].append((path, leaf))
                break
        else:
            raise ValueError(
                f"minnx.{where}: the filters {filters!r} do not match {'/'.join(map(str, path))} "
                f"({type(leaf).__name__}). Add a filter for it, or end the list with `...` to collect "
                "everything else.")
    return groups


def filter_state(state, first, /, *filters):
    """Keep only the leaves matching the filters (one State per filter)."""
    all_filters = (first, *filters)
    predicates = [filterlib.to_predicate(f) for f in all_filters]
    flat = state.flat_state()
    out = [State.from_flat_path([(p, x) for p, x in flat if pred(p, x)]) for pred in predicates]
    return out[0] if len(out) == 1 else tuple(out)


def split_state(state, first, /, *filters):
    """Partition a State by filters: every leaf goes to the first filter that matches."""
    groups = split_by_filters(state.flat_state(), (first, *filters), "split_state")
    out = [State.from_flat_path(g) for g in groups]
    return out[0] if len(out) == 1 else tuple(out)


def merge_state(state, /, *states):
    """One State from several (later ones win where paths repeat)."""
    flat = {}
    for s in (state, *states):
        flat.update(State(s).flat_state() if not isinstance(s, State) else s.flat_state())
    return State.from_flat_path(flat.items())


def as_pure(tree):
    """Replace every Variable in a tree (a State, say) by the raw value it holds."""
    return jax.tree.map(lambda x: x.get_value() if isinstance(x, Variable) else x, tree,
                        is_leaf=lambda x: isinstance(x, Variable))


pure = as_pure


def to_pure_dict(state):
    """Nested plain dicts of raw arrays: the shape checkpoint libraries like."""
    def convert(node):
        if isinstance(node, State):
            return {k: convert(v) for k, v in node._mapping.items()}
        return node.get_value() if isinstance(node, Variable) else node
    return convert(state)
