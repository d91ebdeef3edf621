"""Views and captures: flax 0.12's functional forms of `train()`/`eval()` and of `sow`.

`view(model, deterministic=True)`: a new model sharing the Variables, settings changed by
`set_view`; `capture(model, Intermediate)(x)` -> `(output, State of what it sowed)`.
"""
import functools
import inspect

from .filters import to_predicate
from .graph import clone
from .module import Module, iter_modules
from .objects import data
from .state import State, split_state

def view(node, /, *, only=..., raise_if_not_found=True, graph=None, **settings):
    """A copy of `node` (sharing its Variables) with `settings` applied through `set_view`."""
    copy = clone(node, variables=False, graph=graph)
    predicate = to_predicate(only)
    unused = set(settings)
    for path, module in iter_modules(copy, graph=graph):
        if not (hasattr(module, "set_view") and predicate(path, module)):
            continue
        accepted = inspect.signature(module.set_view).parameters
        module.set_view(**{k: v for k, v in settings.items() if k in accepted})
        unused -= set(accepted)
    if raise_if_not_found and unused:
        raise ValueError(f"Unused keys found in nnx.view: {sorted(unused)} (no selected layer has "
                         "a setting of that name).")
    return copy

def capture(fn, *var_types, init=None, method_outputs=None):
    """`capture(fn, Intermediate)(*args)` -> `(fn(*args), State of what was sown)`."""
    if isinstance(fn, type):  # capture(Intermediate)(model): the types come first
        types = (fn, *var_types)
        def decorator(actual_fn):
            return capture(actual_fn, *types, init=init, method_outputs=method_outputs)
        return decorator
    if method_outputs is not None:
        raise ValueError("minnx.capture does not support method_outputs; sow the outputs you "
                         "need inside the methods.")
    owner = fn if isinstance(fn, Module) else getattr(fn, "__self__", None)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        module = owner if isinstance(owner, Module) else args[0]
        start = dict((init or State()).flat_state())
        modules = list(iter_modules(module))
        for path, m in modules:
            boxes = {t: {} for t in var_types}
            for (*where, name), variable in start.items():
                if tuple(where) == path:
                    boxes.setdefault(type(variable), {})[name] = variable.get_value()
            m.__captures__ = data(tuple(t(values) for t, values in boxes.items()))
        try:
            result = fn(*args, **kwargs)
        finally:
            captured = []
            for path, m in modules:
                for box in vars(m).get("__captures__", ()):
                    if type(box) in var_types:
                        captured += [((*path, k), type(box)(v)) for k, v in box.get_value().items()]
                if "__captures__" in vars(m):
                    del m.__captures__
        if not var_types:
            return result
        states = split_state(State.from_flat_path(captured), *var_types)
        return (result, states) if len(var_types) == 1 else (result, *states)
    return wrapper
