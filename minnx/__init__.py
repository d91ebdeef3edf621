"""minnx: a compact reference implementation of the flax.nnx API, on public JAX APIs.

`import minnx as nnx` runs flax's NNX code unchanged. Read it in this order: config, filters,
variables, objects, state, graph, module, containers, views, rngs, display, lift, transforms,
optimizer, metrics, sharding, then nn/ (fastpath.py, an optimisation of `jit`, can wait).
"""
from . import metrics
from .config import set_graph_mode, set_graph_updates
from .containers import Dict, List
from .display import display
from .filters import All, Any, Everything, Not, Nothing, OfType, PathContains, WithTag, to_predicate
from .graph import (GraphDef, clone, flatten, graphdef, is_graph_node, iter_children, iter_graph,
                    merge, pop, set_metadata, split, state, unflatten, update)
from .metrics import MultiMetric
from .module import Module, iter_modules
from .nn import initializers
from .nn.activations import (celu, elu, gelu, glu, hard_sigmoid, hard_silu, hard_swish, hard_tanh,
                             leaky_relu, log_sigmoid, log_softmax, logsumexp, one_hot, relu, relu6,
                             selu, sigmoid, silu, soft_sign, softmax, softplus, standardize, swish,
                             tanh)
from .nn.attention import (MultiHeadAttention, combine_masks, dot_product_attention,
                           make_attention_mask, make_causal_mask)
from .nn.conv import Conv, ConvTranspose
from .nn.embed import Embed
from .nn.linear import Linear, LinearGeneral
from .nn.normalization import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from .nn.pooling import avg_pool, max_pool, min_pool, pool
from .nn.recurrent import RNN, GRUCell, LSTMCell
from .nn.sequential import Sequential
from .nn.stochastic import Dropout
from .objects import Object, Pytree, data, dataclass, has_data, is_data, register_data_type, static
from .ema import EMA
from .optimizer import OptArray, Optimizer, OptState, OptVariable
from .rngs import RngStream, Rngs, reseed, restore_rngs, split_rngs
from .sharding import get_named_sharding, get_partition_spec, with_partitioning
from .state import State, as_pure, filter_state, merge_state, pure, split_state, to_pure_dict
from .transforms import (Carry, DiffState, cached_partial, cond, eval_shape, fori_loop, grad, jit,
                         remat, scan, switch, value_and_grad, vmap, while_loop)
from .variables import (BatchStat, Cache, Intermediate, Param, Perturbation, RngCount, RngKey,
                        RngState, TraceContextError, Variable, VariableMetadata)
from .views import capture, view
