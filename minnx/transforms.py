"""Transforms: jit, grad, vmap, scan, ... for functions whose arguments are Modules.

Each is its JAX transform with lift.py's three steps around it (split outside, merge inside,
update outside), as notebook 4 does by hand around `jax.jit`.
"""
import functools
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .config import graph_mode, graph_updates_mode
from .fastpath import WalkCache
from .filters import to_predicate
from .graph import flatten, is_node_or_variable, merge, state, update
from .lift import (from_argument, merge_arguments, per_argument, split_arguments, split_results,
                   update_arguments, write_leaf)
from .objects import Pytree
from .variables import Param, Variable, raw_value, traced_by_minnx

def _decorator(transform, f, **options):  # `@t`, `@t(...)` and `t(f, ...)` all work
    return functools.partial(transform, **options) if f is None else transform(f, **options)

def _as_tuple(x):
    if x is None:
        return ()
    return (x,) if isinstance(x, (int, str)) else tuple(x)

def _refuse_bound_method(f, name):
    if inspect.ismethod(f):
        raise ValueError(f"nnx.{name} does not support bound methods (`self` comes from outside the"
                         f" trace): decorate the method, or call minnx.{name}(MyClass.method).")

def _split(args, graph, graph_updates):
    return split_arguments(args, graph=graph_mode(graph),
                           graph_updates=graph_updates_mode(graph_updates))

_TRACE_HINT = (
    "minnx hint: inside a transformed function the arguments are tracers (shape and dtype, no "
    "values), so Python `if`, `while`, `int()` or `bool()` on them cannot run. Use `jnp.where`, "
    "`minnx.cond` or `minnx.while_loop`, or make a Python setting static (`static_argnums=`).")
_TRACE_ERRORS = (jax.errors.TracerBoolConversionError, jax.errors.ConcretizationTypeError,
                 jax.errors.TracerIntegerConversionError)

class CallPlan(NamedTuple):  # jit's static argument: the Plan, and the static arguments
    plan: Any
    static_args: tuple
    static_kwargs: tuple

class JitWrapped:
    """A function compiled with `jax.jit`, whose arguments may be graph nodes."""
    def __init__(self, fun, *, in_shardings=None, out_shardings=None, static_argnums=None,
                 static_argnames=None, donate_argnums=None, donate_argnames=None,
                 keep_unused=False, device=None, backend=None, inline=False, graph=None,
                 graph_updates=None):
        _refuse_bound_method(fun, "jit")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.graph = graph_mode(graph)
        self.graph_updates = graph_updates_mode(graph_updates)
        self.static_argnames = _as_tuple(static_argnames)
        names = list(inspect.signature(fun).parameters)  # as jax.jit: a static name passed
        named = [names.index(n) for n in self.static_argnames if n in names]  # by position too
        self.static_argnums = tuple(sorted({*_as_tuple(static_argnums), *named}))
        self.out_shardings = out_shardings
        # jax.jit sees (call plan, *dynamic arguments): user argument i moves to position
        # i + 1 - (the number of static arguments before it)
        donate = tuple(i + 1 - sum(s < i for s in self.static_argnums)
                       for i in _as_tuple(donate_argnums))
        options = {"static_argnums": 0, "donate_argnums": donate, "keep_unused": keep_unused,
                   "donate_argnames": _as_tuple(donate_argnames), "inline": inline,
                   "device": device, "backend": backend}
        if in_shardings is not None:
            options["in_shardings"] = in_shardings
        self.jitted = jax.jit(self._pure_call, **options)
        self.walk_cache = WalkCache()  # the repeat-call fast path: see fastpath.py

    @traced_by_minnx
    def _pure_call(self, call_plan, *pure_args, **pure_kwargs):  # what jax.jit traces
        (args, kwargs), inner = merge_arguments((pure_args, pure_kwargs), call_plan.plan)
        args = list(args)
        for i, value in call_plan.static_args:
            args.insert(i, value)
        out = self.fun(*args, **kwargs, **dict(call_plan.static_kwargs))
        if self.out_shardings is not None:
            out = jax.lax.with_sharding_constraint(out, self.out_shardings)
        return split_results(out, inner, call_plan.plan)

    def __call__(self, *args, **kwargs):
        static_args = tuple((i, args[i]) for i in self.static_argnums if i < len(args))
        static_kwargs = tuple(sorted((k, kwargs[k]) for k in self.static_argnames if k in kwargs))
        args = tuple(a for i, a in enumerate(args) if i not in self.static_argnums)
        kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        found = self.walk_cache.lookup(args, kwargs)
        if found is None:
            (pure_args, pure_kwargs), lifted = split_arguments(
                (args, kwargs), graph=self.graph, graph_updates=self.graph_updates)
            self.walk_cache.store(args, kwargs, lifted)
        else:
            pure_args, pure_kwargs, lifted = found
        call_plan = CallPlan(lifted.plan, static_args, static_kwargs)
        try:
            result = self.jitted(call_plan, *pure_args, **pure_kwargs)
        except _TRACE_ERRORS as error:
            if _TRACE_HINT not in getattr(error, "__notes__", ()):
                error.add_note(_TRACE_HINT)
            raise
        return update_arguments(result, lifted)

    def __get__(self, obj, objtype=None):  # `@minnx.jit` on a method
        return self if obj is None else functools.partial(self, obj)

def jit(fun=None, **options):
    """`jax.jit` for functions of Modules: `@minnx.jit`, or `minnx.jit(f, static_argnums=...)`."""
    return _decorator(JitWrapped, fun, **options)

class DiffState(NamedTuple):
    """Differentiate argument `argnum` with respect to the Variables `filter` selects."""
    argnum: int
    filter: Any

def _grad(f, *, argnums, has_aux, holomorphic, allow_int, reduce_axes, graph, graph_updates,
          with_value):
    _refuse_bound_method(f, "value_and_grad" if with_value else "grad")
    if reduce_axes:
        raise ValueError("minnx.grad does not support reduce_axes (JAX removed it too).")
    single = isinstance(argnums, (int, DiffState))
    specs = (argnums,) if single else tuple(argnums)
    graph = graph_mode(graph)
    graph_updates = graph_updates_mode(graph_updates)
    if graph and graph_updates:  # a Module's gradient is the State of its Params
        specs = tuple(s if isinstance(s, DiffState) else DiffState(s, Param) for s in specs)
    elif any(isinstance(s, DiffState) for s in specs):
        raise ValueError("DiffState needs graph=True and graph_updates=True: split the model into "
                         "the parts to differentiate instead, and pass them as arguments.")
    else:  # the whole argument, as jax.grad does
        specs = tuple(DiffState(s, ...) for s in specs)
    for spec in specs:
        to_predicate(spec.filter)  # an unknown filter fails here, with its message

    @functools.wraps(f)
    def wrapper(*args):
        if max(s.argnum for s in specs) >= len(args):
            raise TypeError(f"minnx.grad: argnums {argnums} asks for more than the {len(args)} "
                            "positional argument(s) the function was called with.")
        pure, lifted = split_arguments(args, graph=graph, graph_updates=graph_updates)
        diff = tuple(_differentiable(args[s.argnum], s.filter, graph) for s in specs)

        @traced_by_minnx
        def pure_fn(diff, pure):
            args_in, inner = merge_arguments(pure, lifted.plan)
            args_in = list(args_in)
            for spec, d in zip(specs, diff):
                args_in[spec.argnum] = _with_values(args_in[spec.argnum], d)
            value, aux = f(*args_in) if has_aux else (f(*args_in), None)
            return value, split_results(aux, inner, lifted.plan)

        (value, result), grads = jax.value_and_grad(
            pure_fn, has_aux=True, holomorphic=holomorphic, allow_int=allow_int)(diff, pure)
        aux = update_arguments(result, lifted)
        if not graph_updates:  # the gradient of a Module is a Module of the same type
            grads = tuple(_like(args[s.argnum], g, graph) for s, g in zip(specs, grads))
        grads = grads[0] if single else grads
        if with_value:
            return ((value, aux) if has_aux else value), grads
        return (grads, aux) if has_aux else grads
    return wrapper

def _differentiable(arg, filter, graph):  # a graph node as the State `filter` selects
    def part(x):
        return state(x, filter, graph=graph) if isinstance(x, Pytree) else x
    return jax.tree.map(part, arg, is_leaf=is_node_or_variable)

def _with_values(arg, diff):  # inside: the differentiated values into the rebuilt argument
    def put(x, d):
        if isinstance(x, Variable):
            x.set_raw_value(d.get_raw_value())
        elif isinstance(x, Pytree):
            update(x, d)
        else:
            return d
        return x
    return jax.tree.map(put, arg, diff, is_leaf=is_node_or_variable)

def _like(arg, grads, graph):  # the gradient as objects of the argument's type
    def rebuild(x, g):
        return merge(flatten(x, graph=graph)[0], g, copy=True) if is_node_or_variable(x) else g
    return jax.tree.map(rebuild, arg, grads, is_leaf=is_node_or_variable)

def grad(f=None, *, argnums=0, has_aux=False, holomorphic=False, allow_int=False,
         reduce_axes=(), graph=None, graph_updates=None):
    """`jax.grad` for functions of Modules: a Module's gradient is a State of its `Param`s."""
    return _decorator(_grad, f, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic,
                      allow_int=allow_int, reduce_axes=reduce_axes, graph=graph,
                      graph_updates=graph_updates, with_value=False)

def value_and_grad(f=None, *, argnums=0, has_aux=False, holomorphic=False, allow_int=False,
                   reduce_axes=(), graph=None, graph_updates=None):
    """Like `grad`, returning `(value, grads)` (or `((value, aux), grads)` with has_aux)."""
    return _decorator(_grad, f, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic,
                      allow_int=allow_int, reduce_axes=reduce_axes, graph=graph,
                      graph_updates=graph_updates, with_value=True)

def _traced(f, plan, all_values=False):  # what JAX transforms: merge, call `f`, split results
    @functools.wraps(f)  # JAX's messages then name the learner's arguments
    @traced_by_minnx
    def inner(*pure_args):
        args, state_inside = merge_arguments(pure_args, plan)
        return split_results(f(*args), state_inside, plan, all_values=all_values)
    return inner

def _transformed(jax_transform, f, graph, graph_updates, write=True):
    """`f` through `jax_transform` with lift.py's steps around (a decorator if `f` is None)."""
    if f is None:
        return functools.partial(_transformed, jax_transform, graph=graph,
                                 graph_updates=graph_updates)

    @functools.wraps(f)
    def wrapper(*args):
        pure, lifted = _split(args, graph, graph_updates)
        result = jax_transform(_traced(f, lifted.plan))(*pure)
        return update_arguments(result, lifted, write=write)
    return wrapper

def vmap(f=None, *, in_axes=0, out_axes=0, axis_name=None, axis_size=None, spmd_axis_name=None,
         transform_metadata=None, graph=None, graph_updates=None):
    """`jax.vmap` for functions of Modules: `in_axes` maps (int) or broadcasts (None) each."""
    if transform_metadata:
        raise ValueError("minnx.vmap does not support transform_metadata; leave it out.")
    _refuse_bound_method(f, "vmap")
    axes = tuple(in_axes) if isinstance(in_axes, list) else in_axes
    def vmapped(inner):  # the changed values follow their arguments' axes; `static` is not mapped
        return jax.vmap(inner, in_axes=axes, out_axes=(out_axes, axes, None), axis_name=axis_name,
                        axis_size=axis_size, spmd_axis_name=spmd_axis_name)
    return _transformed(vmapped, f, graph, graph_updates)

def remat(f=None, *, prevent_cse=True, static_argnums=(), policy=None, graph=None,
          graph_updates=None):
    """`jax.checkpoint` (recompute activations in the backward pass) for functions of Modules."""
    _refuse_bound_method(f, "remat")
    def checkpointed(inner):
        return jax.checkpoint(inner, prevent_cse=prevent_cse, static_argnums=static_argnums,
                              policy=policy)
    return _transformed(checkpointed, f, graph, graph_updates)

def eval_shape(f, *args, graph=None, graph_updates=None, **kwargs):
    """`f(*args, **kwargs)`'s result as shapes and dtypes, computing and changing nothing."""
    _refuse_bound_method(f, "eval_shape")
    def call(*args):
        return f(*args, **kwargs)
    def abstract(inner):
        return functools.partial(jax.eval_shape, inner)
    return _transformed(abstract, call, graph, graph_updates, write=False)(*args)

def switch(index, branches, *operands, graph=None, graph_updates=None):
    """`jax.lax.switch` whose operands may be Modules; every branch may change their values."""
    pure, lifted = _split(operands, graph, graph_updates)
    # every branch must return the same structure, so all values come out
    traced = [_traced(branch, lifted.plan, all_values=True) for branch in branches]
    return update_arguments(jax.lax.switch(index, traced, *pure), lifted)

def cond(pred, true_fun, false_fun, *operands, graph=None, graph_updates=None):
    """`jax.lax.cond` whose operands may be Modules. `pred` must be a scalar."""
    if jnp.shape(pred) != ():
        raise TypeError(f"Pred must be a scalar, got {pred} of shape {jnp.shape(pred)}: reduce it "
                        "to one boolean (.all(), .any()), or use jnp.where to choose elementwise.")
    return switch(jnp.asarray(pred, jnp.int32), (false_fun, true_fun), *operands, graph=graph,
                  graph_updates=graph_updates)

class Carry:
    """In scan's `in_axes`/`out_axes`: this argument (output) is the loop carry."""

def _step_values(args_out, inner, plan, where):  # after a loop step: the nodes' values in place
    after = []  # the objects and Variables now reachable
    graphdef, leaves = flatten(inner.roots, graph=plan.graph, objects=after, where=where)
    # flax's while_loop also refuses a new Variable in an old one's place (fori_loop, scan don't)
    replaced = where == "while_loop" and any(a is not b for a, b in zip(after, inner.objects))
    if graphdef != plan.graphdef or replaced:
        raise ValueError(f"minnx.{where}: the step added or replaced an attribute, layer, sown "
                         "value or Variable: make them before the loop, write `w[...] = x`.")
    flat = plan.treedef.flatten_up_to(args_out)
    for k, i in enumerate(plan.positions):
        if flat[i] is not inner.roots[k]:
            raise ValueError(f"minnx.{where}: a loop carry may hold the Modules passed in only.")
    return per_argument(plan, plan.paths, [raw_value(leaf) for _, leaf in leaves], flat)

def _write_back(pure_args, lifted):  # after a loop: the final values into the caller's objects
    for j, value in enumerate(from_argument(lifted.plan, pure_args)):
        write_leaf(lifted, j, value)
    flat = lifted.plan.treedef.flatten_up_to(pure_args)
    for k, i in enumerate(lifted.plan.positions):
        flat[i] = lifted.nodes[k]
    return lifted.plan.treedef.unflatten(flat)

def _carry_loop(loop, where, init_val, body_fun, cond_fun, graph, graph_updates):
    pure, lifted = _split((init_val,), graph, graph_updates)

    @traced_by_minnx
    def body(*args):  # (i, val) for fori_loop, (val,) for while_loop
        (val,), inner = merge_arguments((args[-1],), lifted.plan)
        out = body_fun(*args[:-1], val)
        return _step_values((out,), inner, lifted.plan, where)[0]

    @traced_by_minnx
    def test(pure_val):
        return cond_fun(merge_arguments((pure_val,), lifted.plan)[0][0])
    return _write_back((loop(body, test, pure[0]),), lifted)[0]

def fori_loop(lower, upper, body_fun, init_val, *, unroll=None, graph=None, graph_updates=None):
    """`jax.lax.fori_loop` whose carry may hold Modules: `body_fun(i, val) -> val`."""
    def loop(body, test, init):
        return jax.lax.fori_loop(lower, upper, body, init, unroll=unroll)
    return _carry_loop(loop, "fori_loop", init_val, body_fun, None, graph, graph_updates)

def while_loop(cond_fun, body_fun, init_val, *, graph=None, graph_updates=None):
    """`jax.lax.while_loop` whose carry may hold Modules."""
    def loop(body, test, init):
        return jax.lax.while_loop(test, body, init)
    return _carry_loop(loop, "while_loop", init_val, body_fun, cond_fun, graph, graph_updates)

def _scan(f, *, length, reverse, unroll, _split_transpose, in_axes, out_axes, transform_metadata,
          graph, graph_updates):
    _refuse_bound_method(f, "scan")
    if transform_metadata:
        raise ValueError("minnx.scan does not support transform_metadata; leave it out.")
    all_in = in_axes if isinstance(in_axes, tuple) else (in_axes,)
    all_out = out_axes if isinstance(out_axes, tuple) else (out_axes,)
    if (Carry in all_in) != (Carry in all_out):
        raise ValueError(f"If one of in_axes or out_axes has Carry, the other must also have "
                         f"Carry. Got in_axes={in_axes} and out_axes={out_axes}")
    if None in all_out:
        raise ValueError(f"Cannot broadcast output state. Got out_axes={out_axes}: outputs are "
                         "stacked along an int axis (or are the Carry); None is for in_axes only.")

    @functools.wraps(f)
    def wrapper(*args):
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        if len(axes) != len(args) or axes.count(Carry) > 1:
            raise ValueError(f"minnx.scan: in_axes {in_axes} does not fit {len(args)} argument(s): "
                             "give one entry per argument (Carry for at most one, an int, None).")
        pure, lifted = _split(args, graph, graph_updates)
        carry_at = axes.index(Carry) if Carry in axes else None
        scanned = {i: a for i, a in enumerate(axes) if a is not Carry and a is not None}
        broadcast = [i for i, a in enumerate(axes) if a is None]

        @traced_by_minnx
        def body(carry, xs):
            step = _placed(pure, xs, carry_at, carry)
            args_in, inner = merge_arguments(step, lifted.plan)
            carry_out, ys = _outputs(f(*args_in), out_axes)
            args_out = _placed(args_in, {}, carry_at, carry_out)
            after = _step_values(args_out, inner, lifted.plan, "scan")
            for i in broadcast:
                pairs = zip(jax.tree.leaves(step[i]), jax.tree.leaves(after[i]))
                if any(before is not now for before, now in pairs):
                    raise ValueError(f"minnx.scan: argument {i} is broadcast (in_axes None), but "
                                     "the function changed its state: pass it as the Carry.")
            new_carry = None if carry_at is None else after[carry_at]
            return new_carry, (ys, {i: after[i] for i in xs})

        xs = {i: _move_axis(pure[i], a, 0) for i, a in scanned.items()}
        init = None if carry_at is None else pure[carry_at]
        carry, (ys, updates) = jax.lax.scan(body, init, xs, length=length, reverse=reverse,
                                            unroll=unroll, _split_transpose=_split_transpose)
        scanned_out = {i: _move_axis(updates[i], 0, a) for i, a in scanned.items()}
        args_out = _write_back(_placed(pure, scanned_out, carry_at, carry), lifted)
        if out_axes is Carry:
            return args_out[carry_at]
        ys = jax.tree.map(lambda a, y: _move_axis(y, 0, a), _outputs(out_axes, out_axes)[1], ys)
        return ys if carry_at is None else (args_out[carry_at], ys)
    return wrapper

def _placed(args, values, carry_at, carry):  # `args` with `values` ({i: x}) and the carry put in
    placed = list(args)
    for i, x in values.items():
        placed[i] = x
    if carry_at is not None:
        placed[carry_at] = carry
    return tuple(placed)

def _outputs(out, out_axes):  # f's output (or out_axes itself) -> (carry, ys)
    if out_axes is Carry:
        return out, None
    if isinstance(out_axes, tuple) and out_axes and out_axes[0] is Carry:
        return out[0], (out[1] if len(out_axes) == 2 else tuple(out[1:]))
    return None, out

def _move_axis(tree, source, destination):
    return jax.tree.map(lambda x: jnp.moveaxis(x, source, destination), tree)

def scan(f=None, *, length=None, reverse=False, unroll=1, _split_transpose=False,
         in_axes=(Carry, 0), out_axes=(Carry, 0), transform_metadata=None, graph=None,
         graph_updates=None):
    """`jax.lax.scan` over functions of Modules. `in_axes` has one entry per argument: `Carry`
    (at most one), an int (scanned over that axis) or None (broadcast, unchanged); `out_axes` is
    `(Carry, axis)` when f returns `(carry, y)`, `Carry` when it returns the carry alone."""
    return _decorator(_scan, f, length=length, reverse=reverse, unroll=unroll,
                      _split_transpose=_split_transpose, in_axes=in_axes, out_axes=out_axes,
                      transform_metadata=transform_metadata, graph=graph,
                      graph_updates=graph_updates)

def cached_partial(f, *cached_args, graph=None, graph_updates=None):
    """`cached_partial(train_step, model, optimizer)(x, y)`: flax caches the walk over the bound
    nodes; minnx's `jit` already reuses its last walk (fastpath.py), so this only binds them."""
    if graph is False or graph_updates is False:
        raise ValueError("cached_partial is a graph-mode-only API and requires graph_updates=True.")
    if not callable(f):
        raise TypeError(f"minnx.cached_partial expected a function (a jitted step) first, got "
                        f"{type(f).__name__}: write cached_partial(train_step, model, optimizer).")

    @functools.wraps(f)
    def cached(*args, **kwargs):
        return f(*cached_args, *args, **kwargs)
    return cached
