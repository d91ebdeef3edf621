"""Filters: small predicates that pick pieces of state by path and value.

Wherever the API takes a filter (`split`, `state`, `pop`, `DiffState`, `Optimizer(wrt=...)`), it
accepts a Variable type (`Param`, subclasses included), a string (a Variable's `tag`), `...` or
`True` (everything), `None` or `False` (nothing), `All`/`Any`/`Not`/`PathContains`/`OfType`/
`WithTag`, a list or tuple (any of them), or a function `(path, value) -> bool`. `to_predicate`
turns each form into such a function.
"""
from dataclasses import dataclass


def to_predicate(filter):
    if isinstance(filter, type):
        return OfType(filter)
    if isinstance(filter, str):
        return WithTag(filter)
    if filter is Ellipsis or filter is True:
        return Everything()
    if filter is None or filter is False:
        return Nothing()
    if isinstance(filter, (list, tuple)):
        return Any(*filter)
    if callable(filter):
        return filter
    raise TypeError(
        f"minnx: unknown filter {filter!r} of type {type(filter).__name__}. A filter is a Variable type "
        "(e.g. minnx.Param), a string tag, `...` (everything), True/False/None, a list or tuple of "
        "filters, minnx.All/Any/Not/PathContains/OfType, or a function (path, value) -> bool.")


@dataclass(frozen=True)
class OfType:
    type: type

    def __call__(self, path, x):
        return isinstance(x, self.type)


@dataclass(frozen=True)
class WithTag:
    tag: str

    def __call__(self, path, x):
        return getattr(x, "tag", None) == self.tag


@dataclass(frozen=True)
class PathContains:
    key: object

    def __call__(self, path, x):
        return self.key in path


@dataclass(frozen=True, init=False)
class All:
    filters: tuple

    def __init__(self, *filters):
        object.__setattr__(self, "filters", filters)

    def __call__(self, path, x):
        return all(to_predicate(f)(path, x) for f in self.filters)


@dataclass(frozen=True, init=False)
class Any:
    filters: tuple

    def __init__(self, *filters):
        object.__setattr__(self, "filters", filters)

    def __call__(self, path, x):
        return any(to_predicate(f)(path, x) for f in self.filters)


@dataclass(frozen=True)
class Not:
    filter: object

    def __call__(self, path, x):
        return not to_predicate(self.filter)(path, x)


@dataclass(frozen=True)
class Everything:
    def __call__(self, path, x):
        return True


@dataclass(frozen=True)
class Nothing:
    def __call__(self, path, x):
        return False
