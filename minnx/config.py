"""Graph mode or tree mode: the two switches every NNX API reads.

flax 0.12 can treat a model two ways. In *graph mode* (the default) a model is a Python object
graph: two attributes may hold the same layer, and a transform carries structure changes (a new
attribute, a sown value) back out. In *tree mode* a model must be a tree, like any JAX pytree:
shared references are an error and transforms only carry Variable values out. flax plans tree
mode as the future default (its FLIP 5310). `set_graph_mode(False)` switches from now on,
`with set_graph_mode(False):` inside the block, `@set_graph_mode(False)` while the decorated
function runs; `set_graph_updates` likewise says whether transforms carry structure changes out.
The environment variables NNX_GRAPH_MODE and NNX_GRAPH_UPDATES set the defaults at import.
"""
import functools
import os


def _env_flag(name):
    text = os.environ.get(name, "true").lower()
    if text not in ("y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"):
        raise ValueError(f"invalid truth value {text!r} for environment variable {name!r}")
    return text in ("y", "yes", "t", "true", "on", "1")


class _Switch:
    """Calling sets the value; `with` puts the previous one back at the end of the block; as a
    decorator the value holds only while the function runs."""

    def __init__(self, value, /):
        self.previous = type(self).value
        self.new = value
        type(self).value = value

    @classmethod
    def current_value(cls):
        return cls.value

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        type(self).value = self.previous

    def __call__(self, f):
        type(self).value = self.previous

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            with type(self)(self.new):
                return f(*args, **kwargs)
        return wrapper


class set_graph_mode(_Switch):
    """True: models are object graphs (shared references allowed). False: tree mode."""
    value = _env_flag("NNX_GRAPH_MODE")


class set_graph_updates(_Switch):
    """True: transforms carry structure changes (new attributes, sown values) out."""
    value = _env_flag("NNX_GRAPH_UPDATES")


def graph_mode(graph):
    """The `graph=` argument of a call, or the current setting when it is None."""
    return set_graph_mode.current_value() if graph is None else graph


def graph_updates_mode(graph_updates):
    return set_graph_updates.current_value() if graph_updates is None else graph_updates
