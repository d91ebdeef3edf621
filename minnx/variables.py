"""Variables: the boxes that hold a Module's state.

The type says what a value is for (`Param` is trained, `BatchStat` a running statistic); `v[...] =
x` writes into it. Variables are pytrees whose one child is the value (metadata is static).
"""
import functools

import jax
import numpy as np

MISSING = object()

class TraceContextError(Exception):
    """A Variable or Object made outside a JAX transform was changed inside one."""

# How many minnx transforms are tracing now. A Variable made outside every transform must not
# receive a traced value: it would leak out (one made in a plain `jax.grad` counts as outside).
_transform_depth = [0]

def traced_by_minnx(fn):  # marks the function that a minnx transform has JAX trace
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _transform_depth[0] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _transform_depth[0] -= 1
    return wrapper

# Structure changes (an attribute set or deleted, metadata changed), counted here and on the
# object itself. Only fastpath.py reads the counts.
structure_changes = [0]

def note_structure_change(obj):
    structure_changes[0] += 1
    obj.__dict__["_object__version"] = obj.__dict__.get("_object__version", 0) + 1

def has_tracer(value):
    if isinstance(value, (jax.Array, np.ndarray, int, float, bool)):
        return isinstance(value, jax.core.Tracer)
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(value))

class VariableMetadata:
    """A value plus metadata for the Variable it goes into (what `with_partitioning` makes)."""
    def __init__(self, raw_value, metadata):
        self.raw_value = raw_value
        self.metadata = dict(metadata)

def unbox(x):  # a Variable's value; anything else as it is
    return x.get_value() if isinstance(x, Variable) else x
def raw_value(x):  # a Variable's stored value (bypassing any `get_value` override), or x
    return x.get_raw_value() if isinstance(x, Variable) else x

def _operator(name):  # a method applying the value's operator: `kernel @ x` is `kernel[...] @ x`
    def operator(self, *other):
        return getattr(self.get_value(), name)(*map(unbox, other))
    operator.__name__ = name
    return operator

def _in_place_operator(symbol):
    """`kernel -= x` would replace the Variable attribute by a plain array: refuse it."""
    def operator(self, other):
        raise NotImplementedError(f"In-place operations are no longer supported for Variable "
                                  f"(it becomes an array). Use `variable[...] {symbol} y` instead.")
    return operator

def shard_eagerly(value, metadata):
    """Lay `value` out as `out_sharding` says, on `mesh` or `jax.set_mesh`'s (FLIP 4844)."""
    mesh = metadata.get("mesh")
    if mesh is None:
        mesh = jax.sharding.get_abstract_mesh()
    spec = jax.sharding.PartitionSpec(*metadata["out_sharding"])
    if mesh.empty:
        raise ValueError(
            f"An auto mesh context or metadata is required if creating a variable with annotation "
            f"out_sharding={spec}. Create it inside `with jax.set_mesh(mesh):`, or pass mesh=mesh "
            "(to the Variable or to with_partitioning), or eager_sharding=False to keep it whole.")
    sharding = jax.sharding.NamedSharding(mesh, spec)
    if mesh.are_all_axes_explicit:
        return jax.sharding.reshard(value, sharding)
    return jax.lax.with_sharding_constraint(value, sharding)

class Variable:
    """A mutable box for a value plus metadata: `w[...]` reads, `w[...] = x` writes, `w.tag`."""
    __hash__ = None  # unhashable, as in flax: == compares values

    def __init__(self, value, **metadata):
        if isinstance(value, VariableMetadata):
            metadata = {**value.metadata, **metadata}
            value = value.raw_value
        if metadata.get("out_sharding") and metadata.get("eager_sharding", True):
            value = shard_eagerly(value, metadata)
        object.__setattr__(self, "_raw_value", value)
        object.__setattr__(self, "_var_metadata", metadata)
        outside = _transform_depth[0] == 0 and not has_tracer(value)
        object.__setattr__(self, "_created_outside_trace", outside)

    @classmethod
    def from_metadata(cls, value, metadata):  # without __init__: how merge rebuilds one
        variable = object.__new__(cls)
        object.__setattr__(variable, "_raw_value", value)
        object.__setattr__(variable, "_var_metadata", dict(metadata))
        object.__setattr__(variable, "_created_outside_trace", False)
        return variable

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _register_pytree(cls)
    def __class_getitem__(cls, item):  # `Param[jax.Array]` in a type hint
        return cls

    # -- the value -------------------------------------------------------------------------------
    def get_raw_value(self):  # the stored value, bypassing any `get_value` override
        return self._raw_value
    def set_raw_value(self, value):
        self._check_can_update(value)
        object.__setattr__(self, "_raw_value", value)

    def get_value(self, *, index=MISSING):
        """The value, or `value[index]` (what `v[index]` reads). Subclasses may override it."""
        value = self._raw_value
        if index is MISSING or (index is Ellipsis and isinstance(value, jax.Array)):
            return value
        return value[index]

    def set_value(self, value, *, index=MISSING):
        """Replace the value, or write at `index` keeping shape and dtype (`bias[...] = 0.0`)."""
        value = unbox(value)
        self._check_can_update(value)
        raw = self._raw_value
        if index is MISSING:
            new = value
        elif isinstance(raw, jax.Array):
            same_layout = (index is Ellipsis and isinstance(value, jax.Array)
                           and value.shape == raw.shape and value.dtype == raw.dtype
                           and getattr(value, "sharding", None) == getattr(raw, "sharding", None))
            new = value if same_layout else raw.at[index].set(value)
        else:
            raw[index] = value  # NumPy arrays, lists and dicts are written in place
            new = raw
        object.__setattr__(self, "_raw_value", new)

    def _check_can_update(self, value):
        if self._created_outside_trace and has_tracer(value):
            raise TraceContextError(
                f"Cannot mutate {type(self).__name__} from a different trace level: it was made "
                "outside the running JAX transform, so a traced value would leak out. Pass the "
                "Module (or Rngs) to the NNX transform (minnx.jit, ...) as an argument.")

    @property
    def value(self):  # the older form of `v[...]` (flax deprecates it); __setattr__ writes it
        return self.get_value()
    def __getitem__(self, index):
        return self.get_value(index=index)
    def __setitem__(self, index, value):
        self.set_value(value, index=index)

    # -- metadata --------------------------------------------------------------------------------
    def __getattr__(self, name):
        if name == "__deepcopy__":  # not the array's: copy.deepcopy then copies the Variable
            raise AttributeError(name)
        metadata = object.__getattribute__(self, "_var_metadata")
        if name in metadata:
            return metadata[name]
        return getattr(object.__getattribute__(self, "_raw_value"), name)  # shape, dtype, ...

    def __setattr__(self, name, value):
        if name == "value":
            return self.set_value(value)
        raise AttributeError(f"Cannot set attribute {name!r} of a {type(self).__name__}: write "
                             f"`variable[...] = x`, or `variable.set_metadata({name}=...)`.")

    def get_metadata(self, name=None, default=MISSING, *, exclude_required=None):
        """All metadata as a dict, or the entry `name` (`default` if it is missing)."""
        if name is None:
            return dict(self._var_metadata)
        if name not in self._var_metadata and default is not MISSING:
            return default
        return self._var_metadata[name]

    def set_metadata(self, *args, **kwargs):
        """`set_metadata({...})` replaces all metadata; `(name, value)` or `name=value` sets one."""
        if len(args) == 1 and not kwargs:
            object.__setattr__(self, "_var_metadata", dict(args[0]))
        elif len(args) == 2 and not kwargs:
            self._var_metadata[args[0]] = args[1]
        elif kwargs and not args:
            self._var_metadata.update(kwargs)
        else:
            raise TypeError(f"set_metadata takes either 1 or 2 arguments, or at least 1 keyword "
                            f"argument, got args={args}, kwargs={kwargs}")
        note_structure_change(self)

    def del_metadata(self, name):
        del self._var_metadata[name]
        note_structure_change(self)

    # -- copies ----------------------------------------------------------------------------------
    def copy(self, value=MISSING, **metadata):  # the same type, value and metadata unless given
        new_value = self._raw_value if value is MISSING else value
        return self.from_metadata(new_value, {**self._var_metadata, **metadata})

    replace = copy

    def update_from_state(self, other):  # how `update` writes: a value, or a Variable's value
        self.set_raw_value(raw_value(other))  # and changed metadata
        if isinstance(other, Variable) and other._var_metadata != self._var_metadata:
            object.__setattr__(self, "_var_metadata", dict(other._var_metadata))
            note_structure_change(self)

    # -- behave like the value inside ----------------------------------------------------------
    def __jax_array__(self):
        return self.get_value()
    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.get_value(), dtype=dtype)
    def __call__(self, *args, **kwargs):
        return self.get_value()(*args, **kwargs)
    def __eq__(self, other):
        return self.get_value() == unbox(other)

    __len__ = _operator("__len__")
    __iter__ = _operator("__iter__")
    __contains__ = _operator("__contains__")
    __add__ = _operator("__add__")
    __sub__ = _operator("__sub__")
    __mul__ = _operator("__mul__")
    __matmul__ = _operator("__matmul__")
    __truediv__ = _operator("__truediv__")
    __pow__ = _operator("__pow__")
    __radd__ = _operator("__radd__")
    __rsub__ = _operator("__rsub__")
    __rmul__ = _operator("__rmul__")
    __rmatmul__ = _operator("__rmatmul__")
    __rtruediv__ = _operator("__rtruediv__")
    __mod__ = _operator("__mod__")
    __rmod__ = _operator("__rmod__")
    __floordiv__ = _operator("__floordiv__")
    __rfloordiv__ = _operator("__rfloordiv__")
    __rpow__ = _operator("__rpow__")
    __neg__ = _operator("__neg__")
    __abs__ = _operator("__abs__")
    __int__ = _operator("__int__")
    __float__ = _operator("__float__")
    __iadd__ = _in_place_operator("+=")
    __isub__ = _in_place_operator("-=")
    __imul__ = _in_place_operator("*=")
    __imatmul__ = _in_place_operator("@=")
    __itruediv__ = _in_place_operator("/=")
    __ipow__ = _in_place_operator("**=")
    __ifloordiv__ = _in_place_operator("//=")
    __imod__ = _in_place_operator("%=")

    def __repr__(self):
        metadata = "".join(f", {k}={v!r}" for k, v in self._var_metadata.items())
        return f"{type(self).__name__}(value={array_summary(self.get_value())}{metadata})"

def _register_pytree(cls):  # one child, the value; the sorted metadata is static
    def flatten_with_keys(variable):
        metadata = tuple(sorted(variable._var_metadata.items()))
        return ((jax.tree_util.GetAttrKey("value"), variable._raw_value),), metadata
    def unflatten(metadata, children):
        return cls.from_metadata(children[0], dict(metadata))
    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten)

_register_pytree(Variable)

def array_summary(x):
    """How a value prints: `<float32(2, 3) ≈0.1 ±0.9 [≥-1.2, ≤1.5] nonzero:6>` or in full."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        return repr(x)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return f"<jax.Array key{x.shape}>"
    head = f"{x.dtype}{tuple(x.shape)}"
    if isinstance(x, jax.core.Tracer):
        return f"<traced {head}>"  # inside a transform: only the shape and dtype are known
    if not hasattr(x, "__array__"):
        return f"<{head}>"  # a ShapeDtypeStruct (from eval_shape)
    a = np.asarray(x)
    if a.size <= 8 or not np.issubdtype(a.dtype, np.number):
        text = np.array2string(a, precision=3, separator=", ", max_line_width=10**6)
        return f"<{head} {text.replace(chr(10), '')}>"
    a = a.astype(np.float64)
    return (f"<{head} ≈{a.mean():.2g} ±{a.std():.2g} [≥{a.min():.2g}, ≤{a.max():.2g}]"
            f" nonzero:{np.count_nonzero(a)}>")

# The Variable types, by what their value is for. Filters select state by these types.
class Param(Variable):
    """A trainable parameter (what `torch.nn.Parameter` is in PyTorch)."""
class BatchStat(Variable):
    """A running statistic, like BatchNorm's mean and var (a PyTorch *buffer*)."""
class Cache(Variable):
    """A cache, e.g. the key/value cache of autoregressive attention."""
class Intermediate(Variable):
    """An intermediate value kept for inspection (what `Module.sow` stores)."""
class Perturbation(Intermediate):
    """A zero added to an intermediate value, whose gradient is that value's (`Module.perturb`)."""
class RngState(Variable):
    """Random-number state held by an RngStream."""
class RngKey(RngState):
    """The key of an RngStream."""
class RngCount(RngState):
    """How many keys an RngStream has given out."""
