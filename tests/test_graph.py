"""The functional API on minnx and flax.nnx side by side: split, merge, update, state, graphdef,
pop, clone, the State helpers, shared references and cycles, and every filter form."""
import jax
import jax.numpy as jnp
import pytest
from oracle import LIBS, run_both

import minnx


def _model(nnx):
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(3, 4, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)
            self.shared = self.linear            # a second reference to the same layer
            self.blocks = nnx.List([nnx.Linear(4, 4, rngs=rngs) for _ in range(2)])
            self.heads = nnx.Dict(a=nnx.Linear(4, 2, rngs=rngs))

        def __call__(self, x):
            x = self.dropout(self.bn(self.shared(x)))
            for block in self.blocks:
                x = nnx.relu(block(x))
            return self.heads["a"](x)
    return Model(nnx.Rngs(0, dropout=1))


def test_split_merge_round_trip_keeps_sharing_and_numbers():
    def body(nnx):
        model = _model(nnx)
        graphdef, state = nnx.split(model)
        again = nnx.merge(graphdef, state)
        x = jnp.ones((2, 3))
        return {"state": state, "out": model(x), "merged_out": again(x),
                "shared": again.shared is again.linear,
                "same_graphdef": nnx.graphdef(again) == graphdef,
                "hashable": hash(graphdef) == hash(nnx.graphdef(again))}
    out = run_both(body)
    assert out["shared"] and out["same_graphdef"] and out["hashable"]
    assert "shared" not in out["state"]  # stored once, under its first path


def test_split_with_filters_and_merge_back():
    def body(nnx):
        model = _model(nnx)
        graphdef, params, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
        again = nnx.merge(graphdef, params, stats, rest)
        return {"params": params, "stats": stats, "rest": rest, "out": again(jnp.ones((2, 3)))}
    run_both(body)


def test_cycles_survive_split_and_merge():
    def body(nnx):
        class Node(nnx.Module):
            def __init__(self):
                self.me = self
                self.w = nnx.Param(jnp.arange(3.0))
        graphdef, state = nnx.split(Node())
        node = nnx.merge(graphdef, state)
        return {"state": state, "cycle": node.me is node}
    assert run_both(body)["cycle"]


def test_state_leaves_are_the_models_variables():
    def body(nnx):
        model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        state = nnx.state(model)
        state["kernel"].value = jnp.zeros((2, 3))  # writing through the State writes the model
        return {"is": state["kernel"] is model.kernel, "kernel": model.kernel,
                "params": nnx.state(model, nnx.Param)}
    assert run_both(body)["is"]


def test_update_after_jax_jit_with_bn_statistics():
    def body(nnx):
        model = _model(nnx)
        graphdef, state = nnx.split(model)

        @jax.jit
        def forward(state, x):
            m = nnx.merge(graphdef, state)
            y = m(x)
            return y, nnx.state(m)

        y, new_state = forward(state, jnp.ones((5, 3)))
        nnx.update(model, new_state)
        return {"y": y, "stats": nnx.state(model, nnx.BatchStat),
                "rngs": nnx.state(model, nnx.RngState)}
    run_both(body)


def test_update_with_several_states_and_pure_dicts():
    def body(nnx):
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        _, params, rest = nnx.split(nnx.Linear(2, 2, rngs=nnx.Rngs(1)), nnx.Param, ...)
        nnx.update(model, params, rest)
        first = nnx.state(model)
        pure = nnx.to_pure_dict(nnx.state(model))
        pure = jax.tree.map(lambda a: a * 2, pure)
        state = nnx.state(model)
        state.replace_by_pure_dict(pure)
        nnx.update(model, state)
        return {"first": first, "doubled": nnx.state(model), "pure_keys": sorted(pure)}
    run_both(body)


def test_pop_removes_and_returns():
    def body(nnx):
        class M(nnx.Module):
            def __init__(self, rngs):
                self.linear = nnx.Linear(2, 2, rngs=rngs)

            def __call__(self, x):
                y = self.linear(x)
                self.sown = self.sow(nnx.Intermediate, "y", y)
                return y

        model = M(nnx.Rngs(0))
        model(jnp.ones((1, 2)))
        first_sow_returned = model.sown
        model(jnp.full((1, 2), 2.0))
        seen = nnx.state(model, nnx.Intermediate)
        popped = nnx.pop(model, nnx.Intermediate)
        return {"seen": seen, "popped": popped, "left": nnx.state(model),
                "has": hasattr(model, "y"), "sow returned": [first_sow_returned, model.sown]}
    out = run_both(body)
    assert len(out["popped"]["y"]["value"]) == 2 and out["has"] is False
    assert out["sow returned"] == [True, True]


def test_pop_removes_from_nested_modules_and_plain_dicts():
    def body(nnx):
        class Inner(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(jnp.ones(2))
                self.seen = nnx.Intermediate(jnp.zeros(2))
                self.log = nnx.data({"step": nnx.Intermediate(jnp.ones(()))})

        class Outer(nnx.Module):
            def __init__(self):
                self.inner = Inner()
                self.seen = nnx.Intermediate(jnp.full(2, 2.0))
        model = Outer()
        popped = nnx.pop(model, nnx.Intermediate)
        return {"popped": popped, "left": nnx.state(model),
                "gone": [hasattr(model, "seen"), hasattr(model.inner, "seen"),
                         "step" in model.inner.log]}
    assert run_both(body)["gone"] == [False, False, False]


def test_clone_is_deep_and_keeps_structure():
    def body(nnx):
        model = _model(nnx)
        copy = nnx.clone(model)
        copy.linear.kernel.value = copy.linear.kernel.value + 1
        return {"orig": nnx.state(model, nnx.Param), "copy": nnx.state(copy, nnx.Param),
                "shared": copy.shared is copy.linear, "distinct": copy.linear is not model.linear}
    out = run_both(body)
    assert out["shared"] and out["distinct"]


def test_state_helpers():
    def body(nnx):
        model = _model(nnx)
        state = nnx.state(model)
        params, rest = nnx.split_state(state, nnx.Param, ...)
        stats = nnx.filter_state(state, nnx.BatchStat)
        merged = nnx.merge_state(params, rest)
        pure = nnx.as_pure(params)
        return {"params": params, "rest": rest, "stats": stats, "merged": merged,
                "pure_is_arrays": all(isinstance(x, jax.Array) for x in jax.tree.leaves(pure)),
                "pure_alias": jax.tree.leaves(nnx.pure(params))[0],
                "method": state.filter(nnx.BatchStat), "method_split": state.split(nnx.Param, ...)}
    assert run_both(body)["pure_is_arrays"]


def test_state_is_a_pytree_with_attribute_access():
    def body(nnx):
        state = nnx.state(_model(nnx), nnx.Param)
        doubled = jax.tree.map(lambda x: 2 * x, state)
        return {"leaves": len(jax.tree.leaves(state)), "doubled": doubled,
                "attr": state.linear.kernel.value, "paths": [jax.tree_util.keystr(p) for p, _ in
                                                             jax.tree_util.tree_flatten_with_path(state)[0]]}
    run_both(body)


FILTERS = {
    "type": lambda nnx: nnx.Param,
    "tag": lambda nnx: "dropout",
    "tag_default": lambda nnx: "default",
    "ellipsis": lambda nnx: ...,
    "true": lambda nnx: True,
    "false": lambda nnx: False,
    "none": lambda nnx: None,
    "all": lambda nnx: nnx.All(nnx.Param, nnx.PathContains("linear")),
    "any": lambda nnx: nnx.Any(nnx.BatchStat, nnx.PathContains("heads")),
    "not": lambda nnx: nnx.Not(nnx.Param),
    "path_contains": lambda nnx: nnx.PathContains("bn"),
    "of_type": lambda nnx: nnx.OfType(nnx.BatchStat),
    "everything": lambda nnx: nnx.Everything(),
    "nothing": lambda nnx: nnx.Nothing(),
    "tuple": lambda nnx: (nnx.BatchStat, nnx.RngState),
    "list": lambda nnx: [nnx.RngKey],
    "function": lambda nnx: (lambda path, x: path[-1] == "kernel"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_form(name):
    def body(nnx):
        model = _model(nnx)
        selected = nnx.state(model, FILTERS[name](nnx))
        return {"paths": sorted("/".join(map(str, p)) for p in _paths(selected)), "state": selected}
    run_both(body)


def _paths(state):
    return [tuple(getattr(k, "key", getattr(k, "idx", k)) for k in p)
            for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]


def test_filter_objects_answer_true_or_false():
    def body(nnx):
        variable = nnx.Param(jnp.ones(2))
        return {name: FILTERS[name](nnx)(("linear", "kernel"), variable)
                for name in ["all", "any", "not", "path_contains", "of_type", "everything",
                             "nothing"]}
    assert run_both(body) == {"all": True, "any": False, "not": False, "path_contains": False,
                              "of_type": False, "everything": True, "nothing": False}


@pytest.mark.parametrize("lib", sorted(LIBS))
def test_filter_objects_are_values_equal_and_hashable(lib):
    # e.g. as part of a static argument of jit, or a key of a cache
    nnx = LIBS[lib]
    forms = {**FILTERS, "with_tag": lambda nnx: nnx.WithTag("dropout")}
    for name in ["all", "any", "not", "path_contains", "of_type", "everything", "nothing",
                 "with_tag"]:
        first, second = forms[name](nnx), forms[name](nnx)
        assert first == second and hash(first) == hash(second), name
        assert len({first, second}) == 1, name


def test_split_filters_must_cover_everything():
    for nnx in LIBS.values():
        with pytest.raises(ValueError):
            nnx.split(_model(nnx), nnx.Param)


def test_graphdef_is_a_static_jit_argument():
    graphdef, state = minnx.split(minnx.Linear(2, 2, rngs=minnx.Rngs(0)))
    traces = []

    @jax.jit
    def f(state):
        traces.append(1)
        return minnx.merge(graphdef, state)(jnp.ones((1, 2)))

    f(state), f(state)
    g = jax.jit(lambda gd, st: minnx.merge(gd, st)(jnp.ones((1, 2))), static_argnums=0)
    assert (g(graphdef, state) == f(state)).all()
    assert len(traces) == 1


def test_modules_are_pytrees():
    def body(nnx):
        model = _model(nnx)
        leaves = jax.tree.leaves(model)
        doubled = jax.tree.map(lambda x: x * 2 if x.dtype == jnp.float32 else x, model)
        return {"n": len(leaves), "type": type(doubled).__name__,
                "kernel": doubled.linear.kernel.value, "shared": doubled.shared is doubled.linear}
    run_both(body)


def test_iter_modules_and_graph():
    def body(nnx):
        model = _model(nnx)
        modules = [("/".join(map(str, p)), type(m).__name__) for p, m in nnx.iter_modules(model)]
        params = sorted("/".join(map(str, p)) for p, v in nnx.iter_graph(model)
                        if isinstance(v, nnx.Param))
        children = [name for name, _ in model.iter_children()]
        return {"modules": sorted(modules), "params": params, "children": sorted(children)}
    run_both(body)


def test_state_methods_filter_split_and_merge():
    def body(nnx):
        model = nnx.BatchNorm(3, rngs=nnx.Rngs(0))
        state = nnx.state(model)
        params, stats = state.split(nnx.Param, nnx.BatchStat)
        # State.merge is a classmethod in flax: `params.merge(stats)` merges `stats` alone
        return {"filter": state.filter(nnx.BatchStat), "params": params, "stats": stats,
                "merged": nnx.State.merge(params, stats), "instance form": params.merge(stats)}
    out = run_both(body)
    assert sorted(out["merged"]) == ["bias", "mean", "scale", "var"]


class Slot:
    """A key-path entry of a kind JAX does not define: a path shows it by its str."""
    def __init__(self, label):
        self.label = label

    def __str__(self):
        return f"slot {self.label}"


class Pair:
    """A pytree registered with keys of its own."""
    def __init__(self, first, second):
        self.first = first
        self.second = second


jax.tree_util.register_pytree_with_keys(
    Pair, lambda pair: (((Slot("a"), pair.first), (Slot("b"), pair.second)), None),
    lambda _, children: Pair(*children))


def test_a_pytree_with_keys_of_its_own_names_paths_by_them():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.pair = nnx.data(Pair(nnx.Param(jnp.ones(2)), nnx.Param(jnp.zeros(2))))
        state = nnx.state(Model())
        return {"paths": [list(path) for path, _ in state.flat_state()], "state": state}
    assert run_both(body)["paths"] == [["pair", "slot a"], ["pair", "slot b"]]


def test_iter_children_gives_the_direct_child_nodes():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self):
                self.encoder = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
                self.blocks = nnx.List([nnx.Linear(2, 2, rngs=nnx.Rngs(1))])
                self.scale = nnx.Param(jnp.ones(1))  # a Variable is a child too
        children = list(nnx.iter_children(Model()))
        return [(name, type(child).__name__) for name, child in children]
    assert run_both(body) == [("blocks", "List"), ("encoder", "Linear"), ("scale", "Param")]
