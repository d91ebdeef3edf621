"""Graph mode or tree mode: the two switches every NNX API reads.

Graph mode (the default): layers may be shared and transforms carry structure changes out; tree
mode: a tree, and only Variable values come out (FLIP 5310). Env: NNX_GRAPH_MODE/_UPDATES.
"""
import functools
import os

def _env_flag(name):
    text = os.environ.get(name, "true").lower()
    if text not in ("y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"):
        raise ValueError(f"invalid truth value {text!r} for environment variable {name!r}")
    return text in ("y", "yes", "t", "true", "on", "1")

class _Switch:
    """Calling sets the value; `with` restores the previous one after the block."""
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

def graph_mode(graph):  # the `graph=` argument of a call, or the current setting if None
    return set_graph_mode.current_value() if graph is None else graph
def graph_updates_mode(graph_updates):
    return set_graph_updates.current_value() if graph_updates is None else graph_updates
