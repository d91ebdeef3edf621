"""The repeat-call fast path of `minnx.jit`: an optimisation. Skip this file on first reading.

Every call of a jitted function splits its arguments (lift.py), walking the whole model in
Python. A training loop calls the same step with the same model and optimizer every time, so
`WalkCache` remembers the last walk and reuses it while it still describes the arguments:

- the same objects in the same argument places, and arrays (or numbers) everywhere else;
- no structure change since, in any object of the walk: each object counts its own changes
  (an attribute set or deleted, Variable metadata changed; see variables.py), and a global
  count of all changes lets the common case (nothing changed anywhere) skip that check;
- only Variables as leaves and only tuples (optax states) as plain containers: a value inside
  a list or dict (`minnx.data({...})`) can change without any object noticing, so walks holding
  one are never remembered.

It holds only weak references, so it keeps no model alive, and one walk per jitted function.
"""
import weakref

import jax
import numpy as np

from .lift import Lifted
from .objects import Pytree
from .variables import Variable, structure_changes

_ARRAY_TYPES = (jax.Array, np.ndarray, int, float, complex, bool)

class _Walk:
    """A remembered walk: weak references to what it walked, and what it found."""

    def __init__(self, args, lifted):
        plan = lifted.plan
        self.plan = plan
        self.num_args = len(args)
        self.node_places = {i: weakref.ref(args[i]) for i in plan.positions}
        self.leaves = [weakref.ref(leaf) for leaf in lifted.leaves]
        self.objects = [weakref.ref(obj) for obj in lifted.objects]
        self.versions = [obj.__dict__.get("_object__version", 0) for obj in lifted.objects]
        self.changes_seen = structure_changes[0]
        self.slices = []  # each node argument's leaves: leaves[start:end]
        start = 0
        for k in range(len(plan.positions)):
            end = start
            while end < len(plan.paths) and plan.paths[end][0] == k:
                end += 1
            self.slices.append((start, end))
            start = end

    def still_valid(self):
        if self.changes_seen == structure_changes[0]:
            return True
        for ref, version in zip(self.objects, self.versions):
            obj = ref()
            if obj is None or obj.__dict__.get("_object__version", 0) != version:
                return False
        self.changes_seen = structure_changes[0]
        return True

class _Dereferenced:
    """A list of weak references read as the list of their objects."""

    def __init__(self, refs):
        self.refs = refs

    def __getitem__(self, index):
        return self.refs[index]()

def _can_remember(args, kwargs, lifted):
    if kwargs:
        return False
    for i, x in enumerate(args):
        if i not in lifted.plan.positions and not isinstance(x, _ARRAY_TYPES):
            return False
        if i in lifted.plan.positions and not isinstance(x, (Pytree, Variable)):
            return False  # a tuple or dict holding a Module: it cannot be weakly referenced
    if not all(isinstance(leaf, Variable) for leaf in lifted.leaves):
        return False
    for obj in lifted.objects:
        if isinstance(obj, Pytree):
            for name, value in obj._graph_items():
                if obj._is_data_attribute(name, value) and not _only_tuples(value):
                    return False
    return True

def _only_tuples(value):
    if value is None or isinstance(value, (Variable, Pytree)):
        return True
    if isinstance(value, tuple):
        return all(_only_tuples(v) for v in value)
    return False

class WalkCache:
    """The last walk of one jitted function's arguments, reused while it is valid."""

    def __init__(self):
        self.walk = None

    def store(self, args, kwargs, lifted):
        self.walk = _Walk(args, lifted) if _can_remember(args, kwargs, lifted) else None

    def lookup(self, args, kwargs):
        """`(pure_args, pure_kwargs, lifted)` from the remembered walk, or None."""
        walk = self.walk
        if walk is None or kwargs or len(args) != walk.num_args:
            return None
        for i, x in enumerate(args):
            place = walk.node_places.get(i)
            if place is None:
                if not isinstance(x, _ARRAY_TYPES):
                    return None
            elif x is not place():
                return None
        if not walk.still_valid():
            self.walk = None
            return None
        leaves = [ref() for ref in walk.leaves]
        pure_args = list(args)
        for k, i in enumerate(walk.plan.positions):
            start, end = walk.slices[k]
            pure_args[i] = [leaf._raw_value for leaf in leaves[start:end]]
        nodes = tuple(args[i] for i in walk.plan.positions)
        lifted = Lifted(walk.plan, nodes, leaves, _Dereferenced(walk.objects))
        return tuple(pure_args), {}, lifted
