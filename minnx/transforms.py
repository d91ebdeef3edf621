"""Transforms: jit, grad, vmap, scan, ... that take Modules as arguments.

Each NNX transform is its JAX transform with `lift.py` around it: graph nodes go in as their
Variables' values, fresh objects are rebuilt inside, and what the function changed (BatchNorm
statistics, Rngs counts, an Optimizer's state) is written back into the caller's own objects.
Compare `jit` with the hand-written version in notebook 4: `lift` is `split`, `lower` is
`merge`, `lower_out` is `update`.
"""
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .filters import to_predicate
from .graph import state as state_of, update
from .lift import _LEAF_TYPES, _flat_arguments, is_node, lift, lift_out, lower, lower_out
from .module import Object, structure_version
from .variables import Param, Variable


def _decorator(transform, f, kwargs):
    """Lets every transform be used as `@t`, `@t(...)` or `t(f, ...)`."""
    return (lambda f: transform(f, **kwargs)) if f is None else transform(f, **kwargs)


def _as_tuple(x):
    return () if x is None else (x,) if isinstance(x, (int, str)) else tuple(x)


_TRACE_HINT = (
    "minnx hint: inside a transformed function the arguments are tracers: JAX knows their shape "
    "and dtype, not their values, so Python `if`, `while`, `int()` or `bool()` on them cannot run. "
    "Use `jnp.where`, `minnx.cond` / `jax.lax.cond` or `minnx.while_loop`, or make the argument "
    "static (`static_argnums=` in jit) if it is a Python setting.")
_TRACE_ERRORS = (jax.errors.TracerBoolConversionError, jax.errors.ConcretizationTypeError,
                 jax.errors.TracerIntegerConversionError)


# -- jit ---------------------------------------------------------------------------------
class JitWrapped:
    """A function compiled with `jax.jit`, whose arguments may be graph nodes."""

    def __init__(self, fun, *, in_shardings=None, out_shardings=None, static_argnums=None,
                 static_argnames=None, donate_argnums=None, donate_argnames=None, keep_unused=False,
                 device=None, backend=None, inline=False):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = _as_tuple(static_argnums)
        self.static_argnames = _as_tuple(static_argnames)
        self.out_shardings = out_shardings
        # JAX gets the dynamic arguments only: user argument i is at i - (static ones before it)
        donate = tuple(i - sum(s < i for s in self.static_argnums) for i in _as_tuple(donate_argnums))
        self.options = dict(keep_unused=keep_unused, inline=inline, donate_argnums=donate,
                            donate_argnames=_as_tuple(donate_argnames))
        self.options.update({k: v for k, v in dict(in_shardings=in_shardings, device=device,
                                                    backend=backend).items() if v is not None})
        self._by_key = {}  # one jax.jit per structure of the arguments (and static values)
        self._last = None  # (structure version, Lifted, jitted) of the last plain call

    def _inner(self, key, *pure_args, **pure_kwargs):
        lifted, statics, static_kwargs = key
        if pure_kwargs:
            (args, kwargs), inner = lower((pure_args, pure_kwargs), lifted)
        else:
            (args, inner), kwargs = lower(pure_args, lifted), {}
        args = list(args)
        for i, value in statics:
            args.insert(i, value)
        out = self.fun(*args, **kwargs, **dict(static_kwargs))
        if self.out_shardings is not None:
            out = jax.lax.with_sharding_constraint(out, self.out_shardings)
        return lift_out(out, inner, lifted, only_changed=True)

    def _prepare(self, args, kwargs):
        statics = static_kwargs = ()
        if self.static_argnums:
            statics = tuple((i, args[i]) for i in self.static_argnums if i < len(args))
            args = tuple(a for i, a in enumerate(args) if i not in self.static_argnums)
        if self.static_argnames:
            static_kwargs = tuple(sorted((k, kwargs.pop(k)) for k in self.static_argnames if k in kwargs))
        if kwargs:
            (pure_args, pure_kwargs), lifted = lift((args, kwargs))
        else:
            (pure_args, lifted), pure_kwargs = lift(args), {}
        key = (lifted, statics, static_kwargs)
        jitted = self._by_key.get(key)
        if jitted is None:
            @functools.wraps(self.fun)  # so that JAX's messages name the user's function
            def inner(*pure_args, **pure_kwargs):
                return self._inner(key, *pure_args, **pure_kwargs)
            jitted = self._by_key[key] = jax.jit(inner, **self.options)
        return jitted, pure_args, pure_kwargs, lifted

    def _repeat_call(self, args):
        """The common loop `step(model, optimizer, x, y)`: the same graph nodes in the same places
        as last time, arrays elsewhere, and no graph structure changed since. Then the last call's
        plan holds and only the Variables' values need reading."""
        version, lifted, jitted = self._last
        positions, nodes = lifted.positions, lifted.split.nodes
        if version != structure_version[0] or len(args) != lifted.treedef.num_leaves:
            return None
        k = 0
        for i, x in enumerate(args):  # written out as a loop: this runs on every call, and is fast
            if k < len(positions) and positions[k] == i and x is nodes[k]:
                k += 1
            elif not isinstance(x, _LEAF_TYPES):
                return None
        if k != len(positions):
            return None
        pure_args = list(args)
        for k, i in enumerate(positions):
            pure_args[i] = lifted.split.node_values(k)
        return jitted, pure_args, {}, lifted

    def __call__(self, *args, **kwargs):
        plan = self._repeat_call(args) if self._last and not kwargs else None
        if plan is None:
            plan = self._prepare(args, kwargs)
            if not (kwargs or self.static_argnums) and _flat_arguments(args) is not None:
                self._last = (structure_version[0], plan[3], plan[0])
        jitted, pure_args, pure_kwargs, lifted = plan
        try:
            result = jitted(*pure_args, **pure_kwargs)
        except _TRACE_ERRORS as error:
            if _TRACE_HINT not in getattr(error, "__notes__", ()):
                error.add_note(_TRACE_HINT)
            raise
        return lower_out(result, lifted)

    def __get__(self, obj, objtype=None):  # `@minnx.jit` on a method
        return self if obj is None else functools.partial(self, obj)


def jit(fun=None, **options):
    """`jax.jit` for functions of Modules: `@minnx.jit` or `minnx.jit(f, static_argnums=...)`.
    Takes jax.jit's options: static_argnums/static_argnames, donate_argnums/donate_argnames,
    in_shardings, out_shardings, keep_unused, device, backend, inline."""
    return _decorator(lambda f, **kw: JitWrapped(f, **kw), fun, options)


# -- grad --------------------------------------------------------------------------------
class DiffState(NamedTuple):
    """Differentiate argument `argnum` with respect to the Variables `filter` selects."""
    argnum: int
    filter: Any


def _diff_input(arg, filter):
    """What JAX differentiates: each graph node as the State of the Variables `filter` selects."""
    return jax.tree.map(lambda x: state_of(x, filter) if isinstance(x, Object) else x, arg, is_leaf=is_node)


def _put(arg, diff):
    """Inside: put the differentiated values (tracers) into the rebuilt argument."""
    def put(x, d):
        if isinstance(x, Object):
            update(x, d)
        elif isinstance(x, Variable):
            x.set_value(d)
        return x if is_node(x) else d
    return jax.tree.map(put, arg, diff, is_leaf=is_node)


def _autodiff(f, *, argnums, has_aux, holomorphic, allow_int, reduce_axes, with_value):
    single = isinstance(argnums, (int, DiffState))
    specs = [a if isinstance(a, DiffState) else DiffState(a, Param) for a in ((argnums,) if single else argnums)]
    for spec in specs:
        to_predicate(spec.filter)  # an unknown filter fails here, with its message

    @functools.wraps(f)
    def wrapper(*args):
        if max(s.argnum for s in specs) >= len(args):
            raise TypeError(f"minnx.grad: argnums {argnums} asks for more than the {len(args)} positional "
                            "argument(s) the function was called with.")
        pure, lifted = lift(args)

        def pure_fn(diff, pure):
            args_in, inner = lower(pure, lifted)
            args_in = list(args_in)
            for spec, d in zip(specs, diff):
                args_in[spec.argnum] = _put(args_in[spec.argnum], d)
            value, aux = f(*args_in) if has_aux else (f(*args_in), None)
            return value, lift_out(aux, inner, lifted, only_changed=True)

        diff = tuple(_diff_input(args[s.argnum], s.filter) for s in specs)
        (value, packed), grads = jax.value_and_grad(pure_fn, has_aux=True, holomorphic=holomorphic,
                                                    allow_int=allow_int)(diff, pure)
        aux, grads = lower_out(packed, lifted), grads[0] if single else grads
        if with_value:
            return ((value, aux) if has_aux else value), grads
        return (grads, aux) if has_aux else grads
    return wrapper


def grad(f=None, *, argnums=0, has_aux=False, holomorphic=False, allow_int=False, reduce_axes=()):
    """`jax.grad` for functions of Modules. The gradient with respect to a Module is a State of
    its `Param`s (choose other Variables with `argnums=DiffState(0, filter)`)."""
    return _decorator(functools.partial(_autodiff, with_value=False), f, dict(
        argnums=argnums, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int, reduce_axes=reduce_axes))


def value_and_grad(f=None, *, argnums=0, has_aux=False, holomorphic=False, allow_int=False, reduce_axes=()):
    """Like `grad`, returning `(value, grads)` (or `((value, aux), grads)` with has_aux)."""
    return _decorator(functools.partial(_autodiff, with_value=True), f, dict(
        argnums=argnums, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int, reduce_axes=reduce_axes))


# -- transforms of a pure inner function, all alike: vmap, remat, eval_shape, switch, cond -----
def _call_lifted(jax_transform, f, args, only_changed=True, write=True):
    """Lift `args`, run `jax_transform(inner)` on them, write the changes back."""
    pure, lifted = lift(args)

    def inner_fn(*pure_args):
        args_in, inner = lower(pure_args, lifted)
        return lift_out(f(*args_in), inner, lifted, only_changed=only_changed)

    return lower_out(jax_transform(inner_fn)(*pure), lifted, write=write)


def vmap(f=None, *, in_axes=0, out_axes=0, axis_name=None, axis_size=None, spmd_axis_name=None,
         transform_metadata=None):
    """`jax.vmap` for functions of Modules. `in_axes` per argument: an int maps the argument
    (every Variable of a Module) along that axis, `None` broadcasts it."""
    axes = tuple(in_axes) if isinstance(in_axes, list) else in_axes
    return _decorator(lambda f: functools.wraps(f)(lambda *args: _call_lifted(lambda g: jax.vmap(
        g, in_axes=axes, out_axes=(out_axes, axes, None), axis_name=axis_name, axis_size=axis_size,
        spmd_axis_name=spmd_axis_name), f, args)), f, {})


def remat(f=None, *, prevent_cse=True, static_argnums=(), policy=None):
    """`jax.checkpoint` (recompute activations in the backward pass) for functions of Modules."""
    return _decorator(lambda f: functools.wraps(f)(lambda *args: _call_lifted(lambda g: jax.checkpoint(
        g, prevent_cse=prevent_cse, static_argnums=static_argnums, policy=policy), f, args)), f, {})


def eval_shape(f, *args, **kwargs):
    """What `f(*args, **kwargs)` returns, with shapes and dtypes only: nothing is computed and
    the arguments do not change. `eval_shape(lambda: Model(rngs=Rngs(0)))` is an abstract model."""
    return _call_lifted(lambda g: functools.partial(jax.eval_shape, g),
                        lambda *a: f(*a, **kwargs), args, write=False)


def switch(index, branches, *operands):
    """`jax.lax.switch` whose operands may be Modules; every branch may mutate them."""
    pure, lifted = lift(operands)

    def branch(fn):
        def run(*pure_ops):
            ops, inner = lower(pure_ops, lifted)
            return lift_out(fn(*ops), inner, lifted)  # all values, so every branch returns alike
        return run
    return lower_out(jax.lax.switch(index, [branch(b) for b in branches], *pure), lifted)


def cond(pred, true_fun, false_fun, *operands):
    """`jax.lax.cond` whose operands may be Modules."""
    return switch(jnp.asarray(pred, jnp.int32), (false_fun, true_fun), *operands)


# -- loops: scan, fori_loop, while_loop --------------------------------------------------------
class Carry: """In scan's `in_axes`/`out_axes`: this argument (output) is the loop carry."""


def _values_now(inner, lifted, where):
    """The inner objects' values after a loop body, which must keep every Module's structure."""
    graphdef, now = inner.current()
    if graphdef != lifted.split.graphdef:
        raise ValueError(
            f"minnx.{where}: the function changed the structure of a Module it was given (it set a new "
            "attribute, replaced a layer or sowed a value). A loop body may change values only "
            "(`v[...] = ...`); create attributes before the loop.")
    return now


def _as_values(tree, inner, lifted, now, where):
    """`tree` with each graph node (one of the inputs) replaced by the list of its values."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=is_node)
    roots = {id(r): k for k, r in enumerate(inner.roots)}
    for i, x in enumerate(leaves):
        if is_node(x):
            if id(x) not in roots:
                raise ValueError(f"minnx.{where}: a loop carry may hold the Modules passed in, not new ones.")
            leaves[i] = [now[j] for j in lifted.split.by_node[roots[id(x)]]]
    return treedef.unflatten(leaves)


def _write_back(tree, like, lifted):
    """Outside: `like` (the caller's tree) with the value lists in `tree` written into its objects."""
    leaves, treedef = jax.tree.flatten(like, is_leaf=is_node)
    numbers = {id(n): k for k, n in enumerate(lifted.split.nodes)}
    for i, (x, values) in enumerate(zip(leaves, treedef.flatten_up_to(tree))):
        if is_node(x):
            for j, value in zip(lifted.split.by_node[numbers[id(x)]], values):
                lifted.split.write(j, value)
        else:
            leaves[i] = values
    return treedef.unflatten(leaves)


def _carry_loop(loop, where, init_val, body_fun, cond_fun=None):
    pure, lifted = lift(init_val)

    def body(*args):  # (i, val) for fori_loop, (val,) for while_loop
        val, inner = lower(args[-1], lifted)
        out = body_fun(*args[:-1], val)
        return _as_values(out, inner, lifted, _values_now(inner, lifted, where), where)

    final = loop(body, lambda pure_val: cond_fun(lower(pure_val, lifted)[0]), pure)
    return _write_back(final, init_val, lifted)


def fori_loop(lower_, upper, body_fun, init_val, *, unroll=None):
    """`jax.lax.fori_loop` whose carry may hold Modules: `body_fun(i, val) -> val`."""
    return _carry_loop(lambda body, _, init: jax.lax.fori_loop(lower_, upper, body, init, unroll=unroll),
                       "fori_loop", init_val, body_fun)


def while_loop(cond_fun, body_fun, init_val):
    """`jax.lax.while_loop` whose carry may hold Modules."""
    return _carry_loop(lambda body, test, init: jax.lax.while_loop(test, body, init),
                       "while_loop", init_val, body_fun, cond_fun)


def scan(f=None, *, length=None, reverse=False, unroll=1, _split_transpose=False,
         in_axes=(Carry, 0), out_axes=(Carry, 0), transform_metadata=None):
    """`jax.lax.scan` over functions of Modules. `in_axes`, one per argument: `Carry` (at most
    one), an int (scanned over that axis; a Module's Variables are sliced step by step) or None
    (broadcast, unchanged). `out_axes`: `(Carry, axis)` when f returns `(carry, y)`, `Carry` when
    it returns the carry alone."""
    return _decorator(lambda f: functools.wraps(f)(
        lambda *args: _scan(f, args, in_axes, out_axes, length, reverse, unroll)), f, {})


def _split_out(out, out_axes):
    """f's output (or, given the axes twice, the axes themselves) -> (carry, ys, ys_axes)."""
    if out_axes is Carry:
        return out, None, None
    if isinstance(out_axes, tuple) and out_axes and out_axes[0] is Carry:
        if len(out_axes) == 2:
            return out[0], out[1], out_axes[1]
        return out[0], tuple(out[1:]), tuple(out_axes[1:])
    return None, out, out_axes


def _move_axis(tree, source, destination):
    return jax.tree.map(lambda x: jnp.moveaxis(x, source, destination), tree)


def _scan(f, args, in_axes, out_axes, length, reverse, unroll):
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    carry_at = [i for i, a in enumerate(axes) if a is Carry]
    if len(axes) != len(args) or len(carry_at) > 1:
        raise ValueError(f"minnx.scan: in_axes {in_axes} does not fit {len(args)} arguments: give one entry "
                         "per argument (Carry for at most one, an int, or None).")
    pure, lifted = lift(args)
    scanned = {i: a for i, a in enumerate(axes) if a is not Carry and a is not None}
    xs = {i: _move_axis(pure[i], a, 0) for i, a in scanned.items()}

    def body(carry, xs):
        step = list(pure)
        for i, x in [*xs.items(), *((c, carry) for c in carry_at)]:
            step[i] = x
        args_in, inner = lower(tuple(step), lifted)
        out = f(*args_in)
        now = _values_now(inner, lifted, "scan")
        for i in (i for i, a in enumerate(axes) if a is None):  # broadcast: must stay as it was
            after, before = (jax.tree.leaves(_as_values(args_in[i], inner, lifted, v, "scan"))
                             for v in (now, inner.values))
            if any(a is not b for a, b in zip(after, before)):
                raise ValueError(
                    f"minnx.scan: argument {i} is broadcast (in_axes None), but the function changed its "
                    "state. Pass it as the Carry, or scan over its Variables with an int axis.")
        carry_out, ys, _ = _split_out(out, out_axes)
        new_carry = _as_values(carry_out, inner, lifted, now, "scan") if carry_at else None
        return new_carry, (ys, {i: _as_values(args_in[i], inner, lifted, now, "scan") for i in scanned})

    init = pure[carry_at[0]] if carry_at else None
    carry, (ys, updates) = jax.lax.scan(body, init, xs, length=length, reverse=reverse, unroll=unroll)
    for i, a in scanned.items():
        _write_back(_move_axis(updates[i], 0, a), args[i], lifted)
    if carry_at:
        carry = _write_back(carry, args[carry_at[0]], lifted)
    if out_axes is Carry:
        return carry
    ys = jax.tree.map(lambda a, y: _move_axis(y, 0, a), _split_out(out_axes, out_axes)[2], ys)
    return (carry, ys) if carry_at else ys
