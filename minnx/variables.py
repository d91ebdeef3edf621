"""Variables: the boxes that hold a Module's state.

A Module keeps its arrays inside `Variable` objects. The Variable's *type* says
what the array is for (`Param` is trained, `BatchStat` is a running statistic,
...), and filters select state by that type. A Variable is mutable: `v[...] = x`
replaces its value in place, which is how NNX code looks stateful. Variables are
also JAX pytrees (one child, the value), so `jax.tree.map` sees straight through
them to the arrays.
"""
import operator

import jax
import numpy as np

_OWN = ("_value", "_meta", "_trace_copy")


class MutationLostError(RuntimeError):
    """A mutation inside a plain JAX transform that JAX would throw away."""


def lost_mutation_error(what: str) -> MutationLostError:
    return MutationLostError(
        f"{what} was changed inside a plain JAX transform (jax.jit, jax.grad, jax.vmap, ...) that "
        "received the Module as a pytree. JAX gives the function a copy, so this change would be "
        "silently lost when the transform returns.\nFix it in one of two ways:\n"
        "  1. use the NNX transform instead (minnx.jit, minnx.grad, ...), which carries the change out;\n"
        "  2. pass `graphdef, state = minnx.split(model)` in, call `minnx.merge(graphdef, state)` inside, "
        "return `minnx.state(model)` (or `minnx.split(model)`) and `minnx.update(model, new_state)` outside."
    )


class Variable:
    """A mutable box for one value (usually a jax.Array) plus metadata.

    >>> w = Variable(jnp.ones(3), tag="hello")
    >>> w[...]          # read          (the seeds also write `w.value`)
    >>> w[...] = x      # write in place
    >>> w.tag           # metadata is an attribute
    """

    def __init__(self, value, **metadata):
        if isinstance(value, Variable):
            metadata = {**value._meta, **metadata}
            value = value.get_value()
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_meta", metadata)
        object.__setattr__(self, "_trace_copy", False)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register(cls)

    # -- value --------------------------------------------------------------
    def get_value(self):
        return self._value

    def set_value(self, value):
        if self._trace_copy:
            raise lost_mutation_error(f"{type(self).__name__} Variable")
        if isinstance(value, Variable):
            value = value.get_value()
        object.__setattr__(self, "_value", value)

    value = property(get_value, set_value, doc="The stored value (older form of `v[...]`).")

    def __getitem__(self, key):
        if key is Ellipsis and not hasattr(self._value, "shape"):
            return self._value  # non-array values: v[...] is the value itself
        return self._value[key]

    def __setitem__(self, key, item):
        if key is Ellipsis:
            self.set_value(item)
        else:
            self.set_value(self._value.at[key].set(item))

    # -- metadata -----------------------------------------------------------
    def __getattr__(self, name):
        meta = object.__getattribute__(self, "_meta")
        if name in meta:
            return meta[name]
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "_value"), name)  # shape, dtype, ...

    def __setattr__(self, name, value):
        if name == "value":
            self.set_value(value)
        elif name in _OWN:
            object.__setattr__(self, name, value)
        else:
            from .module import touch  # metadata is part of the GraphDef
            touch()
            self._meta[name] = value

    def get_metadata(self):
        return dict(self._meta)

    def replace(self, value=None, **metadata):
        """A new Variable of the same type: new value and/or metadata."""
        new = type(self).__new__(type(self))
        object.__setattr__(new, "_value", self._value if value is None else value)
        object.__setattr__(new, "_meta", {**self._meta, **metadata})
        object.__setattr__(new, "_trace_copy", False)
        return new

    def copy(self):
        return self.replace()

    # -- behave like the array inside ----------------------------------------
    def __jax_array__(self):
        return self._value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype=dtype)

    def __len__(self):
        return len(self._value)

    def __iter__(self):
        return iter(self._value)

    def __bool__(self):
        return bool(self._value)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __index__(self):
        return operator.index(self._value)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self._value == _unbox(other)

    def __repr__(self):
        from .display import variable_repr
        return variable_repr(self)


def _unbox(x):
    return x.get_value() if isinstance(x, Variable) else x


def _binary(op):
    return lambda self, other: op(self._value, _unbox(other))


def _reflected(op):
    return lambda self, other: op(_unbox(other), self._value)


for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv),
                   ("mod", operator.mod), ("pow", operator.pow), ("matmul", operator.matmul),
                   ("and", operator.and_), ("or", operator.or_), ("xor", operator.xor)]:
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _reflected(_op))
for _name, _op in [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt),
                   ("ge", operator.ge), ("ne", operator.ne)]:
    setattr(Variable, f"__{_name}__", _binary(_op))
for _name, _op in [("neg", operator.neg), ("pos", operator.pos), ("abs", operator.abs),
                   ("invert", operator.invert)]:
    setattr(Variable, f"__{_name}__", lambda self, _op=_op: _op(self._value))


# -- Variables are pytrees: one child (the value), the metadata is static -------
def _flatten(v):
    return ((jax.tree_util.GetAttrKey("value"), v._value),), tuple(sorted(v._meta.items()))


def _register(cls):
    def unflatten(meta, children):
        new = cls.__new__(cls)
        object.__setattr__(new, "_value", children[0])
        object.__setattr__(new, "_meta", dict(meta))
        object.__setattr__(new, "_trace_copy", False)
        return new

    jax.tree_util.register_pytree_with_keys(cls, _flatten, unflatten)


_register(Variable)


class Param(Variable):
    """A trainable parameter (what `torch.nn.Parameter` is in PyTorch)."""


class BatchStat(Variable):
    """A running statistic, like BatchNorm's mean and var (a PyTorch *buffer*)."""


class Cache(Variable):
    """A cache, e.g. the key/value cache of autoregressive attention."""


class Intermediate(Variable):
    """An intermediate value kept for inspection (what `Module.sow` stores)."""


class Perturbation(Intermediate):
    """An intermediate used to take gradients with respect to activations."""


class RngState(Variable):
    """Random-number state held by an RngStream."""


class RngKey(RngState):
    """The key of an RngStream."""


class RngCount(RngState):
    """How many keys an RngStream has given out."""


_BY_NAME = {}


def variable_type_from_name(name: str) -> type:
    """`'intermediates'`-style collection names (as Linen used) map to a Variable type."""
    if name not in _BY_NAME:
        _BY_NAME[name] = type(name, (Variable,), {})
    return _BY_NAME[name]
