"""Variables: the boxes that hold a Module's state.

A Module keeps its arrays inside `Variable` objects. The Variable's *type* says what the array
is for (`Param` is trained, `BatchStat` is a running statistic, ...), and filters select state
by that type. A Variable is mutable: `v[...] = x` replaces its value in place, which is how NNX
code looks stateful. Variables are also JAX pytrees (one child, the value), so `jax.tree.map`
sees straight through them to the arrays.
"""
import operator

import jax
import numpy as np


class MutationLostError(RuntimeError):
    """A mutation inside a plain JAX transform that JAX would throw away."""


def lost_mutation_error(what: str) -> MutationLostError:
    return MutationLostError(
        f"{what} was changed inside a plain JAX transform (jax.jit, jax.grad, jax.vmap, ...) that "
        "received the Module as a pytree. JAX gives the function a copy, so this change would be "
        "silently lost when the transform returns.\nFix it in one of two ways:\n"
        "  1. use the NNX transform instead (minnx.jit, minnx.grad, ...), which carries the change out;\n"
        "  2. pass `graphdef, state = minnx.split(model)` in, call `minnx.merge(graphdef, state)` inside, "
        "return `minnx.state(model)` (or `minnx.split(model)`) and `minnx.update(model, new_state)` outside.")


class Variable:
    """A mutable box for one value (usually a jax.Array) plus metadata.

    >>> w = Variable(jnp.ones(3), tag="hello")
    >>> w[...]          # read          (the seeds also write `w.value`)
    >>> w[...] = x      # write in place
    >>> w.tag           # metadata is an attribute
    """
    _trace_copy = False  # True on the copies JAX makes inside a plain jax.jit: see module.py

    def __init__(self, value, **metadata):
        if isinstance(value, Variable):
            value, metadata = value.get_value(), {**value._meta, **metadata}
        self.__dict__.update(_value=value, _meta=metadata)

    @classmethod
    def _make(cls, value, meta):
        """A Variable built without __init__ (for replace and JAX's unflatten)."""
        new = cls.__new__(cls)
        new.__dict__.update(_value=value, _meta=meta)
        return new

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    # -- the value ----------------------------------------------------------------------
    def get_value(self):
        return self._value

    def set_value(self, value):
        if self._trace_copy:
            raise lost_mutation_error(f"{type(self).__name__} Variable")
        self.__dict__["_value"] = value.get_value() if isinstance(value, Variable) else value

    value = property(get_value, set_value, doc="The stored value (the older form of `v[...]`).")

    def __getitem__(self, key):
        if key is Ellipsis and not hasattr(self._value, "shape"):
            return self._value  # a non-array value: v[...] is the value itself
        return self._value[key]

    def __setitem__(self, key, item):
        self.set_value(item if key is Ellipsis else self._value.at[key].set(item))

    # -- metadata ------------------------------------------------------------------------
    def __getattr__(self, name):
        meta = object.__getattribute__(self, "_meta")
        if name in meta:
            return meta[name]
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "_value"), name)  # shape, dtype, ...

    def __setattr__(self, name, value):
        if name == "value":
            return self.set_value(value)
        from .module import touch  # metadata is part of the GraphDef
        touch()
        self._meta[name] = value

    def get_metadata(self):
        return dict(self._meta)

    def replace(self, value=None, **metadata):
        """A new Variable of the same type: new value and/or metadata."""
        return self._make(self._value if value is None else value, {**self._meta, **metadata})

    def copy(self):
        return self.replace()

    # -- behave like the array inside ------------------------------------------------------
    def __jax_array__(self):
        return self._value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype=dtype)

    def __len__(self):
        return len(self._value)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self._value == _unbox(other)

    def __repr__(self):
        from .display import variable_repr
        return variable_repr(self)


def _unbox(x):
    return x.get_value() if isinstance(x, Variable) else x


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    _f = getattr(operator, _op + "_" if _op in ("and", "or") else _op)
    setattr(Variable, f"__{_op}__", lambda self, other, _f=_f: _f(self._value, _unbox(other)))
    setattr(Variable, f"__r{_op}__", lambda self, other, _f=_f: _f(_unbox(other), self._value))
for _op in ("lt", "le", "gt", "ge", "ne"):
    setattr(Variable, f"__{_op}__", lambda self, other, _f=getattr(operator, _op): _f(self._value, _unbox(other)))
for _op in ("neg", "pos", "abs", "invert", "bool", "float", "int", "index"):
    _f = {"bool": bool, "float": float, "int": int}.get(_op, getattr(operator, _op, None))
    setattr(Variable, f"__{_op}__", lambda self, _f=_f: _f(self._value))


# -- Variables are pytrees: one child (the value); the metadata is static ----------------------
def _register(cls):
    jax.tree_util.register_pytree_with_keys(
        cls, lambda v: (((jax.tree_util.GetAttrKey("value"), v._value),), tuple(sorted(v._meta.items()))),
        lambda meta, children: cls._make(children[0], dict(meta)))


_register(Variable)


# The Variable types, by what their value is for. Filters select state by these types.
class Param(Variable): """A trainable parameter (what `torch.nn.Parameter` is in PyTorch)."""
class BatchStat(Variable): """A running statistic, like BatchNorm's mean and var (a PyTorch *buffer*)."""
class Cache(Variable): """A cache, e.g. the key/value cache of autoregressive attention."""
class Intermediate(Variable): """An intermediate value kept for inspection (what `Module.sow` stores)."""
class RngState(Variable): """Random-number state held by an RngStream."""
class RngKey(RngState): """The key of an RngStream."""
class RngCount(RngState): """How many keys an RngStream has given out."""
