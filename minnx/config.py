"""Graph mode or tree mode: the two switches every NNX API reads.

flax 0.12 can treat a model two ways. In *graph mode* (the default) a model is a Python object
graph: two attributes may hold the same layer, and a transform carries structure changes (a new
attribute, a sown value) back out. In *tree mode* a model must be a tree, like any JAX pytree:
shared references are an error and transforms only carry Variable values out. flax plans tree
mode as the future default (its FLIP 5310). `set_graph_mode(False)` switches from now on;
`with set_graph_mode(False):` inside the block; `@set_graph_mode(False)` while the decorated
function runs. `set_graph_updates` likewise says whether transforms carry structure changes out.
The environment variables NNX_GRAPH_MODE and NNX_GRAPH_UPDATES set the defaults at import.
"""
import functools
import os

def _env_flag(name, default):
    text = os.environ.get(name, str(default)).lower()
    if text not in ("y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"):
        raise ValueError(f"invalid truth value {text!r} for environment variable {name!r}")
    return text in ("y", "yes", "t", "true", "on", "1")

class _Switch:
    """A setting kept on a stack: calling sets it, `with` restores the previous value at the end
    of the block, and as a decorator it holds the value while the function runs."""

    def __init__(self, value, /):
        self.previous = self.stack[-1] if self.stack else None
        if self.stack:
            self.stack[-1] = value
        else:
            self.stack.append(value)
        self.value = value

    @classmethod
    def current_value(cls):
        return cls.stack[-1] if cls.stack else cls.default

    def __enter__(self):
        if self.previous is not None:
            self.stack.insert(-1, self.previous)

    def __exit__(self, *exc):
        self.stack.pop()

    def __call__(self, f):
        self.stack.pop()  # used as a decorator: undo the setting __init__ made
        if self.previous is not None:
            self.stack.append(self.previous)

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            self.stack.append(self.value)
            try:
                return f(*args, **kwargs)
            finally:
                self.stack.pop()
        return wrapper

class set_graph_mode(_Switch):
    """True: models are object graphs (shared references allowed). False: tree mode."""
    default = _env_flag("NNX_GRAPH_MODE", True)
    stack = []

class set_graph_updates(_Switch):
    """True: transforms carry structure changes (new attributes, sown values) out."""
    default = _env_flag("NNX_GRAPH_UPDATES", True)
    stack = []

def graph_mode(graph):
    """The `graph=` argument of a call, or the current setting when it is None."""
    return set_graph_mode.current_value() if graph is None else graph

def graph_updates_mode(graph_updates):
    return set_graph_updates.current_value() if graph_updates is None else graph_updates
