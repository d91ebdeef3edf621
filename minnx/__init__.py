"""minnx: a compact reference implementation of the flax.nnx API, on public JAX APIs.

`import minnx as nnx` and the code of flax's NNX guides runs unchanged. Read it in this order:
variables, module, state, graph, filters, rngs, containers, lift, transforms, then nn/.
"""
from .containers import Dict, List
from .display import display
from .filters import All, Any, Everything, Not, Nothing, OfType, PathContains, WithTag, to_predicate
from .graph import (GraphDef, clone, flatten, graphdef, is_graph_node, iter_graph, merge, pop, split,
                    state, unflatten, update)
from .module import Module, Object, data, iter_children, iter_modules
from .nn import initializers
from .nn.activations import *  # noqa: F401,F403
from .nn.attention import MultiHeadAttention, combine_masks, dot_product_attention, make_attention_mask, make_causal_mask
from .nn.conv import Conv, ConvTranspose
from .nn.embed import Embed
from .nn.linear import Linear, LinearGeneral
from .nn.normalization import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from .nn.pooling import avg_pool, max_pool, min_pool, pool
from .nn.recurrent import GRUCell, LSTMCell, RNN
from .nn.sequential import Sequential
from .nn.stochastic import Dropout
from .rngs import RngStream, Rngs, reseed, restore_rngs, split_rngs
from .cached import cached_partial
from .ema import EMA
from .summary import tabulate
from .state import State, as_pure, filter_state, merge_state, pure, split_state, to_pure_dict
from . import metrics
from .metrics import MultiMetric
from .optimizer import OptArray, Optimizer, OptState, OptVariable
from .transforms import (Carry, DiffState, cond, eval_shape, fori_loop, grad, jit, remat, scan, switch,
                         value_and_grad, vmap, while_loop)
from .variables import (BatchStat, Cache, Intermediate, MutationLostError, Param, RngCount,
                        RngKey, RngState, Variable)

Pytree = Object
