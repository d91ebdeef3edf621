"""Containers: List and Dict, Modules that hold sub-Modules, arrays or settings as items.

A plain list of layers is refused (objects.py); a `List` keeps each item as an attribute named by
its index, so the data/static rules apply per item: `state['layers'][0]['kernel']`.
"""
from collections.abc import MutableMapping, MutableSequence

from .module import Module

class List(Module, MutableSequence):
    """A list that is part of the graph: `self.layers = minnx.List([Linear(...), ...])`."""
    def __init__(self, items=None, /):
        for item in items or ():
            self.append(item)

    # -- the graph protocol: items under integer keys -------------------------------------------
    def _graph_items(self):
        return [(i, getattr(self, str(i))) for i in range(len(self))]
    def _graph_set(self, key, value, is_data_attribute=True):
        super()._graph_set(str(key), value, is_data_attribute)
    def _is_data_attribute(self, key, value):
        return super()._is_data_attribute(str(key), value)
    def _repr_items(self):
        return self._graph_items()

    # -- the list methods ------------------------------------------------------------------------
    def __len__(self):
        return sum(1 for name in vars(self) if name.isdigit())

    def _index(self, i):
        n = len(self)
        index = i + n if i < 0 else i
        if not 0 <= index < n:
            raise IndexError(f"List index {i} out of range for a List of length {n}")
        return index

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [getattr(self, str(j)) for j in range(len(self))[i]]  # a plain list, as in flax
        return getattr(self, str(self._index(i)))

    def __setitem__(self, i, value):
        indexes = range(len(self))[i] if isinstance(i, slice) else [self._index(i)]
        values = list(value) if isinstance(i, slice) else [value]
        if len(indexes) != len(values):
            raise ValueError(f"List slice assignment: {len(values)} values, {len(indexes)} places.")
        for j, v in zip(indexes, values):
            setattr(self, str(j), v)

    def __delitem__(self, i):
        removed = set(range(len(self))[i]) if isinstance(i, slice) else {self._index(i)}
        self._rewrite([item for j, item in enumerate(self._with_status()) if j not in removed])

    def insert(self, i, value):
        items = self._with_status()
        self._rewrite(items[:i])  # keep the head (slicing places `i` as list.insert does),
        self.append(value)  # then append the new item and the tail
        for item, is_data_item in items[i:]:
            self._graph_set(len(self), item, is_data_item)

    def _with_status(self):  # `(item, is it data)` for every item, to move items as they are
        return [(item, self._is_data_attribute(i, item)) for i, item in self._graph_items()]

    def _rewrite(self, items_with_status):
        for j in range(len(self)):
            delattr(self, str(j))
        for j, (item, is_data_item) in enumerate(items_with_status):
            self._graph_set(j, item, is_data_item)

    def append(self, value):
        setattr(self, str(len(self)), value)
    def __iter__(self):
        return (getattr(self, str(i)) for i in range(len(self)))

class Dict(Module, MutableMapping):
    """A dict that is part of the graph; keys are strings, read as `d['a']` or `d.a`."""
    def __init__(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            setattr(self, key, value)

    def __getitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key, value):
        setattr(self, key, value)

    def __delitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        delattr(self, key)

    def _keys(self):
        return [k for k in vars(self) if not k.startswith("_object__")]
    def __iter__(self):
        return iter(self._keys())
    def __len__(self):
        return len(self._keys())

    __hash__ = object.__hash__  # hashed by identity, as in flax (Mapping's == compares items)
