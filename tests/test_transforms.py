"""Each NNX transform and its options, run on minnx and on flax.nnx side by side."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from oracle import run_both

import minnx

X = jax.random.normal(jax.random.key(0), (4, 3))


def _counter_model(nnx):
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(3, 2, rngs=rngs)
            self.bn = nnx.BatchNorm(2, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)
            self.calls = nnx.Variable(jnp.array(0))

        def __call__(self, x):
            self.calls[...] += 1
            return self.dropout(self.bn(self.linear(x)))
    return Model(nnx.Rngs(0, dropout=1))


# -- jit ---------------------------------------------------------------------------------
def test_jit_carries_mutations_out():
    def body(nnx):
        model = _counter_model(nnx)
        f = nnx.jit(lambda m, x: m(x))
        ys = [f(model, X), f(model, X)]
        return {"ys": ys, "state": nnx.state(model)}
    out = run_both(body)
    assert int(out["state"]["calls"]["value"]) == 2


def test_jit_shared_references_across_arguments():
    def body(nnx):
        model = _counter_model(nnx)

        @nnx.jit
        def f(model, linear, x):
            linear.kernel[...] = linear.kernel[...] * 2  # the same layer as model.linear
            return model(x)
        y = f(model, model.linear, X)
        return {"y": y, "kernel": model.linear.kernel, "same": model.linear is model.linear}
    run_both(body)


def test_jit_returns_the_callers_objects_and_new_ones():
    def body(nnx):
        model = _counter_model(nnx)
        same = nnx.jit(lambda m: m)(model) is model
        sub = nnx.jit(lambda m: m.linear)(model) is model.linear
        made = nnx.jit(lambda: nnx.Linear(2, 3, rngs=nnx.Rngs(0)))()
        return {"same": same, "sub": sub, "made": nnx.state(made), "type": type(made).__name__}
    out = run_both(body)
    assert out["same"] and out["sub"]


def test_jit_structure_changes_come_out():
    def body(nnx):
        model = _counter_model(nnx)

        @nnx.jit
        def f(model, x):
            model.extra = nnx.Param(jnp.ones(2))
            y = model(x)
            model.sow(nnx.Intermediate, "y", y)
            return y
        f(model, X)
        return {"extra": model.extra, "sown": nnx.state(model, nnx.Intermediate),
                "calls": model.calls}
    run_both(body)


def test_jit_static_argnums_and_argnames():
    def body(nnx):
        model = _counter_model(nnx)

        def f(model, x, n, *, scale):
            for _ in range(n):  # a Python loop over a static int
                x = x * scale
            return model.linear(x)
        g = nnx.jit(f, static_argnums=2, static_argnames="scale")
        return [g(model, X, 2, scale=3.0), g(model, X, 3, scale=0.5)]
    run_both(body)


@pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")  # CPU cannot donate
def test_jit_donate_and_shardings():
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def body(nnx):
        model = _counter_model(nnx)
        f = nnx.jit(lambda m, x: m.linear(x), donate_argnums=1, in_shardings=(sharding, sharding),
                    out_shardings=sharding)
        y = f(model, jnp.array(X))
        return {"y": y, "sharding": y.sharding == sharding}
    assert run_both(body)["sharding"]


def test_jit_donates_the_argument_named_after_static_ones():
    def body(nnx):
        kept, donated = jnp.ones(3), jnp.ones(3)
        nnx.jit(lambda a, b, c, d: b * d, static_argnums=(0, 2), donate_argnums=3)(
            "static", kept, "static", donated)
        return {"deleted": [kept.is_deleted(), donated.is_deleted()]}
    assert run_both(body)["deleted"] == [False, True]


def test_jit_on_a_method():
    def body(nnx):
        class M(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.ones(3))

            @nnx.jit
            def step(self, x):
                self.w[...] += x
                return self.w[...].sum()
        m = M()
        return [m.step(jnp.ones(3)), m.step(jnp.ones(3)), m.w]
    run_both(body)


def test_jit_python_if_on_a_traced_value_keeps_jax_error_and_adds_a_hint():
    @minnx.jit
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(jax.errors.TracerBoolConversionError) as info:
        f(jnp.array(1.0))
    assert any("minnx hint" in note and "static_argnums" in note for note in info.value.__notes__)


def test_jit_keeps_compiled_code_across_calls():
    traces = []

    @minnx.jit
    def f(model, x):
        traces.append(1)
        return model(x)
    model = minnx.Linear(3, 2, rngs=minnx.Rngs(0))
    for _ in range(5):
        f(model, X)
    assert len(traces) == 1


def test_jit_traces_again_when_a_setting_changes_type():
    # A setting of 1 and one of 1.0 are equal in Python, but `x * n` has another dtype. minnx's
    # GraphDef tells them apart, so jit gives what the eager call gives. (flax 0.12.8 reuses the
    # int trace here and returns int32 for the 1.0 model: not copied.)
    class Scale(minnx.Module):
        def __init__(self, n):
            self.n = n

    def scaled(model, x):
        return x * model.n
    jitted = minnx.jit(scaled)
    x = jnp.arange(3)
    for n in [1, 1.0, True, 1]:
        assert jitted(Scale(n), x).dtype == scaled(Scale(n), x).dtype, n


# -- grad ------------------------------------------------------------------------------------
def test_grad_argnums_has_aux_and_value():
    def body(nnx):
        model = _counter_model(nnx)

        def loss(model, x, w):
            y = model(x)
            return (y ** 2).mean() * w, y.sum()
        g1 = nnx.grad(loss, has_aux=True)(model, X, 2.0)
        g2 = nnx.grad(loss, argnums=(0, 1), has_aux=True)(model, X, 2.0)
        v = nnx.value_and_grad(loss, argnums=1, has_aux=True)(model, X, 2.0)
        return {"g1": g1, "g2": g2, "v": v, "stats": nnx.state(model, nnx.BatchStat),
                "calls": model.calls}
    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert int(out["calls"]["value"]) == 3  # mutations inside grad come out


def test_grad_with_diffstate_filter():
    def body(nnx):
        model = _counter_model(nnx)

        def loss(model):
            return (model(X) ** 2).sum()
        linear_params = nnx.All(nnx.Param, nnx.PathContains("linear"))
        only_linear = nnx.grad(loss, argnums=nnx.DiffState(0, linear_params))(model)
        return only_linear
    out = run_both(body, rtol=1e-5)
    assert list(out) == ["linear"]


def test_grad_of_plain_arrays():
    def body(nnx):
        return nnx.grad(lambda x: (x ** 3).sum())(X)
    run_both(body)


def test_optimizer_adam_with_step_and_state():
    # No BatchNorm here: after it a bias has a gradient of ~1e-7 (rounding), which adam would
    # scale up to a full step, so the two libraries' rounding would decide the result.
    def body(nnx):
        model = nnx.Sequential(nnx.Linear(3, 8, rngs=nnx.Rngs(0)), nnx.relu,
                               nnx.Linear(8, 2, rngs=nnx.Rngs(1)))
        optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer, x):
            loss, grads = nnx.value_and_grad(lambda m: (m(x) ** 2).mean())(model)
            optimizer.update(model, grads)
            return loss
        losses = [step(model, optimizer, X) for _ in range(3)]
        return {"losses": losses, "params": nnx.state(model, nnx.Param), "step": optimizer.step,
                "opt": jax.tree.leaves(nnx.state(optimizer, nnx.OptVariable))}
    out = run_both(body, rtol=1e-5, atol=1e-6)
    assert int(out["step"]["value"]) == 3


def test_metrics():
    def body(nnx):
        metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average("loss"))
        logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
        labels = jnp.array([1, 1, 1])
        metrics.update(loss=jnp.array([1.0, 2.0]), logits=logits, labels=labels)
        first = metrics.compute()

        @nnx.jit
        def update(metrics, loss):
            metrics.update(loss=loss, logits=logits, labels=labels)
        update(metrics, jnp.array([4.0]))
        second = metrics.compute()
        metrics.reset()
        return {"first": first, "second": second, "reset": metrics.compute()}
    out = run_both(body)
    assert np.isclose(out["first"]["accuracy"], 2 / 3) and np.isnan(out["reset"]["loss"])


# -- vmap ------------------------------------------------------------------------------------
def test_vmap_ensemble_creation_and_broadcast():
    def body(nnx):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make(rngs):
            return nnx.Linear(3, 2, rngs=rngs)
        ensemble = make(nnx.Rngs(0))
        per_member = nnx.vmap(lambda m, x: m(x), in_axes=(0, None))(ensemble, X)
        shared = nnx.Linear(3, 2, rngs=nnx.Rngs(1))
        per_input = nnx.vmap(lambda m, x: m(x), in_axes=(None, 0), out_axes=1)(shared, X)
        sized = nnx.vmap(lambda: jnp.ones(2), axis_size=4)()
        return {"state": nnx.state(ensemble), "member": per_member, "input": per_input,
                "sized": sized}
    run_both(body)


def test_vmap_carries_per_member_mutations():
    def body(nnx):
        @nnx.split_rngs(splits=2)
        @nnx.vmap(in_axes=(0,))
        def make(rngs):
            return nnx.BatchNorm(3, rngs=rngs)
        bns = make(nnx.Rngs(0))
        xs = jnp.stack([X, X * 2 + 1])
        ys = nnx.vmap(lambda m, x: m(x))(bns, xs)
        return {"ys": ys, "stats": nnx.state(bns, nnx.BatchStat)}
    run_both(body, rtol=1e-5, atol=1e-5)


def test_split_rngs_context_manager_restores():
    def body(nnx):
        rngs = nnx.Rngs(0)
        with nnx.split_rngs(rngs, splits=4):
            inside = rngs.default.key.value.shape
            keys = nnx.vmap(lambda r: r(), in_axes=0)(rngs)
        return {"inside": inside, "after": rngs.default.key.value.shape, "keys": keys,
                "next": rngs()}
    out = run_both(body)
    assert out["inside"] == (4,) and out["after"] == ()


# -- scan and loops ----------------------------------------------------------------------------
def test_scan_carry_in_and_out_axes_length_reverse():
    def body(nnx):
        cell = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
        xs = jax.random.normal(jax.random.key(2), (2, 5, 3))

        def step(h, cell, x):
            h = jnp.tanh(cell(h) + x)
            return h, h.sum(-1)
        h0 = jnp.zeros((2, 3))
        a = nnx.scan(step, in_axes=(nnx.Carry, None, 1), out_axes=(nnx.Carry, 1))(h0, cell, xs)
        b = nnx.scan(step, in_axes=(nnx.Carry, None, 1), out_axes=(nnx.Carry, 0),
                     reverse=True)(h0, cell, xs)
        c = nnx.scan(lambda h: (h + 1, h), in_axes=nnx.Carry, out_axes=(nnx.Carry, 0), length=3)(h0)

        def loss(cell):  # jax.lax.scan's _split_transpose, passed on: the same gradients
            scanned = nnx.scan(step, in_axes=(nnx.Carry, None, 1), out_axes=(nnx.Carry, 1),
                               _split_transpose=True)
            return scanned(h0, cell, xs)[1].sum()
        return {"a": a, "b": b, "c": c, "grads": nnx.grad(loss)(cell)}
    run_both(body, rtol=1e-5)


def test_scan_without_a_carry():
    def body(nnx):
        scaled = nnx.scan(lambda w, x: x * w, in_axes=(None, 0), out_axes=1)
        return scaled(jnp.arange(2.0), jnp.ones((4, 2)))
    assert run_both(body).shape == (2, 4)


def test_scan_with_a_module_as_carry():
    def body(nnx):
        counter = nnx.Variable(jnp.array(0.0))
        model = nnx.Linear(3, 3, rngs=nnx.Rngs(0))

        def step(model, x):
            model.kernel[...] = model.kernel[...] + x.sum()
            return model, x * 2

        model, ys = nnx.scan(step, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))(model, X)
        return {"kernel": model.kernel, "ys": ys, "counter": counter}
    run_both(body, rtol=1e-5)


def test_loops_and_conditionals():
    def body(nnx):
        model = _counter_model(nnx)
        model.eval()

        def grow(i, m):
            m.linear.bias[...] += i
            return m
        nnx.fori_loop(0, 4, grow, model)
        nnx.while_loop(lambda m: m.calls[...] < 3, lambda m: (m(X), m)[1], model)

        def up(m, x):
            m.linear.bias[...] += 1.0
            return x.sum()

        def down(m, x):
            m.linear.bias[...] -= 1.0
            return -x.sum()
        c = [nnx.cond(p, up, down, model, X) for p in (True, False, True)]
        s = nnx.switch(1, [up, down, up], model, X)
        return {"bias": model.linear.bias, "calls": model.calls, "c": c, "s": s}
    out = run_both(body)
    assert int(out["calls"]["value"]) == 3


def test_loops_write_back_plain_array_attributes():
    def body(nnx):
        class Counter(nnx.Module):
            def __init__(self):
                self.total = jnp.zeros(2)  # an array attribute, not a Variable
                self.steps = nnx.data({"n": jnp.array(0)})

        def add(i, m):
            m.total = m.total + i
            m.steps["n"] = m.steps["n"] + 1
            return m
        looped = Counter()
        nnx.fori_loop(0, 4, add, looped)
        waited = Counter()
        nnx.while_loop(lambda m: m.steps["n"] < 3, lambda m: add(2.0, m), waited)
        return {"fori": [looped.total, looped.steps], "while": [waited.total, waited.steps]}
    out = run_both(body)
    assert out["fori"][0].tolist() == [6.0, 6.0]


def test_remat_and_eval_shape():
    def body(nnx):
        model = _counter_model(nnx)
        y = nnx.remat(lambda m, x: m(x))(model, X)
        g = nnx.grad(lambda m: nnx.remat(lambda m: (m(X) ** 2).sum())(m))(model)
        abstract = nnx.eval_shape(lambda: nnx.Linear(3, 4, rngs=nnx.Rngs(0)))
        return {"y": y, "g": g, "calls": model.calls,
                "abstract": (abstract.kernel.value.shape, str(abstract.kernel.value.dtype)),
                "is_abstract": isinstance(abstract.kernel.value, jax.ShapeDtypeStruct)}
    assert run_both(body, rtol=1e-5)["is_abstract"]


def test_scan_broadcast_argument_changed_inside_is_an_error():
    model = minnx.Linear(3, 3, rngs=minnx.Rngs(0))

    def step(h, model, x):
        model.bias[...] += 1.0
        return h, x
    with pytest.raises(ValueError, match=r"minnx\.scan: argument 1 is broadcast"):
        minnx.scan(step, in_axes=(minnx.Carry, None, 0))(jnp.zeros(3), model, X)


def test_mutation_inside_plain_jax_grad_is_lost_as_in_flax():
    # jax.grad receives the Module as a pytree: a copy. A change made to it is lost, on both.
    def body(nnx):
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

        def loss(model):
            model.kernel[...] = model.kernel[...] * 0
            return model(X).sum()
        grads = jax.grad(loss)(model)
        return {"kernel": model.kernel, "grad type": type(grads).__name__}
    out = run_both(body)
    assert np.abs(out["kernel"]["value"]).sum() > 0


def test_jit_replans_when_the_arguments_change_kind():
    # minnx.jit reuses its last plan while the same objects come back; anything else must re-plan.
    @minnx.jit
    def f(a, b):
        left = a.kernel[...] if isinstance(a, minnx.Linear) else a
        right = b if not isinstance(b, minnx.Linear) else b.kernel[...]
        return left.sum() + right.sum()
    m1, m2 = minnx.Linear(3, 2, rngs=minnx.Rngs(0)), minnx.Linear(3, 2, rngs=minnx.Rngs(1))
    x = jnp.ones((3, 2))
    calls = [(m1, x), (m1, x), (m2, x), (x, m1), (m1, m2), (m1, x)]
    expected = [float(jnp.sum(a.kernel[...] if isinstance(a, minnx.Linear) else a)
                      + jnp.sum(b.kernel[...] if isinstance(b, minnx.Linear) else b))
                for a, b in calls]
    assert [float(f(a, b)) for a, b in calls] == pytest.approx(expected)


def test_jit_static_argnames_applies_to_an_argument_passed_by_position():
    def body(nnx):
        def scale(x, mode):
            return x * 2 if mode == "double" else x
        step = nnx.jit(scale, static_argnames="mode")
        return [step(jnp.ones(2), "double"), step(jnp.ones(2), mode="same")]
    run_both(body)


def test_an_attribute_deleted_inside_jit_may_come_back_as_data():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.a = 1  # static: configuration
                self.w = nnx.Param(jnp.ones(2))

        model = Model()

        @nnx.jit
        def drop(m):
            del m.a
        drop(model)
        gone = hasattr(model, "a")
        model.a = jnp.zeros(2)  # a new attribute: an array makes it data, as any first value
        return {"gone": not gone, "state": nnx.state(model)}
    out = run_both(body)
    assert out["gone"] is True


@pytest.mark.parametrize("in_a_tuple", [False, True])
def test_jit_swapping_submodules_and_variables_swaps_the_objects(in_a_tuple):
    def body(nnx):
        class Pair(nnx.Module):
            def __init__(self, rngs):
                self.a = nnx.Linear(2, 2, rngs=rngs)
                self.b = nnx.Linear(2, 2, rngs=rngs)
                self.w1 = nnx.Param(jnp.ones(1))
                self.w2 = nnx.Param(jnp.zeros(1))

        @nnx.jit
        def swap(tree):
            m = tree[0]["pair"] if in_a_tuple else tree
            m.a, m.b = m.b, m.a  # the same structure: only which object is where changes
            m.w1, m.w2 = m.w2, m.w1
        pair = Pair(nnx.Rngs(0))
        a, b, w1, w2 = pair.a, pair.b, pair.w1, pair.w2
        swap(({"pair": pair},) if in_a_tuple else pair)
        once = [pair.a is b, pair.b is a, pair.w1 is w2, pair.w2 is w1]
        swap(({"pair": pair},) if in_a_tuple else pair)  # again, on the repeat-call path
        return {"once": once, "twice": [pair.a is a, pair.b is b, pair.w1 is w1],
                "w1": pair.w1}
    out = run_both(body)
    assert out["once"] == [True] * 4 and out["twice"] == [True] * 3
