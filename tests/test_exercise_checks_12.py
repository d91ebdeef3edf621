"""The checks of exercises 12 (graph mode and tree mode): realistic wrong answers fail them,
other correct answers pass them, on minnx and on flax."""
import pytest

from course.grading import CheckFailed
from exercise_harness import run_exercise

NB = "12_graph_and_tree_mode"
LIBS = ["minnx", "flax"]


def tree_tied(init, call):
    return f'''
class TreeTied(nnx.Module):
    def __init__(self, rngs):
{init}

    def __call__(self, x):
{call}
'''


@pytest.mark.parametrize("lib", LIBS)
def test_12_1_solution_and_an_alternative_pass(lib):
    run_exercise(NB, "12.1", lib)
    answer = tree_tied("        self.layer = nnx.Linear(3, 3, rngs=rngs)",
                       "        h = jax.nn.relu(self.layer(x))\n        return self.layer(h)")
    assert "✅" in run_exercise(NB, "12.1", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("wrong, message", [
    (tree_tied("        self.layer = nnx.Linear(3, 3, rngs=rngs)\n"
               "        self.other = nnx.Linear(3, 3, rngs=rngs)",
               "        return self.other(nnx.relu(self.layer(x)))"), "one Linear"),
    (tree_tied("        self.layer = nnx.Linear(3, 3, rngs=rngs)\n        self.again = self.layer",
               "        return self.again(nnx.relu(self.layer(x)))"), "raised ValueError"),
    (tree_tied("        self.layer = nnx.Linear(3, 3, rngs=rngs)",
               "        return self.layer(x)"), "outputs differ"),
])
def test_12_1_wrong_answers(lib, wrong, message):
    with pytest.raises(CheckFailed, match=message):
        run_exercise(NB, "12.1", lib, [wrong])


def hidden_of(body):
    return "@nnx.jit(graph=False)\ndef hidden_of(model, x):\n" + body


@pytest.mark.parametrize("lib", LIBS)
def test_12_2_solution_and_an_alternative_pass(lib):
    run_exercise(NB, "12.2", lib)
    answer = hidden_of("    forward = nnx.capture(nnx.Intermediate)(lambda m, x: m(x))\n"
                       "    out, sown = forward(model, x)\n"
                       "    return out, sown.h.get_value()[0]\n")
    assert "❌" not in run_exercise(NB, "12.2", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("wrong, message", [
    (hidden_of("    out = model(x)\n"
               "    return out, nnx.state(model, nnx.Intermediate)['h'].get_value()[0]\n"),
     "use nnx.capture"),
    (hidden_of("    out, sown = nnx.capture(model, nnx.Intermediate)(x)\n"
               "    return out, sown['h'].get_value()\n"), "take its first element"),
])
def test_12_2_wrong_answers(lib, wrong, message):
    with pytest.raises(CheckFailed, match=message):
        run_exercise(NB, "12.2", lib, [wrong])


def param_grads(body):
    return "def param_grads(model, x, y):\n" + body


@pytest.mark.parametrize("lib", LIBS)
def test_12_3_solution_and_an_alternative_pass(lib):
    run_exercise(NB, "12.3", lib)
    answer = param_grads(
        "    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)\n"
        "    def loss(p, s):\n"
        "        return ((nnx.merge(graphdef, p, s)(x) - y) ** 2).mean()\n"
        "    return nnx.grad(loss, argnums=0, graph=False)(params, stats)\n")
    assert "❌" not in run_exercise(NB, "12.3", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("wrong, message", [
    (param_grads("    return nnx.state(nnx.grad(lambda m: ((m(x) - y) ** 2).mean(), "
                 "graph=False)(model))\n"), "gradients hold"),
    (param_grads("    return nnx.grad(lambda m: ((m(x) - y) ** 2).mean())(model)\n"),
     "use nnx.split"),
])
def test_12_3_wrong_answers(lib, wrong, message):
    with pytest.raises(CheckFailed, match=message):
        run_exercise(NB, "12.3", lib, [wrong])


def make_ensemble(body):
    return "def make_ensemble(n, seed):\n" + body


@pytest.mark.parametrize("lib", LIBS)
def test_12_4_solution_and_an_alternative_pass(lib):
    run_exercise(NB, "12.4", lib)
    answer = make_ensemble(
        "    create = nnx.vmap(lambda r: nnx.Linear(3, 2, rngs=r), graph=False)\n"
        "    return create(nnx.Rngs(seed).split(n))\n")
    assert "❌" not in run_exercise(NB, "12.4", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("wrong, message", [
    (make_ensemble("    create = nnx.vmap(lambda r: nnx.Linear(3, 2, rngs=r), graph=False)\n"
                   "    return create(nnx.Rngs(seed).broadcast(n))\n"), "distinct members"),
    (make_ensemble("    @nnx.split_rngs(splits=n)\n"
                   "    @nnx.vmap(in_axes=0, out_axes=0)\n"
                   "    def create(rngs):\n"
                   "        return nnx.Linear(3, 2, rngs=rngs)\n"
                   "    return create(nnx.Rngs(seed))\n"), "instead of split_rngs"),
    (make_ensemble("    return [nnx.Linear(3, 2, rngs=nnx.Rngs(seed + i)) for i in range(n)]\n"),
     "raised AttributeError"),
])
def test_12_4_wrong_answers(lib, wrong, message):
    with pytest.raises(CheckFailed, match=message):
        run_exercise(NB, "12.4", lib, [wrong])
