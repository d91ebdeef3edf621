"""The checks of exercises 4 (solutions/04_nnx_vs_jax_transforms.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap

import pytest

from exercise_harness import libraries, run_exercise, shared_tests

NB = "04_nnx_vs_jax_transforms"
NUMBERS = ["4.1", "4.2", "4.3", "4.4"]


def function(signature, body, decorator=""):
    body = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"{decorator}def {signature}:\n{body}\n"


def lines(*parts):
    """One body from pieces written at different indents."""
    return "\n".join(textwrap.dedent(part).strip() for part in parts)


def step(body):
    return (function("nnx_step(model, x, y, lr)", body)
            + "\nnnx_step = nnx.jit(nnx_step, static_argnums=3)\n")


def pure(body):
    return function("pure_step(graphdef, state, x, y)", body, decorator="@jax.jit\n")


def leaky(body):
    return ("def leaky(x, slope):\n    if x > 0:\n        return x\n    return slope * x\n\n"
            + function("leaky_jittable(x, slope)", body))


SGD_UPDATE = """
    params = nnx.as_pure(nnx.state(model, nnx.Param))
    nnx.update(model, jax.tree.map(lambda p, g: p - {lr} * g, params, grads))
"""

WRONG = [
    ("4.1", "the learning rate hard-coded", [step(lines("""
        loss, grads = nnx.value_and_grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="0.1"), "return loss"))], "lr=0.03: after two steps"),
    ("4.1", "a step up the gradient", [step(lines("""
        loss, grads = nnx.value_and_grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="-lr"), "return loss"))], "lr=0.1: after two steps"),
    ("4.1", "jax.grad on the Module", [step(lines("""
        loss, grads = jax.value_and_grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="lr"), "return loss"))], "raised"),
    ("4.1", "the loss not returned", [step(lines("""
        grads = nnx.grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="lr")))], "it returned .None"),
    ("4.2", "only the state returned", [pure(lines("""
        model = nnx.merge(graphdef, state)
        grads = nnx.grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="0.1"), "return nnx.state(model)"))],
     r"return nnx.split\(model\)"),
    ("4.2", "the update forgotten", [pure("""
        model = nnx.merge(graphdef, state)
        grads = nnx.grad(mse)(model, x, y)
        return nnx.split(model)
        """)], "after three steps"),
    ("4.2", "jax.grad on the merged Module", [pure(lines("""
        model = nnx.merge(graphdef, state)
        grads = jax.grad(mse)(model, x, y)
        """, SGD_UPDATE.format(lr="0.1"), "return nnx.split(model)"))], "raised"),
    ("4.3", "max(x, slope * x)", [leaky("return jnp.maximum(x, slope * x)")],
     r"slope 2.0: .*right only for slopes up to 1"),
    ("4.3", "a Python if", [leaky("""
        if x > 0:
            return x
        return slope * x
        """)], "raised .*\n.*jnp.where"),
    ("4.3", "the positive part dropped", [leaky("return jnp.where(x > 0, 0.0, slope * x)")],
     "slope 0.1: got"),
    ("4.4", "not compiled", ["normalize_jit = normalize\n"], "ran 5 times for 5 calls"),
    ("4.4", "compiled, but mode not static", ["normalize_jit = nnx.jit(normalize)\n"],
     "raised TypeError.*\n.*static"),
    ("4.4", "x made static instead of mode",
     ["normalize_jit = nnx.jit(normalize, static_argnums=0)\n"],
     "raised TypeError"),
]

RIGHT = [
    ("4.1", "nnx.grad and the loss apart, Variables mapped", [step("""
        grads = nnx.grad(mse)(model, x, y)
        loss = mse(model, x, y)
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p, g: p - lr * g, params, grads))
        return loss
        """)]),
    ("4.2", "pure JAX on the state", [pure("""
        def loss_of(state):
            return mse(nnx.merge(graphdef, state), x, y)
        grads = jax.grad(loss_of)(state)
        return graphdef, jax.tree.map(lambda p, g: p - 0.1 * g, state, grads)
        """)]),
    ("4.3", "jax.nn.leaky_relu", [leaky("return jax.nn.leaky_relu(x, slope)")]),
    ("4.3", "a select with >=", [leaky("return jax.lax.select(x >= 0, x, slope * x)")]),
    ("4.4", "jax.jit with static_argnums",
     ["normalize_jit = jax.jit(normalize, static_argnums=1)\n"]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)


@pytest.mark.parametrize("lib", libraries())
def test_4_4_static_argnames_is_a_correct_answer(lib):
    answer = 'normalize_jit = nnx.jit(normalize, static_argnames="mode")\n'
    printed = run_exercise(NB, "4.4", lib, [answer])
    assert "✅" in printed and "❌" not in printed, printed
