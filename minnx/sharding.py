"""Sharding: a Module's arrays laid out over many devices, by metadata on its Variables.

JAX lays arrays out on a `Mesh` (devices in a grid with named axes) by a `PartitionSpec` per
array: per dimension, the mesh axis that splits it (None: not split); XLA partitions a jitted
program to match (GSPMD). NNX adds metadata: a Variable's `out_sharding` (`(None, 'model')`),
which `with_partitioning` passes on from an initializer, and by which a Variable is laid out as
it is made under `jax.set_mesh(mesh)` (variables.py: `shard_eagerly`). This file reads it back
as PartitionSpecs and NamedShardings, for `jit`'s shardings, a constraint or a restore target.
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
