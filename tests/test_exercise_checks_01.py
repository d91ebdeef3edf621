"""The checks of exercises 1 (solutions/01_modules_and_variables.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap


from exercise_harness import shared_tests

NB = "01_modules_and_variables"
NUMBERS = ["1.1", "1.2", "1.3", "1.4", "1.5"]


def block(text, spaces):
    """`text` dedented, then indented by `spaces`, for a method body in a class template."""
    return textwrap.indent(textwrap.dedent(text).strip(), " " * spaces)


def mlp(init, call="return self.linear2(nnx.relu(self.linear1(x)))"):
    return ("class MLP(nnx.Module):\n"
            "    def __init__(self, din, dmid, dout, *, rngs):\n"
            f"{block(init, 8)}\n\n"
            "    def __call__(self, x):\n"
            f"{block(call, 8)}\n")


MLP_INIT = """
    self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
    self.linear2 = nnx.Linear(dmid, dout, rngs=rngs)
"""


def tied(init, call="return self.decoder(nnx.relu(self.encoder(x)))"):
    return ("class TiedMLP(nnx.Module):\n"
            "    def __init__(self, *, rngs):\n"
            f"{block(init, 8)}\n\n"
            "    def __call__(self, x):\n"
            f"{block(call, 8)}\n")


VARIABLE_COUNT = "class CallCount(nnx.Variable):\n    pass\n"


def counted(init, call="self.calls[...] += 1"):
    return ("class Counted(nnx.Module):\n"
            "    def __init__(self, *, rngs):\n"
            "        self.linear = nnx.Linear(2, 2, rngs=rngs)\n"
            f"{block(init, 8)}\n\n"
            "    def __call__(self, x):\n"
            f"{block(call, 8)}\n"
            "        return self.linear(x)\n")


STACK_CALL = """
    for layer in self.layers:
        x = nnx.relu(layer(x))
    return x
"""


def stack(init, call=STACK_CALL):
    return ("class Stack(nnx.Module):\n"
            "    def __init__(self, n, width, *, rngs):\n"
            f"{block(init, 8)}\n\n"
            "    def __call__(self, x):\n"
            f"{block(call, 8)}\n")


LIST_INIT = "self.layers = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(n)])"

WRONG = [
    ("1.1", "no ReLU", [mlp(MLP_INIT, "return self.linear2(self.linear1(x))")], "apply a ReLU"),
    ("1.1", "sigmoid instead of ReLU",
     [mlp(MLP_INIT, "return self.linear2(nnx.sigmoid(self.linear1(x)))")], r"linear2\(relu"),
    ("1.1", "linear2 with a seed of its own", [mlp("""
        self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
        self.linear2 = nnx.Linear(dmid, dout, rngs=nnx.Rngs(0))
        """)], "linear2's kernel does not follow the seed"),
    ("1.1", "layers of swapped sizes", [mlp("""
        self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
        self.linear2 = nnx.Linear(dout, dmid, rngs=rngs)
        """)], "kernels of shapes"),
    ("1.2", "counts arrays, not scalars",
     ["def count_params(model):\n    return len(jax.tree.leaves(nnx.state(model, nnx.Param)))\n"],
     "Linear.*got 2"),
    ("1.2", "counts every Variable",
     ["def count_params(model):\n"
      "    return sum(x.size for x in jax.tree.leaves(nnx.state(model)))\n"],
     r"BatchNorm\(6\): got 24"),
    ("1.2", "a jax array, not an int",
     ["def count_params(model):\n"
      "    sizes = [x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))]\n"
      "    return jnp.sum(jnp.array(sizes))\n"],
     "expected the int"),
    ("1.3", "two layers", [tied("""
        self.encoder = nnx.Linear(4, 4, rngs=rngs)
        self.decoder = nnx.Linear(4, 4, rngs=rngs)
        """)], "two different objects"),
    ("1.3", "a copy of the layer", [tied("""
        self.encoder = nnx.Linear(4, 4, rngs=rngs)
        self.decoder = nnx.clone(self.encoder)
        """)], "two different objects"),
    ("1.3", "no ReLU", [tied("""
        self.encoder = self.decoder = nnx.Linear(4, 4, rngs=rngs)
        """, "return self.decoder(self.encoder(x))")], "layer, ReLU, layer|decoder\\(relu"),
    ("1.4", "a Param counter (trainable)",
     ["class CallCount(nnx.Param):\n    pass\n", counted("self.calls = CallCount(jnp.array(0))")],
     "trainable"),
    ("1.4", "a plain int counter",
     [VARIABLE_COUNT, counted("self.calls = 0", "self.calls += 1")],
     r"counted.calls is 0 \(type int\)"),
    ("1.4", "the count replaced by an array on each call",
     [VARIABLE_COUNT, counted("self.calls = CallCount(jnp.array(0))",
                              "self.calls = self.calls + 1")], "no longer the same CallCount"),
    ("1.4", "starts at 1",
     [VARIABLE_COUNT, counted("self.calls = CallCount(jnp.array(1))")], "starts at 1"),
    ("1.5", "a plain Python list",
     [stack("self.layers = [nnx.Linear(width, width, rngs=rngs) for _ in range(n)]")],
     "raised ValueError.*\n.*nnx.List"),
    ("1.5", "one layer repeated",
     [stack("self.layers = nnx.List([nnx.Linear(width, width, rngs=rngs)] * n)")],
     "same object or have the same weights"),
    ("1.5", "the ReLU only at the end",
     [stack(LIST_INIT, "for layer in self.layers:\n    x = layer(x)\nreturn nnx.relu(x)")],
     "in order"),
]

RIGHT = [
    ("1.1", "linear2 created first", [mlp("""
        self.linear2 = nnx.Linear(dmid, dout, rngs=rngs)
        self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
        """, "return self.linear2(jax.nn.relu(self.linear1(x)))")]),
    ("1.1", "the ReLU as an attribute", [mlp("""
        self.linear1 = nnx.Linear(din, dmid, rngs=rngs)
        self.act = nnx.relu
        self.linear2 = nnx.Linear(dmid, dout, rngs=rngs)
        """, "return self.linear2(self.act(self.linear1(x)))")]),
    ("1.2", "walking the graph",
     ["def count_params(model):\n"
      "    return sum(v[...].size for _, v in nnx.iter_graph(model)\n"
      "               if isinstance(v, nnx.Param))\n"]),
    ("1.2", "through a pure dict",
     ["def count_params(model):\n    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))\n"
      "    return int(sum(jnp.size(a) for a in jax.tree.leaves(pure)))\n"]),
    ("1.3", "the second name assigned from the first", [tied("""
        self.encoder = nnx.Linear(4, 4, rngs=rngs)
        self.decoder = self.encoder
        """, "return self.encoder(jax.nn.relu(self.decoder(x)))")]),
    ("1.4", "a docstring and an explicit sum",
     ['class CallCount(nnx.Variable):\n    """How often a Module was called."""\n',
      counted("self.calls = CallCount(jnp.zeros((), jnp.int32))",
              "self.calls[...] = self.calls[...] + 1")]),
    ("1.5", "an nnx.List filled in a loop",
     [stack("""
        self.layers = nnx.List()
        for _ in range(n):
            self.layers.append(nnx.Linear(width, width, rngs=rngs))
        """, """
        for i in range(len(self.layers)):
            x = jax.nn.relu(self.layers[i](x))
        return x
        """)]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)
