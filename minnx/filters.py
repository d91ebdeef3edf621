"""Filters: small predicates that pick pieces of state by path and value.

A Variable type, a tag, `...`/True, None/False, All/Any/Not/PathContains/OfType/WithTag, a list,
or a function `(path, value) -> bool`; `to_predicate` makes a function of each.
"""
import dataclasses

class FilterError(TypeError, ValueError):
    """An argument that is not a filter (TypeError; flax's own message fails as a ValueError)."""

def to_predicate(filter):
    """Any filter form -> a function `(path, value) -> bool`."""
    if isinstance(filter, str):
        return WithTag(filter)
    if isinstance(filter, type):
        return OfType(filter)
    if filter is True or filter is Ellipsis:
        return Everything()
    if filter is False or filter is None:
        return Nothing()
    if callable(filter):
        return filter
    if isinstance(filter, (list, tuple)):
        return Any(*filter)
    raise FilterError(f"minnx: {filter!r} (a {type(filter).__name__}) is not a filter. A filter "
                      "is a Variable type (minnx.Param), a tag, `...`, True/False/None, a list of "
                      "filters, minnx.All/Any/Not/OfType/..., or a function (path, value) -> bool.")

def filters_to_predicates(filters):
    """Several filters, as split takes them; `...` (or True) may only come last."""
    for i, f in enumerate(filters):
        if (f is Ellipsis or f is True) and any(g is not Ellipsis and g is not True
                                                for g in filters[i + 1:]):
            raise ValueError(f"`...` or `True` can only be used as the last filters, got {f} at "
                             f"index {i}: the filters after it get nothing. Move it to the end.")
    return tuple(to_predicate(f) for f in filters)

@dataclasses.dataclass(frozen=True)
class OfType:
    """Variables (or nodes) of this type or a subclass."""
    type: type

    def __call__(self, path, x):
        return isinstance(x, self.type)

@dataclasses.dataclass(frozen=True)
class WithTag:
    """Values whose `tag` attribute equals `tag` (an RngStream's name, say)."""
    tag: str

    def __call__(self, path, x):
        return hasattr(x, "tag") and x.tag == self.tag

@dataclasses.dataclass(frozen=True)
class PathContains:
    """Values whose path contains `key`; with `exact=False`, any part containing it as text."""
    key: object
    exact: bool = True

    def __call__(self, path, x):
        if self.exact:
            return self.key in path
        return any(str(self.key) in str(part) for part in path)

@dataclasses.dataclass(frozen=True, init=False)
class Any:
    """True when any of the filters is."""
    predicates: tuple

    def __init__(self, *filters):
        object.__setattr__(self, "predicates", tuple(to_predicate(f) for f in filters))
    def __call__(self, path, x):
        return any(predicate(path, x) for predicate in self.predicates)

@dataclasses.dataclass(frozen=True, init=False)
class All:
    """True when all of the filters are."""
    predicates: tuple

    def __init__(self, *filters):
        object.__setattr__(self, "predicates", tuple(to_predicate(f) for f in filters))
    def __call__(self, path, x):
        return all(predicate(path, x) for predicate in self.predicates)

@dataclasses.dataclass(frozen=True)
class Not:
    """True when the filter is not."""
    filter: object

    def __call__(self, path, x):
        return not to_predicate(self.filter)(path, x)

@dataclasses.dataclass(frozen=True)
class Everything:
    def __call__(self, path, x):
        return True

@dataclasses.dataclass(frozen=True)
class Nothing:
    def __call__(self, path, x):
        return False
