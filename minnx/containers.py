"""Containers: List and Dict hold sub-Modules (or arrays) as state.

A plain Python list of layers is refused as an attribute (see module.py). A `List`'s items are
graph children, under integer keys: `state['layers'][0]['kernel']`. As in flax, List and Dict
are Modules, with the methods of Python's list and dict.
"""
from collections.abc import MutableMapping, MutableSequence

from .module import Module, touch


class List(Module, MutableSequence):
    """A list that is part of the graph: `self.layers = minnx.List([Linear(...), ...])`."""

    def __init__(self, items=()):
        object.__setattr__(self, "_items", list(items))

    def _graph_items(self):
        return list(enumerate(self._items))

    def _graph_get(self, key):
        return self._items[key]

    def _graph_set(self, key, value):
        touch()
        items = self.__dict__.setdefault("_items", [])
        if key == len(items):
            items.append(value)
        else:
            items[key] = value

    def __getitem__(self, i):
        return List(self._items[i]) if isinstance(i, slice) else self._items[i]

    def __setitem__(self, i, value):
        touch()
        self._items[i] = value

    def __delitem__(self, i):
        touch()
        del self._items[i]

    def __len__(self):
        return len(self._items)

    def insert(self, i, value):
        touch()
        self._items.insert(i, value)


class Dict(Module, MutableMapping):
    """A dict that is part of the graph; keys are strings, read as `d['a']` or `d.a`."""

    def __init__(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            setattr(self, key, value)

    def __getitem__(self, key):
        if key not in vars(self) or key.startswith("_minnx"):
            raise KeyError(key)
        return vars(self)[key]

    def __setitem__(self, key, value):
        setattr(self, key, value)

    def __delitem__(self, key):
        delattr(self, key)

    def __iter__(self):
        return (k for k in vars(self) if not k.startswith("_minnx"))

    def __len__(self):
        return sum(1 for _ in self)
