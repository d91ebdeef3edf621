"""`capture`, `perturb` and `view` (flax 0.12's functional forms of sow and train/eval), on
minnx and flax side by side."""
import jax.numpy as jnp
from oracle import raise_both, run_both


def _model(nnx):
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(2, 3, rngs=rngs)
            self.inner = nnx.Linear(3, 3, rngs=rngs)

        def __call__(self, x):
            y = self.linear(x)
            self.sow(nnx.Intermediate, "hidden", y)
            self.inner.sow(nnx.Intermediate, "again", y)
            return self.inner(y)
    return Model(nnx.Rngs(0))


def test_capture_returns_what_was_sown_and_leaves_the_model_alone():
    def body(nnx):
        model = _model(nnx)
        out, sown = nnx.capture(model, nnx.Intermediate)(jnp.ones((1, 2)))
        return {"out": out, "sown": sown, "attributes": sorted(vars(model).keys() & {"hidden"}),
                "state": nnx.state(model, nnx.Intermediate)}
    out = run_both(body)
    assert set(out["sown"]) == {"hidden", "inner"} and not out["attributes"]


def test_capture_of_a_function_and_curried_form_and_two_types():
    def body(nnx):
        model = _model(nnx)
        forward = nnx.capture(nnx.Intermediate)(lambda m, x: m(x))
        _, sown = forward(model, jnp.ones((1, 2)))
        _, sown2, nothing = nnx.capture(model, nnx.Intermediate, nnx.Perturbation)(jnp.ones((1, 2)))
        return {"sown": sown, "sown2": sown2, "nothing": nothing}
    run_both(body)


def test_capture_inside_jit():
    def body(nnx):
        model = _model(nnx)
        step = nnx.jit(lambda m, x: nnx.capture(m, nnx.Intermediate)(x))
        return step(model, jnp.ones((1, 2)))
    run_both(body)


def test_perturbations_give_the_gradient_of_an_intermediate():
    def body(nnx):
        class Model(nnx.Module):
            def __init__(self, rngs):
                self.linear = nnx.Linear(2, 2, rngs=rngs)

            def __call__(self, x):
                h = self.perturb("h", self.linear(x))
                return (h ** 2).sum()

        model = Model(nnx.Rngs(0))
        x = jnp.ones((1, 2))
        _, perturbations = nnx.capture(model, nnx.Perturbation)(x)

        def loss(model, perturbations):
            return nnx.capture(model, nnx.Intermediate, init=perturbations)(x)
        (grads, h_grads), _ = nnx.grad(loss, argnums=(0, 1), has_aux=True)(model, perturbations)
        return {"grads": grads, "h grads": h_grads, "expected": 2 * model.linear(x)}
    out = run_both(body)
    assert jnp.allclose(out["h grads"]["h"]["value"], out["expected"])


def test_gradient_of_bare_variables_ignores_the_param_filter():
    def body(nnx):
        state = nnx.State({"a": nnx.Perturbation(jnp.array(2.0)), "b": nnx.Param(jnp.array(1.0))})
        return nnx.grad(lambda s: s["a"][...] * 3 + s["b"][...] * 5)(state)
    run_both(body)


def test_view_with_an_unknown_setting():
    def body(nnx):
        nnx.view(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), no_such_setting=True)
    raise_both(body, ValueError, r"Unused keys found in nnx\.view: \['no_such_setting'\]")


def test_view_sets_dropout_and_batchnorm_modes_and_leaves_the_original():
    def body(nnx):
        class Net(nnx.Module):
            def __init__(self, rngs):
                self.drop = nnx.Dropout(0.5, rngs=rngs)
                self.norm = nnx.BatchNorm(3, rngs=rngs)

        net = Net(nnx.Rngs(0))
        ev = nnx.view(net, deterministic=True, use_running_average=True)
        x = jnp.arange(6.0).reshape(2, 3)
        return {"view": (ev.drop.deterministic, ev.norm.use_running_average),
                "original": (net.drop.deterministic, net.norm.use_running_average),
                "eval output": ev.norm(ev.drop(x)),
                "shared stats": ev.norm.mean is net.norm.mean}
    out = run_both(body)
    assert out["view"] == (True, True) and out["original"] == (False, False)


def test_perturb_outside_capture_keeps_a_zero_perturbation_on_the_module():
    def body(nnx):
        class Model(nnx.Module):
            def __call__(self, x):
                return self.perturb("h", x) * 2
        model = Model()
        model(jnp.ones(2))
        return {"out": model(jnp.arange(2.0)), "state": nnx.state(model, nnx.Perturbation)}
    out = run_both(body)
    assert list(out["state"]) == ["h"]
