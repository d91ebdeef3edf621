"""Sharding: a Module's arrays laid out over many devices, by metadata on its Variables.

A Variable's `out_sharding` (`(None, 'model')`, from `with_partitioning`) lays it out as it is made
under `jax.set_mesh` (variables.py); here it is read back as PartitionSpecs and NamedShardings.
"""
import functools

import jax
from jax.sharding import NamedSharding, PartitionSpec

from .variables import Variable, VariableMetadata

def with_partitioning(initializer, sharding, mesh=None, **metadata):
    """`initializer` whose values go into their Variable with `out_sharding=sharding` (and `mesh`,
    and any other metadata): `Linear(..., kernel_init=with_partitioning(init, (None, 'model')))`."""
    @functools.wraps(initializer)
    def wrapper(*args):
        return VariableMetadata(initializer(*args),
                                {"out_sharding": sharding, "mesh": mesh, **metadata})
    return wrapper

def _spec_of(x):
    """A Variable's `out_sharding` as a PartitionSpec; P() (replicated) for any other array."""
    if isinstance(x, Variable) and x.get_metadata("out_sharding", None):
        return PartitionSpec(*x.get_metadata("out_sharding"))
    return PartitionSpec() if hasattr(x, "shape") else None

def get_partition_spec(tree):
    """`tree` (a State, a Module, any pytree) with each Variable's value replaced by its
    PartitionSpec, and each bare array by P(); other leaves become None."""
    def spec(x):
        return x.replace(_spec_of(x)) if isinstance(x, Variable) else _spec_of(x)
    return jax.tree.map(spec, tree, is_leaf=lambda x: isinstance(x, Variable))

def get_named_sharding(tree, mesh):
    """Like `get_partition_spec`, with each PartitionSpec placed on `mesh` as a NamedSharding."""
    specs = get_partition_spec(tree)
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs)
