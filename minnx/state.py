"""State: the arrays of a Module as a nested mapping, a JAX pytree.

`split` returns a `State` whose keys follow attribute names (`state['linear']['kernel']`, or
`state.linear.kernel`) and whose leaves are the Module's Variables. Because State is a pytree,
`jax.jit`, `jax.grad` and `jax.tree.map` accept it directly. The helpers here work on States
alone: `merge_state`, `split_state`, `filter_state`, `as_pure`, `to_pure_dict`.
"""
from collections.abc import Mapping

import jax

from .filters import to_predicate
from .variables import Variable


def _sort_key(k):
    return (not isinstance(k, int), k if isinstance(k, int) else str(k))


class State(dict):
    """A nested dict from attribute names to Variables (or raw arrays)."""

    def __init__(self, mapping=(), /):
        super().__init__()
        for k, v in (mapping.items() if isinstance(mapping, Mapping) else mapping):
            self[k] = v

    def __setitem__(self, key, value):
        super().__setitem__(key, State(value) if isinstance(value, Mapping) and not isinstance(value, State) else value)

    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(f"State has no key '{name}'; its keys are {list(self)}")

    def __setattr__(self, name, value):
        self[name] = value

    def flat_state(self):
        """A list of `(path, leaf)` pairs, depth first in sorted key order."""
        return [((k, *path), leaf) for k in sorted(self, key=_sort_key)
                for path, leaf in (self[k].flat_state() if isinstance(self[k], State) else [((), self[k])])]

    @classmethod
    def from_flat_path(cls, flat):
        root = cls()
        for path, leaf in flat:
            node = root
            for k in path[:-1]:
                node = dict.setdefault(node, k, State())
            node[path[-1]] = leaf
        return root

    def to_pure_dict(self):
        return to_pure_dict(self)

    def filter(self, first, /, *filters):
        return filter_state(self, first, *filters)

    def split(self, first, /, *filters):
        return split_state(self, first, *filters)

    def merge(self, state, /, *states):
        return merge_state(self, state, *states)

    def replace_by_pure_dict(self, pure_dict):
        """Put the raw arrays of `pure_dict` into this State, in new Variables of the same types."""
        flat = dict(State(pure_dict).flat_state())
        for path, leaf in self.flat_state():
            if path in flat:
                node = self
                for k in path[:-1]:
                    node = node[k]
                node[path[-1]] = leaf.replace(flat[path]) if isinstance(leaf, Variable) else flat[path]

    def __repr__(self):
        from .display import state_repr
        return state_repr(self)


jax.tree_util.register_pytree_with_keys(
    State, lambda s: ([(jax.tree_util.DictKey(k), s[k]) for k in sorted(s, key=_sort_key)],
                      tuple(sorted(s, key=_sort_key))),
    lambda keys, children: State(zip(keys, children)))


def split_by_filters(flat, filters, where="split"):
    """Route each `(path, leaf)` to the first filter that matches it."""
    predicates = [to_predicate(f) for f in filters]
    groups = [[] for _ in filters]
    for path, leaf in flat:
        i = next((i for i, p in enumerate(predicates) if p(path, leaf)), None)
        if i is None:
            raise ValueError(
                f"minnx.{where}: the filters {filters!r} do not match {'/'.join(map(str, path))} "
                f"({type(leaf).__name__}). Add a filter for it, or end the list with `...` to collect "
                "everything else.")
        groups[i].append((path, leaf))
    return groups


def _one_or_tuple(states):
    return states[0] if len(states) == 1 else tuple(states)


def filter_state(state, first, /, *filters):
    """Keep only the leaves matching the filters (one State per filter)."""
    flat = state.flat_state()
    return _one_or_tuple([State.from_flat_path([(p, x) for p, x in flat if to_predicate(f)(p, x)])
                          for f in (first, *filters)])


def split_state(state, first, /, *filters):
    """Partition a State by filters: every leaf goes to the first filter that matches."""
    return _one_or_tuple([State.from_flat_path(g) for g in
                          split_by_filters(state.flat_state(), (first, *filters), "split_state")])


def merge_state(state, /, *states):
    """One State from several (later ones win where paths repeat)."""
    return State.from_flat_path({p: x for s in (state, *states) for p, x in State(s).flat_state()}.items())


def as_pure(tree):
    """Replace every Variable in a tree (a State, say) by the raw value it holds."""
    return jax.tree.map(lambda x: x.get_value() if isinstance(x, Variable) else x, tree,
                        is_leaf=lambda x: isinstance(x, Variable))


pure = as_pure


def to_pure_dict(state):
    """Nested plain dicts of raw arrays: the shape checkpoint libraries like."""
    return {k: to_pure_dict(v) if isinstance(v, State) else v.get_value() if isinstance(v, Variable) else v
            for k, v in state.items()}
