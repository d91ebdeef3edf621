"""display and repr: a Module printed as a tree, with its state counted.

Each Module's first line sums its Variables by type, e.g.
`MLP( # Param: 165 (660 B), BatchStat: 32 (128 B), Total: ...`, and each array is
summarised as in the slides: dtype, shape, mean, standard deviation, range.
"""
import jax
import numpy as np

from .variables import RngState, Variable

_MAX_FULL = 8   # arrays with at most this many numbers are printed in full


def _array_summary(x):
    if not hasattr(x, "shape"):
        return repr(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return f"<jax.Array key{x.shape}>"
    shape = ", ".join(map(str, x.shape)) + ("," if len(x.shape) == 1 else "")
    head = f"{x.dtype}({shape})"
    if isinstance(x, jax.core.Tracer):
        return f"<traced {head}>"
    a = np.asarray(x)
    if a.size <= _MAX_FULL or not np.issubdtype(a.dtype, np.number):
        text = np.array2string(a, precision=3, separator=", ", max_line_width=10**6)
        return f"<{head} {text.replace(chr(10), '')}>"
    a = a.astype(np.float64)
    return (f"<{head} ≈{a.mean():.2g} ±{a.std():.2g} [≥{a.min():.2g}, ≤{a.max():.2g}]"
            f" nonzero:{np.count_nonzero(a)}>")


def count_state(node):
    """`{'Param': (numbers, bytes), ...}` for all Variables in the graph, each once."""
    from .graph import flatten
    counts = {}
    for _, leaf in flatten(node)[1]:
        name = "RngState" if isinstance(leaf, RngState) else type(leaf).__name__
        for x in jax.tree.leaves(leaf.get_value() if isinstance(leaf, Variable) else leaf):
            key = jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)  # a threefry key is two uint32
            n, b = counts.get(name, (0, 0))
            counts[name] = (n + x.size, b + x.size * (8 if key else np.dtype(x.dtype).itemsize))
    return counts


def _fmt_bytes(b):
    for unit in ("B", "KB", "MB", "GB"):
        if b < 1000 or unit == "GB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1000


def _count_comment(counts):
    if len(counts) > 1:
        counts = {**counts, "Total": tuple(map(sum, zip(*counts.values())))}
    return " # " + ", ".join(f"{k}: {n:,} ({_fmt_bytes(b)})" for k, (n, b) in counts.items()) if counts else ""


def variable_repr(v):
    meta = "".join(f", {k}={val!r}" for k, val in v._meta.items())
    return f"{type(v).__name__}(value={_array_summary(v.get_value())}{meta})"


def object_repr(obj):
    from .module import Object, _TRACE_FLAG
    seen = set()

    def rep(x, indent):
        if isinstance(x, Variable):
            return variable_repr(x)
        if not isinstance(x, Object):
            if hasattr(x, "shape") and hasattr(x, "dtype"):
                return _array_summary(x)
            if isinstance(x, type) and hasattr(x, "dtype"):
                return np.dtype(x).name  # jnp.float32 and friends
            if callable(x) and hasattr(x, "__name__"):
                return f"<{type(x).__name__} {x.__name__}>"
            return repr(x)
        if id(x) in seen:
            return f"<the same {type(x).__name__} as above>"
        seen.add(id(x))
        lines = [f"{type(x).__name__}({_count_comment(count_state(x))}"]
        # attributes in the order __init__ set them (as flax prints them); List items by index
        items = vars(x).items() if type(x)._graph_items is Object._graph_items else x._graph_items()
        for key, value in ((k, v) for k, v in items if k != _TRACE_FLAG):
            name = f"{key}=" if isinstance(key, str) else f"[{key}]: "
            lines.append(f"{indent}  {name}{rep(value, indent + '  ')},")
        return "\n".join(lines) + f"\n{indent})"

    return rep(obj, "")


def state_repr(state):
    from .state import State

    def rep(node, indent):
        if not isinstance(node, State):
            return variable_repr(node) if isinstance(node, Variable) else _array_summary(node)
        if not len(node):
            return "{}"
        inner = ",\n".join(f"{indent}  {k!r}: {rep(v, indent + '  ')}" for k, v in node.items())
        return "{\n" + inner + f"\n{indent}}}"

    return f"State({rep(state, '')})"


def display(*nodes):
    """Show nodes: an interactive treescope view in a notebook when treescope is
    installed, else the text tree that `print` gives."""
    try:
        import IPython
        import treescope
        show = treescope.display if "IPKernelApp" in IPython.get_ipython().config else print
    except Exception:  # no IPython, no treescope, or not in a notebook kernel
        show = print
    for node in nodes:
        show(node)
