"""tabulate: a model summary table, like `torchinfo.summary` or Keras's `model.summary()`.

`print(minnx.tabulate(model, x))` calls the model once on abstract inputs (`eval_shape`: no
arithmetic is done and the model does not change) and lists every Module it called, in call
order: its path, its type, the shapes of its inputs and outputs, and how many numbers (and
bytes) of each Variable type it holds, its submodules included. flax's `nnx.tabulate` draws
the same table with `rich`; this one is plain text.
"""
import inspect
import itertools
from typing import NamedTuple

import jax

from .graph import clone, iter_graph
from .module import Module
from .transforms import eval_shape
from .variables import RngState, Variable


class Row(NamedTuple):
    """One call of one Module: what a row of the table shows."""
    path: tuple
    type: type
    inputs: str
    outputs: str
    stats: dict  # Variable type -> (number of values, bytes), the Module and its submodules


def _describe(tree) -> str:
    """`float32[4,2]` for an array, a comma-separated list for several."""
    def one(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return f"{x.dtype}[{','.join(map(str, x.shape))}]"
        return f"{type(x).__name__}(...)" if isinstance(x, Module) else repr(x)
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, Module))
    return ", ".join(one(x) for x in leaves)


def _bytes(n: int) -> str:
    """Bytes as flax writes them: 768 B, 17.9 KB, 3.2 MB, 1.1 GB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n > size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} B"


def _size(stats) -> str:
    return f"{stats[0]:,} ({_bytes(stats[1])})" if stats else ""


def _stats_by_module(obj):
    """{path of each Module: {Variable type: (count, bytes)}}, each Variable counted once, at
    the first path it is met on; the RngKey/RngCount types are counted together as RngState."""
    paths = [path for path, node in iter_graph(obj) if isinstance(node, Module)]
    stats = {path: {} for path in paths}
    for path, node in iter_graph(obj):
        if not isinstance(node, Variable):
            continue
        kind = RngState if isinstance(node, RngState) else type(node)
        value = node.get_value()
        count = int(value.size)
        size = count * value.dtype.itemsize
        for owner in (p for p in paths if path[:len(p)] == p):
            before = stats[owner].get(kind, (0, 0))
            stats[owner][kind] = (before[0] + count, before[1] + size)
    return stats


def _methods(cls):
    """The methods flax's tabulate watches: `__call__` and every public one."""
    return [name for name, _ in inspect.getmembers(cls, inspect.isfunction)
            if name == "__call__" or not name.startswith("_")]


def _record_calls(obj, method, args, kwargs):
    """Call `obj.method(*args, **kwargs)` under `eval_shape`, with the methods of every Module
    class wrapped to note (path, owner's path, type, inputs, outputs) of each call. A method
    other than `__call__` adds its name to the path."""
    classes = {type(node) for _, node in iter_graph(obj) if isinstance(node, Module)}
    saved = {(cls, name): cls.__dict__.get(name) for cls in classes for name in _methods(cls)}
    calls, seen, paths, counter = [], set(), {}, itertools.count()

    def wrap(original, name):
        def recording(module, *a, **kw):
            order = next(counter)  # rows are listed in the order calls start...
            out = original(module, *a, **kw)
            inputs = _describe((a, kw))
            if (id(module), inputs) not in seen:  # ...and kept once per object and input shapes,
                seen.add((id(module), inputs))     # the first to finish winning (as in flax)
                path = paths[id(module)] + ((name,) if name != "__call__" else ())
                calls.append((order, path, paths[id(module)], type(module), inputs, _describe(out)))
            return out
        return recording

    def run(root, *a, **kw):
        paths.update({id(node): path for path, node in iter_graph(root)})
        paths[id(root)] = ()
        return getattr(root, method)(*a, **kw)

    try:
        for cls, name in saved:
            setattr(cls, name, wrap(getattr(cls, name), name))
        eval_shape(run, obj, *args, **kwargs)
    finally:
        for (cls, name), original in saved.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
    return [call[1:] for call in sorted(calls)]


def tabulate(obj, *input_args, depth=None, method="__call__", row_filter=None,
             table_kwargs=None, column_kwargs=None, console_kwargs=None, compute_flops=False,
             compute_vjp_flops=False, **input_kwargs) -> str:
    """A summary table of `obj` called on `input_args`, as a string: `print(tabulate(model, x))`.
    `depth` keeps rows at most that deep; `row_filter(row) -> bool` keeps the rows it accepts.
    `table_kwargs`, `column_kwargs` and `console_kwargs` style flax's `rich` table and are
    ignored here."""
    if compute_flops or compute_vjp_flops:
        raise NotImplementedError(
            "minnx.tabulate does not count FLOPs. Leave compute_flops and compute_vjp_flops False, or "
            "read `jax.jit(f).lower(*args).compile().cost_analysis()` for the compiled function.")
    if not isinstance(obj, Module):
        raise ValueError(f"minnx.tabulate expected a Module to summarize, got {type(obj).__name__}: "
                         "pass the model itself, then its inputs: tabulate(model, x).")
    obj = clone(obj)
    stats = _stats_by_module(obj)
    rows = []
    for path, owner, kind, inputs, outputs in _record_calls(obj, method, input_args, input_kwargs):
        row = Row(path, kind, inputs, outputs, stats[owner])
        if (depth is None or len(path) <= depth) and (row_filter is None or row_filter(row)):
            rows.append(row)
    return _render(obj, rows, stats[()])


def _render(obj, rows, totals) -> str:
    kinds = sorted(totals, key=lambda t: t.__name__)
    header = ["path", "type", "inputs", "outputs", *(k.__name__ for k in kinds)]
    body = [["/".join(map(str, r.path)), r.type.__name__, r.inputs, r.outputs,
             *(_size(r.stats.get(k)) for k in kinds)] for r in rows]
    footer = ["", "", "", "Total", *(_size(totals[k]) for k in kinds)]
    widths = [max(len(line[i]) for line in [header, *body, footer]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    count = sum(c for c, _ in totals.values())
    size = sum(b for _, b in totals.values())
    table = [f"{type(obj).__name__} Summary", line(header), rule, *map(line, body), rule, line(footer)]
    return "\n".join(table + ["", f"Total Parameters: {count:,} ({_bytes(size)})"])
