"""minnx: a compact reference implementation of the flax.nnx API, on public JAX APIs.

Read it in this order: variables.py (Variable), module.py (Module), state.py and
graph.py (split/merge), rngs.py, filters.py, transforms.py, then the layers in nn/.
`import minnx as nnx` and the code of flax's NNX guides runs unchanged.
"""
from jax.nn import initializers  # noqa: F401  (flax: nnx.initializers)

from .containers import Dict, List
from .display import display
from .filters import All, Any, Everything, Not, Nothing, OfType, PathContains, WithTag, to_predicate
from .graph import (GraphDef, clone, flatten, graphdef, is_graph_node, iter_graph, merge, pop, split,
                    state, unflatten, update)
from .module import Module, Object, data, iter_children, iter_modules
from .nn import initializers  # noqa: F811
from .nn.activations import *  # noqa: F401,F403
from .nn.linear import Linear
from .nn.normalization import BatchNorm
from .nn.sequential import Sequential
from .nn.stochastic import Dropout
from .rngs import RngStream, Rngs, reseed, restore_rngs, split_rngs
from .state import State, as_pure, filter_state, merge_state, pure, split_state, to_pure_dict
from . import metrics
from .metrics import MultiMetric
from .optimizer import OptArray, Optimizer, OptState, OptVariable
from .transforms import (Carry, DiffState, cond, eval_shape, fori_loop, grad, jit, remat, scan, switch,
                         value_and_grad, vmap, while_loop)
from .variables import (BatchStat, Cache, Intermediate, MutationLostError, Param, RngCount,
                        RngKey, RngState, Variable)

Pytree = Object
