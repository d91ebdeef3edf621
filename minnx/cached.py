"""cached_partial: bind the graph nodes a jitted step is always called with.

flax's `nnx.jit` walks every Module argument on every call, and `nnx.cached_partial(step, model,
optimizer)` caches that walk. `minnx.jit` already reuses its last walk while no graph structure
has changed (its fast path, see `lift.py`), so here `cached_partial` only binds the arguments:
`cached_step = cached_partial(train_step, model, optimizer)`, then `cached_step(x, y)`. State
still flows back into `model` and `optimizer`, as in flax.
"""
import functools


def cached_partial(f, *cached_args, graph=None, graph_updates=None):
    """`f` with its first arguments fixed to `cached_args` (graph nodes, usually)."""
    if graph is False or graph_updates is False:
        raise ValueError("cached_partial is a graph-mode-only API and requires graph_updates=True.")
    if not callable(f):
        raise TypeError(f"minnx.cached_partial expected a function (a jitted step) first, got "
                        f"{type(f).__name__}: write cached_partial(train_step, model, optimizer).")

    @functools.wraps(f)
    def cached(*args, **kwargs):
        return f(*cached_args, *args, **kwargs)
    return cached
