"""Graph mode and tree mode (flax 0.12's `graph=` / `graph_updates=` switches, FLIP 5310), on
minnx and flax side by side: what each mode carries out of a transform, and what it refuses."""
import jax.numpy as jnp
import pytest
from oracle import raise_both, run_both

MODES = [(True, True), (True, False), (False, False)]


def _counter(nnx):
    class Counter(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jnp.ones(2))
            self.count = nnx.Variable(jnp.array(0))
    return Counter()


@pytest.mark.parametrize("graph, graph_updates", MODES)
def test_values_always_come_out_structure_changes_only_with_graph_updates(graph, graph_updates):
    def body(nnx):
        model = _counter(nnx)

        @nnx.jit(graph=graph, graph_updates=graph_updates)
        def step(m):
            m.extra = nnx.Param(jnp.zeros(1))
            m.count[...] += 1
            return m.w[...].sum()
        out = step(model)
        return {"out": out, "extra": hasattr(model, "extra"), "count": model.count[...]}
    out = run_both(body)
    assert out["extra"] == (graph and graph_updates) and int(out["count"]) == 1


@pytest.mark.parametrize("graph, graph_updates", MODES)
def test_the_same_module_passed_twice(graph, graph_updates):
    def body(nnx):
        model = _counter(nnx)

        @nnx.jit(graph=graph, graph_updates=graph_updates)
        def step(a, b):
            a.count[...] += 1
            return b.count[...]
        return [step(model, model), model.count[...]]
    if graph:
        run_both(body)
    else:
        raise_both(body, ValueError,
                   r"Duplicate .*Tree mode \(graph=False\) does not support shared")


@pytest.mark.parametrize("graph, graph_updates", MODES)
def test_returning_an_input(graph, graph_updates):
    def body(nnx):
        model = _counter(nnx)
        out = nnx.jit(lambda m: m, graph=graph, graph_updates=graph_updates)(model)
        return out is model
    if graph and graph_updates:
        assert run_both(body) is True
    else:
        raise_both(body, ValueError, r"Duplicate .*does not support Variable aliasing")


@pytest.mark.parametrize("graph, graph_updates", MODES)
def test_a_new_object_comes_out(graph, graph_updates):
    def body(nnx):
        made = nnx.jit(lambda: nnx.Linear(2, 3, rngs=nnx.Rngs(0)), graph=graph,
                       graph_updates=graph_updates)()
        return {"type": type(made).__name__, "state": nnx.state(made)}
    run_both(body)


@pytest.mark.parametrize("graph, graph_updates", MODES)
def test_grad_of_a_module(graph, graph_updates):
    def body(nnx):
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        grads = nnx.grad(lambda m: m(jnp.ones((1, 2))).sum(), graph=graph,
                         graph_updates=graph_updates)(model)
        return {"type": type(grads).__name__, "state": nnx.state(grads)}
    out = run_both(body)
    assert out["type"] == ("State" if graph and graph_updates else "Linear")


def test_tree_mode_grad_differentiates_every_variable():
    def body(nnx):
        model = _counter(nnx)  # an int Variable cannot be differentiated
        nnx.grad(lambda m: m.w[...].sum(), graph=False)(model)
    raise_both(body, TypeError, "grad requires real- or complex-valued inputs")


def test_diffstate_needs_graph_updates():
    def body(nnx):
        nnx.grad(lambda m: 0.0, argnums=nnx.DiffState(0, nnx.Param), graph=False)
    with pytest.raises(ValueError, match="DiffState needs graph=True and graph_updates=True"):
        import minnx
        body(minnx)


def test_split_and_state_in_tree_mode():
    def body(nnx):
        model = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
        _, state = nnx.split(model, graph=False)
        return {"state": state, "same": nnx.state(model, graph=False)}
    run_both(body)

    def shared(nnx):
        layer = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        nnx.split(nnx.List([layer, layer]), graph=False)
    raise_both(shared, ValueError, r"Duplicate .*Tree mode \(graph=False\)")


def test_switches_as_function_context_manager_and_decorator():
    def body(nnx):
        seen = [nnx.set_graph_mode.current_value()]
        with nnx.set_graph_mode(False):
            seen.append(nnx.set_graph_mode.current_value())
            with nnx.set_graph_updates(False):
                seen.append(nnx.set_graph_updates.current_value())
            seen.append(nnx.set_graph_updates.current_value())
        seen.append(nnx.set_graph_mode.current_value())

        @nnx.set_graph_mode(False)
        def inside():
            return nnx.set_graph_mode.current_value()
        seen.append(inside())
        seen.append(nnx.set_graph_mode.current_value())
        return seen
    assert run_both(body) == [True, False, False, True, True, False, True]


def test_sow_inside_a_tree_mode_jit_is_lost_use_capture():
    def body(nnx):
        class Model(nnx.Module):
            def __call__(self, x):
                self.sow(nnx.Intermediate, "y", x)
                return x
        model = Model()
        nnx.jit(lambda m, x: m(x), graph=False)(model, jnp.ones(2))
        lost = nnx.state(model, nnx.Intermediate)
        _, captured = nnx.jit(lambda m, x: nnx.capture(m, nnx.Intermediate)(x), graph=False)(
            model, jnp.ones(2))
        return {"lost": lost, "captured": captured}
    out = run_both(body)
    assert not out["lost"] and out["captured"]


@pytest.mark.parametrize("graph", [True, False])
def test_vmap_and_scan_in_both_modes(graph):
    def body(nnx):
        @nnx.vmap(in_axes=(None, 0), graph=graph, graph_updates=False)
        def apply(model, x):
            return model(x)
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        ys = apply(model, jnp.ones((4, 2)))

        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0), graph=graph, graph_updates=False)
        def accumulate(total, x):
            return total + x, total
        return {"ys": ys, "scan": accumulate(jnp.zeros(2), jnp.ones((3, 2)))}
    run_both(body)
