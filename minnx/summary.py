"""tabulate: a model summary table, like `torchinfo.summary` or Keras's `model.summary()`.

`print(minnx.tabulate(model, x))` calls the model on abstract inputs (`eval_shape`) and lists each
Module called: path, type, input and output shapes, numbers (and bytes) of each Variable type.
"""
import inspect
from typing import NamedTuple

import jax

from .graph import clone, iter_graph
from .module import Module
from .objects import count_variables, size_text
from .transforms import eval_shape

class Row(NamedTuple):  # one call of one Module; `stats`: Variable type -> (numbers, bytes)
    path: tuple
    type: type
    inputs: str
    outputs: str
    stats: dict

def _describe(tree):  # `float32[4,2]` for an array, a comma-separated list for several
    def one(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return f"{x.dtype}[{','.join(map(str, x.shape))}]"
        return f"{type(x).__name__}(...)" if isinstance(x, Module) else repr(x)
    return ", ".join(one(x) for x in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, Module)))

def _record_calls(obj, method, args, kwargs, stats):
    """The Rows of `obj.method(...)` under `eval_shape`, each Module's public methods wrapped."""
    classes = {type(node) for _, node in iter_graph(obj) if isinstance(node, Module)}
    saved = {(cls, name): cls.__dict__.get(name) for cls in classes
             for name, _ in inspect.getmembers(cls, inspect.isfunction)
             if name == "__call__" or not name.startswith("_")}
    calls = []
    seen = set()
    paths = {}

    def recording(original, name):
        def method(module, *a, **kw):
            call = []
            calls.append(call)  # rows are listed in the order calls start...
            out = original(module, *a, **kw)
            inputs = _describe((a, kw))  # ...once per object and inputs, the first to finish
            if (id(module), inputs) not in seen:  # winning (as in flax)
                seen.add((id(module), inputs))
                owner = paths[id(module)]
                path = owner if name == "__call__" else (*owner, name)
                call.append(Row(path, type(module), inputs, _describe(out), stats[owner]))
            return out
        return method

    def run(root, *a, **kw):  # inside eval_shape the Modules are new objects: find their paths
        paths.update({id(node): path for path, node in iter_graph(root)})
        return getattr(root, method)(*a, **kw)
    try:
        for cls, name in saved:
            setattr(cls, name, recording(getattr(cls, name), name))
        eval_shape(run, obj, *args, **kwargs)
    finally:
        for (cls, name), original in saved.items():
            delattr(cls, name)
            if original is not None:
                setattr(cls, name, original)
    return [call[0] for call in calls if call]

def tabulate(obj, *input_args, depth=None, method="__call__", row_filter=None,
             table_kwargs=None, column_kwargs=None, console_kwargs=None, compute_flops=False,
             compute_vjp_flops=False, **input_kwargs) -> str:
    """A summary table of `obj` called on `input_args`: `print(tabulate(model, x))`. `depth` and
    `row_filter(row) -> bool` choose rows; the `*_kwargs` style flax's table: ignored here."""
    if compute_flops or compute_vjp_flops:
        raise NotImplementedError("minnx.tabulate does not count FLOPs: leave compute_flops False"
                                  " (or read jax.jit(f).lower(*args).compile().cost_analysis()).")
    if not isinstance(obj, Module):
        raise ValueError(f"minnx.tabulate expected a Module to summarize, got "
                         f"{type(obj).__name__}: write tabulate(model, x).")
    obj = clone(obj)
    stats = {path: count_variables(x) for path, x in iter_graph(obj) if isinstance(x, Module)}
    rows = _record_calls(obj, method, input_args, input_kwargs, stats)
    rows = [r for r in rows if depth is None or len(r.path) <= depth]
    rows = [r for r in rows if row_filter is None or row_filter(r)]
    kinds = sorted(stats[()])
    table = [["path", "type", "inputs", "outputs", *kinds]]
    for r in rows:
        sizes = [size_text(*r.stats[k]) if k in r.stats else "" for k in kinds]
        table.append(["/".join(map(str, r.path)), r.type.__name__, r.inputs, r.outputs, *sizes])
    table.append(["", "", "", "Total", *(size_text(*stats[()][k]) for k in kinds)])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    rule = "  ".join("-" * w for w in widths)
    numbers = sum(n for n, _ in stats[()].values())
    total = size_text(numbers, sum(b for _, b in stats[()].values()))
    lines = [f"{type(obj).__name__} Summary", text[0], rule, *text[1:-1], rule, text[-1]]
    return "\n".join([*lines, "", f"Total Parameters: {total}"])
