"""Options of the public API that a one-line bug could break silently, each run on minnx and
flax side by side (the list the rebuild issue's mutation run found uncovered)."""
import jax
import jax.numpy as jnp
import optax
import pytest

from oracle import raise_both, run_both


def _block(nnx):
    class Block(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(2, 2, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)
            self.bn = nnx.BatchNorm(2, rngs=rngs)
            self.inner = nnx.Sequential(nnx.Dropout(0.1, rngs=rngs))
    return Block(nnx.Rngs(0, dropout=1))


def test_set_attributes_with_filters_and_not_found():
    def body(nnx):
        block = _block(nnx)
        block.set_attributes(nnx.Dropout, deterministic=True)
        only_dropouts = [block.dropout.deterministic, block.inner.layers[0].deterministic,
                         block.bn.use_running_average]
        block.set_attributes(nnx.PathContains("inner"), deterministic=False)
        inner_only = [block.dropout.deterministic, block.inner.layers[0].deterministic]
        block.set_attributes(use_running_average=True, missing=3, raise_if_not_found=False)
        return {"only dropouts": only_dropouts, "inner only": inner_only,
                "bn": block.bn.use_running_average}
    out = run_both(body)
    assert out["only dropouts"] == [True, True, False] and out["inner only"] == [True, False]
    raise_both(lambda nnx: _block(nnx).set_attributes(missing=3), ValueError,
               r"Could not find at least one instance of the following attributes: \['missing'\]")


def test_rngs_fork_with_split_and_stream_split():
    def body(nnx):
        rngs = nnx.Rngs(0, dropout=1)
        forked = rngs.fork(split={"dropout": 3, ...: None})
        whole = rngs.fork(split=2)
        stream = rngs.params.split(4)
        return {"forked": [forked.default.key[...], forked.dropout.key[...]],
                "whole": whole.dropout.key[...], "stream": stream.key[...],
                "counts after": [rngs.default.count[...], rngs.dropout.count[...]]}
    out = run_both(body)
    assert out["forked"][1][1].shape == (3, 2) and out["stream"][1].shape == (4, 2)


@pytest.mark.parametrize("policy", ["scalars_only", "match_shape", "custom"])
def test_reseed_policies(policy):
    def body(nnx):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=0, out_axes=0)
        def make(rngs):
            return nnx.Dropout(0.5, rngs=rngs)
        layers = make(nnx.Rngs(dropout=0))
        plain = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=0))

        def halve(path, key, shape):
            return jax.random.split(key, shape) if shape else key
        chosen = halve if policy == "custom" else policy
        nnx.reseed(plain, dropout=5, policy=chosen)
        if policy != "scalars_only":
            nnx.reseed(layers, dropout=5, policy=chosen)
        return [plain.rngs.key[...], layers.rngs.key[...], layers.rngs.count[...]]
    run_both(body)

    def split_stream(nnx):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=0, out_axes=0)
        def make(rngs):
            return nnx.Dropout(0.5, rngs=rngs)
        nnx.reseed(make(nnx.Rngs(dropout=0)), dropout=5)
    raise_both(split_stream, ValueError, r"Cannot reseed the stream at .* \(it was split\)")


@pytest.mark.parametrize("squeeze", [False, True])
def test_split_rngs_only_and_squeeze(squeeze):
    def body(nnx):
        rngs = nnx.Rngs(params=0, dropout=1)
        with nnx.split_rngs(rngs, splits=1 if squeeze else 4, only="dropout", squeeze=squeeze):
            inside = [rngs.params.key[...], rngs.dropout.key[...], rngs.dropout.count[...]]
        after = [rngs.params.key[...], rngs.dropout.key[...], rngs.dropout.count[...]]
        return {"inside": inside, "after": after}
    out = run_both(body)
    assert out["inside"][0][1].shape == (2,)  # params was not split
    assert out["inside"][1][1].shape == ((2,) if squeeze else (4, 2))


def test_split_rngs_only_needs_the_filter_to_select_key_and_count():
    # a stream is split only if `only` selects both its key and its count
    def body(nnx):
        rngs = nnx.Rngs(params=0, dropout=1)
        shapes = {}
        for name, only in [("key path only", nnx.PathContains("key")),
                           ("both", nnx.Any(nnx.PathContains("key"), nnx.PathContains("count"))),
                           ("function", lambda path, x: "dropout" in path)]:
            with nnx.split_rngs(rngs, splits=3, only=only):
                shapes[name] = [rngs.params.key.shape, rngs.dropout.key.shape]
        return shapes
    out = run_both(body)
    assert out["key path only"] == [(), ()] and out["both"] == [(3,), (3,)]


def test_split_rngs_squeeze_needs_one_split():
    def body(nnx):
        nnx.split_rngs(nnx.Rngs(0), splits=4, squeeze=True)
    raise_both(body, ValueError, "squeeze=True is only supported for splits=1")


def test_eval_shape_with_modules_changes_nothing():
    def body(nnx):
        model = _block(nnx)
        before = nnx.state(model)
        shapes = nnx.eval_shape(lambda m, x: m.linear(x), model, jnp.ones((3, 2)))
        abstract = nnx.eval_shape(lambda: nnx.Linear(2, 5, rngs=nnx.Rngs(0)))
        return {"out": (shapes.shape, str(shapes.dtype)), "abstract kernel": abstract.kernel.shape,
                "model unchanged": before, "now": nnx.state(model)}
    out = run_both(body)
    assert out["out"][0] == (3, 2)


def test_accuracy_threshold_and_metric_masks():
    def body(nnx):
        binary = nnx.metrics.Accuracy(threshold=0.5)
        binary.update(logits=jnp.array([0.2, 0.7, 0.9, 0.1]), labels=jnp.array([0, 1, 0, 0]))
        average = nnx.metrics.Average()
        average.update(values=jnp.array([1.0, 2.0, 10.0]), mask=jnp.array([True, True, False]))
        multi = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), acc=nnx.metrics.Accuracy())
        logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
        multi.update(loss=jnp.array([1.0, 3.0, 5.0]), logits=logits, labels=jnp.array([1, 1, 1]),
                     mask={"loss": jnp.array([1, 1, 0]), "acc": jnp.array([1, 0, 1])})
        return [binary.compute(), average.compute(), multi.compute()]
    out = run_both(body)
    assert out[1] == pytest.approx(1.5)


def test_optimizer_update_passes_keyword_arguments_to_optax():
    def body(nnx):
        model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
        x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))

        def loss(m):
            return ((m(x) - y) ** 2).mean()
        tx = optax.chain(optax.sgd(0.1), optax.scale_by_zoom_linesearch(max_linesearch_steps=5))
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        value, grads = nnx.value_and_grad(loss)(model)
        graphdef, _, rest = nnx.split(model, nnx.Param, ...)

        def value_fn(params):
            return loss(nnx.merge(graphdef, params, rest))
        optimizer.update(model, grads, value=value, grad=grads, value_fn=value_fn)
        return {"kernel": model.kernel, "step": optimizer.step}
    run_both(body, rtol=1e-5)


def test_graphdef_apply_calls_a_method():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                self.linear = nnx.Linear(2, 3, rngs=rngs)
                self.calls = nnx.Variable(jnp.array(0))

            def encode(self, x):
                self.calls[...] += 1
                return self.linear(x) * 2
        graphdef, state = nnx.split(Model(nnx.Rngs(0)))
        y, (graphdef2, new_state) = graphdef.apply(state).encode(jnp.ones((1, 2)))
        return {"y": y, "new state": new_state, "same graphdef": graphdef2 == graphdef}
    run_both(body)


def test_list_slicing_insert_delete_and_append():
    def body(nnx):
        layers = nnx.List([nnx.Linear(1, 1, rngs=nnx.Rngs(i)) for i in range(4)])
        sliced = layers[1:3]
        layers.insert(1, nnx.relu)
        layers.insert(-1, nnx.Linear(1, 1, rngs=nnx.Rngs(9)))
        del layers[0]
        layers.append(nnx.data([jnp.ones(2)]))
        kinds = [type(x).__name__ for x in layers]
        return {"sliced": [type(x).__name__ for x in sliced], "kinds": kinds,
                "state": nnx.state(layers), "len": len(layers), "negative": layers[-2].kernel}
    out = run_both(body)
    assert out["len"] == 6 and out["kinds"][-1] == "list"


def test_dict_is_a_mapping():
    def body(nnx):
        heads = nnx.Dict(a=nnx.Linear(1, 2, rngs=nnx.Rngs(0)), b=nnx.relu)
        heads["c"] = nnx.Linear(2, 1, rngs=nnx.Rngs(1))
        del heads["b"]
        return {"keys": list(heads), "len": len(heads), "in": ["a" in heads, "b" in heads],
                "items": [key for key, _ in heads.items()], "attribute": heads.c.kernel,
                "state": nnx.state(heads), "equal to itself": heads == heads}
    out = run_both(body)
    assert out["keys"] == ["a", "c"] and out["len"] == 2
    raise_both(lambda nnx: nnx.Dict(a=1)["b"], KeyError)
    raise_both(lambda nnx: nnx.Dict(a=1).__delitem__("b"), KeyError)
