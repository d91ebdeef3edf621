"""The checks of exercises 5 (solutions/05_vmap_and_scan.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap


from exercise_harness import shared_tests

NB = "05_vmap_and_scan"
NUMBERS = ["5.1", "5.2", "5.3", "5.4"]


def function(signature, body):
    return f"def {signature}:\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n"


def losses(body):
    return function("per_example_losses(model, xs, ys)", body)


MAKE = """
    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(3, 2, rngs=rngs)
    return create(rngs)
"""
PREDICT = "return nnx.vmap(lambda member, x: member(x), in_axes=(0, None))(ensemble, x)"


def ensemble(make=MAKE, predict=PREDICT):
    return (function("make_ensemble(n, rngs)", make) + "\n\n"
            + function("ensemble_predict(ensemble, x)", predict))


CELL = """class Cell(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(4, 4, rngs=rngs)

    def __call__(self, h, x):
        h = jnp.tanh(self.linear(h) + x)
        return h, h.sum()


"""


def run_cell(body):
    return CELL + function("run_cell(cell, h0, xs)", body)


BLOCKS = """class Block(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(4, 4, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.linear(x))


def make_blocks(n, rngs):
    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return Block(rngs)
    return create(rngs)


"""


def apply_blocks(body):
    return BLOCKS + function("apply_blocks(blocks, x)", body)


WRONG = [
    ("5.1", "a Python loop", [losses("""
        return jnp.stack([((model(x) - y) ** 2).sum() for x, y in zip(xs, ys)])
        """)], "nnx.vmap was not called"),
    ("5.1", "one batched expression", [losses("return ((model(xs) - ys) ** 2).sum(axis=1)")],
     "nnx.vmap was not called"),
    ("5.1", "the model mapped too (in_axes=0)", [losses("""
        return nnx.vmap(lambda m, x, y: ((m(x) - y) ** 2).sum(), in_axes=0)(model, xs, ys)
        """)], "raised ValueError.*\n.*None broadcasts the model"),
    ("5.1", "the mean over the batch", [losses("""
        one = lambda model, x, y: ((model(x) - y) ** 2).sum()
        return nnx.vmap(one, in_axes=(None, 0, 0))(model, xs, ys).mean()
        """)], r"got shape \(\), expected \(6,\)"),
    ("5.2", "split_rngs forgotten", [ensemble(make="""
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return nnx.Linear(3, 2, rngs=rngs)
        return create(rngs)
        """)], "raised ValueError.*\n.*split_rngs"),
    ("5.2", "one key broadcast to every member", [ensemble(make="""
        @nnx.split_rngs(splits=n)
        @nnx.vmap(in_axes=(None,), out_axes=0, axis_size=n)
        def create(rngs):
            return nnx.Linear(3, 2, rngs=rngs)
        return create(rngs)
        """)], "only 1 different kernels|raised"),
    ("5.2", "the ensemble called directly", [ensemble(predict="return ensemble(x)")],
     "raised TypeError|got shape"),
    ("5.2", "x mapped along with the members",
     [ensemble(predict="return nnx.vmap(lambda m, x: m(x), in_axes=(0, 0))(ensemble, x)")],
     "raised ValueError|got shape"),
    ("5.3", "plain jax.lax.scan",
     [run_cell("return jax.lax.scan(lambda h, x: cell(h, x), h0, xs)")],
     "nnx.scan was not called"),
    ("5.3", "a Python loop", [run_cell("""
        h, ys = h0, []
        for x in xs:
            h, y = cell(h, x)
            ys.append(y)
        return h, jnp.stack(ys)
        """)], "nnx.scan was not called"),
    ("5.3", "scanning over the cell", [run_cell("""
        step = lambda h, cell, x: cell(h, x)
        return nnx.scan(step, in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))(h0, cell, xs)
        """)], "raised ValueError.*\n.*in_axes=\\(nnx.Carry, None, 0\\)"),
    ("5.3", "a zero carry instead of h0", [run_cell("""
        step = lambda h, cell, x: cell(h, x)
        scan = nnx.scan(step, in_axes=(nnx.Carry, None, 0), out_axes=(nnx.Carry, 0))
        return scan(jnp.zeros_like(h0), cell, xs)
        """)], "is h0 the first carry"),
    ("5.4", "the blocks broadcast, not scanned", [apply_blocks("""
        @nnx.scan(in_axes=(nnx.Carry, None), out_axes=nnx.Carry, length=1)
        def forward(x, block):
            return block(x)
        return forward(x, blocks)
        """)], "raised|got shape"),
    ("5.4", "only the first block, by hand", [apply_blocks("""
        kernel, bias = blocks.linear.kernel[...][0], blocks.linear.bias[...][0]
        return jnp.tanh(x @ kernel + bias)
        """)], "3 block.s.: the output differs from block 0's output fed to block 1"),
    ("5.4", "a Python loop over slices", [apply_blocks("""
        kernels, biases = blocks.linear.kernel[...], blocks.linear.bias[...]
        for i in range(kernels.shape[0]):
            x = jnp.tanh(x @ kernels[i] + biases[i])
        return x
        """)], "nnx.scan was not called"),
]

RIGHT = [
    ("5.1", "a decorated one-example function", [losses("""
        @nnx.vmap(in_axes=(None, 0, 0))
        def one(model, x, y):
            return jnp.sum((model(x) - y) ** 2)
        return one(model, xs, ys)
        """)]),
    ("5.1", "the model closed over", [losses("""
        return nnx.vmap(lambda x, y: ((model(x) - y) ** 2).sum())(xs, ys)
        """)]),
    ("5.2", "split_rngs as a context manager, the input closed over", [ensemble(make="""
        with nnx.split_rngs(rngs, splits=n):
            return nnx.vmap(lambda r: nnx.Linear(3, 2, rngs=r), in_axes=0, out_axes=0)(rngs)
        """, predict="return nnx.vmap(lambda member: member(x), in_axes=0)(ensemble)")]),
    ("5.3", "the carry second", [run_cell("""
        step = lambda cell, h, x: cell(h, x)
        return nnx.scan(step, in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))(cell, h0, xs)
        """)]),
    ("5.3", "a decorated step", [run_cell("""
        @nnx.scan(in_axes=(nnx.Carry, None, 0), out_axes=(nnx.Carry, 0))
        def step(h, cell, x):
            h, y = cell(h, x)
            return h, y
        final, ys = step(h0, cell, xs)
        return final, ys
        """)]),
    ("5.4", "the blocks first, an empty output", [apply_blocks("""
        def forward(block, x):
            return block(x), None
        x, _ = nnx.scan(forward, in_axes=(0, nnx.Carry), out_axes=(nnx.Carry, 0))(blocks, x)
        return x
        """)]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)
