"""tabulate: a model summary table, like `torchinfo.summary` or Keras's `model.summary()`.

`print(minnx.tabulate(model, x))` calls the model once on abstract inputs (`eval_shape`: nothing
is computed or changed) and lists every Module it called, in call order: its path, type, input
and output shapes, and how many numbers (and bytes) of each Variable type it holds, submodules
included. flax's `nnx.tabulate` draws the same table with `rich`; this one is plain text.
"""
import inspect
import itertools
from typing import NamedTuple

import jax

from .graph import clone, iter_graph
from .module import Module
from .objects import count_variables, size_text
from .transforms import eval_shape

class Row(NamedTuple):
    """One call of one Module: what a row of the table shows."""
    path: tuple
    type: type
    inputs: str
    outputs: str
    stats: dict  # Variable type name -> (number of values, bytes), submodules included

def _describe(tree):
    """`float32[4,2]` for an array, a comma-separated list for several."""
    def one(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return f"{x.dtype}[{','.join(map(str, x.shape))}]"
        return f"{type(x).__name__}(...)" if isinstance(x, Module) else repr(x)
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, Module))
    return ", ".join(one(x) for x in leaves)

def _record_calls(obj, method, args, kwargs):
    """Call `obj.method(*args, **kwargs)` under `eval_shape`, with `__call__` and the public
    methods of every Module class wrapped to note `(path, owner's path, type, inputs, outputs)`
    of each call. A method other than `__call__` adds its name to the path."""
    classes = {type(node) for _, node in iter_graph(obj) if isinstance(node, Module)}
    saved = {}
    for cls in classes:
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            if name == "__call__" or not name.startswith("_"):
                saved[cls, name] = cls.__dict__.get(name)
    calls = []
    seen = set()
    paths = {}
    counter = itertools.count()

    def wrap(original, name):
        def recording(module, *a, **kw):
            order = next(counter)  # rows are listed in the order calls start...
            out = original(module, *a, **kw)
            inputs = _describe((a, kw))
            if (id(module), inputs) not in seen:  # ...once per object and input shapes, the
                seen.add((id(module), inputs))     # first call to finish winning (as in flax)
                owner = paths[id(module)]
                path = owner if name == "__call__" else (*owner, name)
                calls.append((order, path, owner, type(module), inputs, _describe(out)))
            return out
        return recording

    def run(root, *a, **kw):  # inside eval_shape the Modules are new objects: find their paths
        paths.update({id(node): path for path, node in iter_graph(root)})
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
    `table_kwargs`, `column_kwargs` and `console_kwargs` style flax's table: ignored here."""
    if compute_flops or compute_vjp_flops:
        raise NotImplementedError("minnx.tabulate does not count FLOPs: leave compute_flops and "
                                  "compute_vjp_flops False (or read jax.jit(f).lower(*args)"
                                  ".compile().cost_analysis()).")
    if not isinstance(obj, Module):
        raise ValueError(f"minnx.tabulate expected a Module to summarize, got "
                         f"{type(obj).__name__}: write tabulate(model, x).")
    obj = clone(obj)
    stats = {path: count_variables(node) for path, node in iter_graph(obj)
             if isinstance(node, Module)}
    rows = []
    for path, owner, kind, inputs, outputs in _record_calls(obj, method, input_args, input_kwargs):
        row = Row(path, kind, inputs, outputs, stats[owner])
        if (depth is None or len(path) <= depth) and (row_filter is None or row_filter(row)):
            rows.append(row)
    return _render(type(obj).__name__, rows, stats[()])

def _render(title, rows, totals):
    """The table as text: columns padded to their widest cell, a rule under the header."""
    kinds = sorted(totals)
    header = ["path", "type", "inputs", "outputs", *kinds]
    body = [["/".join(map(str, r.path)), r.type.__name__, r.inputs, r.outputs,
             *(size_text(*r.stats[k]) if k in r.stats else "" for k in kinds)] for r in rows]
    footer = ["", "", "", "Total", *(size_text(*totals[k]) for k in kinds)]
    widths = [max(len(line[i]) for line in [header, *body, footer]) for i in range(len(header))]
    lines = [[c.ljust(w) for c, w in zip(line, widths)] for line in [header, *body, footer]]
    text = ["  ".join(line).rstrip() for line in lines]
    rule = "  ".join("-" * w for w in widths)
    numbers = sum(n for n, _ in totals.values())
    size = sum(b for _, b in totals.values())
    table = [f"{title} Summary", text[0], rule, *text[1:-1], rule, text[-1]]
    return "\n".join([*table, "", f"Total Parameters: {size_text(numbers, size)}"])
