"""Sharding: a Module's arrays laid out over many devices, by metadata on its Variables.

JAX's model of many devices (SPMD) is a `Mesh`, the devices in a grid with named axes, and for
each array a `PartitionSpec`: per dimension, the mesh axis that splits it (None: every device
holds all of it). XLA then partitions a jitted program to match, adding the communication
(GSPMD). NNX adds only metadata to this: a Variable's `out_sharding` (one entry per dimension,
`(None, 'model')`), which an initializer wrapped in `with_partitioning` passes on. With a mesh
set (`with jax.set_mesh(mesh):`), a Variable is laid out by it as it is created (variables.py:
`shard_eagerly`), inside `jit` as well as outside. This file reads the metadata back as
PartitionSpecs and NamedShardings, for `jit`'s `in_shardings`/`out_shardings`, a sharding
constraint or a checkpoint's restore target.
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

def _spec_of(variable):
    """A Variable's PartitionSpec: its `out_sharding`, P() (replicated) if it has none, None if
    its value is not an array."""
    sharding = variable.get_metadata("out_sharding", None)
    if sharding:
        return PartitionSpec(*sharding)
    if hasattr(variable, "shape"):
        return PartitionSpec()
    return None

def get_partition_spec(tree):
    """`tree` (a State, a Module, any pytree) with each Variable's value replaced by its
    PartitionSpec, and each bare array by P(); other leaves become None."""
    def spec(x):
        if isinstance(x, Variable):
            return x.replace(_spec_of(x))
        if hasattr(x, "shape"):
            return PartitionSpec()
        return None
    return jax.tree.map(spec, tree, is_leaf=lambda x: isinstance(x, Variable))

def get_named_sharding(tree, mesh):
    """Like `get_partition_spec`, with each PartitionSpec placed on `mesh` as a NamedSharding."""
    specs = get_partition_spec(tree)
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs)
