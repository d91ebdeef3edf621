"""Filters: small predicates that pick pieces of state by path and value.

Everywhere the API takes a filter (`split`, `state`, `pop`, `grad(argnums=DiffState(...))`,
`Optimizer(wrt=...)`) it accepts any of:

- a Variable type, e.g. `Param` (matches that type and its subclasses),
- a string: matches a Variable whose `tag` metadata is that string (as `RngState`s carry),
- `...` or `True`: everything; `None` or `False`: nothing,
- `All(f, g)`, `Any(f, g)`, `Not(f)`, `PathContains(key)`, `OfType(t)`,
- a list or tuple of filters (any of them),
- a function `(path, value) -> bool`.

`to_predicate` turns each form into such a function.
"""


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
        f"minnx: unknown filter {filter!r} of type {type(filter).__name__}. A filter is a Variable "
        "type (e.g. minnx.Param), a string tag, `...` (everything), True/False/None, a list or tuple "
        "of filters, minnx.All/Any/Not/PathContains/OfType, or a function (path, value) -> bool."
    )


class _Filter:
    def __repr__(self):
        args = ", ".join(repr(a) for a in getattr(self, "args", ()))
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.args == other.args

    def __hash__(self):
        return hash((type(self), self.args))


class OfType(_Filter):
    def __init__(self, type):
        self.type = type
        self.args = (type,)

    def __call__(self, path, x):
        return isinstance(x, self.type) or (
            hasattr(x, "type") and isinstance(x.type, type) and issubclass(x.type, self.type))


class WithTag(_Filter):
    def __init__(self, tag):
        self.tag = tag
        self.args = (tag,)

    def __call__(self, path, x):
        return getattr(x, "tag", None) == self.tag


class PathContains(_Filter):
    def __init__(self, key, *, exact=True):
        self.key = key
        self.args = (key,)
        self.exact = exact

    def __call__(self, path, x):
        if self.exact:
            return self.key in path
        return any(str(self.key) in str(part) for part in path)


class All(_Filter):
    def __init__(self, *filters):
        self.args = filters
        self.predicates = [to_predicate(f) for f in filters]

    def __call__(self, path, x):
        return all(p(path, x) for p in self.predicates)


class Any(_Filter):
    def __init__(self, *filters):
        self.args = filters
        self.predicates = [to_predicate(f) for f in filters]

    def __call__(self, path, x):
        return any(p(path, x) for p in self.predicates)


class Not(_Filter):
    def __init__(self, filter):
        self.args = (filter,)
        self.predicate = to_predicate(filter)

    def __call__(self, path, x):
        return not self.predicate(path, x)


class Everything(_Filter):
    args = ()

    def __call__(self, path, x):
        return True


class Nothing(_Filter):
    args = ()

    def __call__(self, path, x):
        return False
