"""Variables on minnx and flax.nnx side by side: reading and writing, metadata, arithmetic,
`__jax_array__`, subclasses, and the Variable types."""
import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import raise_both, run_both

import minnx


def test_read_write_forms():
    def body(nnx):
        v = nnx.Param(jnp.arange(4.0))
        reads = [v[...], v.value, v.get_value(), v[1:3]]
        v[...] = jnp.ones(4)
        after_item = v[...]
        v.value = jnp.full(4, 2.0)
        after_value = v[...]
        v.set_value(jnp.zeros(4))
        after_set = v[...]
        v[2] = 7.0
        return {"reads": reads, "item": after_item, "value": after_value, "set": after_set,
                "index": v[...]}
    run_both(body)


def test_metadata_and_replace():
    def body(nnx):
        v = nnx.Param(jnp.ones(2), sharding_note="rows", trainable=True)
        meta = {k: v.get_metadata()[k] for k in ("sharding_note", "trainable")}
        w = v.replace(jnp.zeros(2))
        return {"meta": meta, "attr": v.sharding_note, "replaced": w[...], "kept": w.sharding_note,
                "type": type(w).__name__, "original": v[...]}
    run_both(body)


def test_arithmetic_and_jax_array():
    def body(nnx):
        v = nnx.Param(jnp.array([1.0, -2.0, 3.0]))
        m = nnx.Param(jnp.eye(3))
        return {"add": v + 1, "radd": 1 + v, "mul": v * v, "sub": 2 - v, "div": v / 2,
                "pow": v ** 2, "neg": -v, "abs": abs(v), "matmul": m @ v,
                "rmatmul": jnp.ones(3) @ m, "jnp": jnp.sin(v), "sum": jnp.sum(v), "shape": v.shape,
                "dtype": str(v.dtype), "len": len(v), "mod": v % 2, "rmod": 7 % v,
                "floordiv": v // 2, "rfloordiv": 7 // v, "rpow": 2 ** v}
    run_both(body)


def test_python_number_conversions():
    def body(nnx):
        v = nnx.Param(jnp.array(2.5))
        return {"float": float(v), "int": int(v), "types": [type(float(v)).__name__,
                                                            type(int(v)).__name__]}
    assert run_both(body) == {"float": 2.5, "int": 2, "types": ["float", "int"]}


def test_comparisons_as_flax():
    # `==` compares the values elementwise; `!=` is `not ==` (an array's truth value is
    # ambiguous); flax defines no ordering, nor a truth value but `len`'s
    def body(nnx):
        v = nnx.Param(jnp.array([1.0, 2.0, 3.0]))
        scalar = nnx.Param(jnp.array(1.0))
        return {"eq": v == jnp.array([1.0, 0.0, 3.0]), "ne": [scalar != 1.0, scalar != 2.0],
                "bool": bool(v)}
    run_both(body)
    raise_both(lambda nnx: nnx.Param(jnp.arange(3.0)) != jnp.zeros(3), ValueError, "ambiguous")
    raise_both(lambda nnx: bool(nnx.Param(jnp.array(1.0))), TypeError, "unsized")
    for compare in [operator.lt, operator.le, operator.gt, operator.ge]:
        raise_both(lambda nnx: compare(nnx.Param(jnp.ones(2)), 0), TypeError,
                   "not supported between instances of 'Param' and 'int'")


def test_set_metadata_forms_and_wrong_calls():
    def body(nnx):
        v = nnx.Param(jnp.ones(2), note="a")
        v.set_metadata("note", "b")
        by_name = v.get_metadata("note")
        v.set_metadata(note="c", extra=1)
        by_keyword = [v.note, v.extra]
        v.set_metadata({"note": "d"})
        return {"name": by_name, "keyword": by_keyword, "replaced": v.note,
                "extra kept": hasattr(v, "extra")}
    run_both(body)
    raise_both(lambda nnx: nnx.Param(jnp.ones(2)).set_metadata({"note": "d"}, extra=1),
               TypeError, "set_metadata")
    raise_both(lambda nnx: nnx.Param(jnp.ones(2)).set_metadata(), TypeError, "set_metadata")


def test_in_place_update_forms():
    def body(nnx):
        v = nnx.Variable(jnp.array(0))
        v.value += 1
        v[...] += 2
        return v[...]
    assert int(run_both(body)) == 3


def test_subclass_and_types():
    def body(nnx):
        class Counter(nnx.Variable):
            pass

        class Block(nnx.Module):
            def __init__(self):
                self.count = Counter(jnp.array(0))
                self.w = nnx.Param(jnp.ones(2))
                self.stat = nnx.BatchStat(jnp.zeros(2))
                self.cache = nnx.Cache(jnp.zeros(1))
                self.inter = nnx.Intermediate(jnp.zeros(1))

        block = Block()
        by_type = {t.__name__: sorted(nnx.state(block, t).keys())
                   for t in (Counter, nnx.Param, nnx.BatchStat, nnx.Cache, nnx.Intermediate,
                             nnx.Variable)}
        subclasses = [issubclass(t, nnx.RngState) for t in (nnx.RngKey, nnx.RngCount)]
        return {"by_type": by_type, "sub": subclasses}
    run_both(body)


def test_variable_is_a_pytree():
    def body(nnx):
        v = nnx.Param(jnp.ones(3))
        doubled = jax.tree.map(lambda x: 2 * x, v)
        return {"leaves": jax.tree.leaves(v), "type": type(doubled).__name__, "value": doubled[...]}
    run_both(body)


def test_non_array_values():
    def body(nnx):
        v = nnx.Variable(3)
        before = v.get_value()
        v.set_value(4)
        return {"before": before, "after": v.get_value(),
                "array": np.asarray(nnx.Param(jnp.ones(2)))}
    run_both(body)

    def subscript(nnx):
        nnx.Variable(3)[...]
    raise_both(subscript, TypeError, "not subscriptable")


@pytest.mark.parametrize("name", ["Param", "BatchStat", "Cache", "Intermediate", "RngState",
                                  "RngKey", "RngCount", "Variable"])
def test_variable_types_exist_with_flax_names(name):
    from flax import nnx
    ours, theirs = getattr(minnx, name), getattr(nnx, name)
    ours_bases = [c.__name__ for c in ours.__mro__ if c.__name__ in dir(minnx)]
    theirs_bases = [c.__name__ for c in theirs.__mro__
                    if c.__name__ in dir(nnx) and c.__name__ in dir(minnx)]
    assert ours_bases == theirs_bases
