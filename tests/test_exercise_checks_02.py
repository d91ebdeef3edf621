"""The checks of exercises 2 (solutions/02_randomness.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap

import pytest

from exercise_harness import libraries, run_exercise, shared_tests

NB = "02_randomness"
NUMBERS = ["2.1", "2.2", "2.3", "2.4"]


def function(signature, body):
    return f"def {signature}:\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n"


def noise(body):
    return function("noise(rngs, shape)", body)


def noisy(init, call):
    return ("class NoisyLinear(nnx.Module):\n"
            "    def __init__(self, din, dout, sigma, *, rngs):\n"
            "        self.linear = nnx.Linear(din, dout, rngs=rngs)\n"
            "        self.sigma = sigma\n"
            "        self.deterministic = False\n"
            f"{textwrap.indent(textwrap.dedent(init).strip(), ' ' * 8)}\n\n"
            "    def __call__(self, x):\n"
            "        y = self.linear(x)\n"
            f"{textwrap.indent(textwrap.dedent(call).strip(), ' ' * 8)}\n"
            "        return y\n")


FORK = "self.rngs = rngs.noise.fork()"
NOISE_IF_TRAINING = """
    if not self.deterministic:
        y = y + self.sigma * jax.random.normal(self.rngs(), y.shape)
"""


def seeded(body):
    return function("run_with_seed(model, x, seed)", body)


def weights(body):
    return function("init_weights(key, shapes)", body)


WRONG = [
    ("2.1", "a fixed key", [noise("return jax.random.normal(jax.random.key(0), shape)")],
     "take exactly one key per call"),
    ("2.1", "the params stream", [noise("return jax.random.normal(rngs.params(), shape)")],
     r"counts went from \(noise, params\) = \[0, 0\] to \[0, 1\]"),
    ("2.1", "uniform numbers", [noise("return jax.random.uniform(rngs.noise(), shape)")],
     "standard normal has 0, 1 and 68.3%"),
    ("2.1", "the default stream, which this Rngs lacks",
     [noise("return jax.random.normal(rngs(), shape)")],
     "raised AttributeError"),
    ("2.2", "sigma ignored", [noisy(FORK, NOISE_IF_TRAINING.replace("self.sigma * ", ""))],
     "sigma=0.1: the noise has mean .* expected 0 and 0.1"),
    ("2.2", "uniform noise of the right size",
     [noisy(FORK, """
      if not self.deterministic:
          u = jax.random.uniform(self.rngs(), y.shape, minval=-1.0, maxval=1.0)
          y = y + self.sigma * 3 ** 0.5 * u
      """)], "Gaussian noise has 68.3%"),
    ("2.2", "the outer Rngs kept, not forked",
     [noisy("self.rngs = rngs", NOISE_IF_TRAINING.replace("self.rngs()", "self.rngs.noise()"))],
     "moved the Rngs it was built with"),
    ("2.2", "noise in eval mode too",
     [noisy(FORK, "y = y + self.sigma * jax.random.normal(self.rngs(), y.shape)")], "eval mode"),
    ("2.2", "one noise value per output feature",
     [noisy(FORK, """
      if not self.deterministic:
          y = y + self.sigma * jax.random.normal(self.rngs(), y.shape[-1:])
      """)], "entries share their noise"),
    ("2.3", "the seed passed positionally", [seeded("nnx.reseed(model, seed)\nreturn model(x)")],
     "raised TypeError"),
    ("2.3", "the params stream reseeded",
     [seeded("nnx.reseed(model, params=seed)\nreturn model(x)")],
     "same seed gave different outputs|raised"),
    ("2.3", "evaluation mode instead of a seed", [seeded("model.eval()\nreturn model(x)")],
     "seeds 5 and 6 gave the same output"),
    ("2.4", "one key for every array",
     [weights("return [jax.random.normal(key, shape) for shape in shapes]")],
     "drawn with the same key"),
    ("2.4", "the input key used, then split", [weights("""
        arrays = []
        for shape in shapes:
            arrays.append(jax.random.normal(key, shape))
            key, _ = jax.random.split(key)
        return arrays
        """)], r"array\(s\) \[0\] are jax.random.normal\(key, shape\)"),
    ("2.4", "keys made from the index, not from key",
     [weights("return [jax.random.normal(jax.random.key(i), s) for i, s in enumerate(shapes)]")],
     r"key\(42\) and key\(43\) gave some equal arrays"),
]

RIGHT = [
    ("2.1", "a key split from rngs.noise()",
     [noise("key, _ = jax.random.split(rngs.noise())\nreturn jax.random.normal(key, shape)")]),
    ("2.1", "a key folded from rngs.noise()",
     [noise("return jax.random.normal(jax.random.fold_in(rngs.noise(), 7), shape)")]),
    ("2.2", "sigma after the draw, and a stream of another name",
     [noisy("self.noise_stream = rngs.noise.fork()", """
      if not self.deterministic:
          y = jax.random.normal(self.noise_stream(), y.shape) * self.sigma + y
      """)]),
    ("2.3", "each Dropout reseeded through iter_modules", [seeded("""
        for _, module in nnx.iter_modules(model):
            if isinstance(module, nnx.Dropout):
                nnx.reseed(module, dropout=seed)
        out = model(x)
        return out
        """)]),
    ("2.4", "keys folded in", [weights(
        "return [jax.random.normal(jax.random.fold_in(key, i), s)\n"
        "        for i, s in enumerate(shapes)]")]),
    ("2.4", "a key split off in a loop", [weights("""
        arrays = []
        for shape in shapes:
            key, subkey = jax.random.split(key)
            arrays.append(jax.random.normal(subkey, shape))
        return arrays
        """)]),
    ("2.4", "an Rngs made from the key",
     [weights("rngs = nnx.Rngs(params=key)\n"
              "return [jax.random.normal(rngs.params(), s) for s in shapes]")]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)


@pytest.mark.parametrize("lib", libraries())
def test_2_1_flaxs_stream_helper_is_a_correct_answer(lib):
    printed = run_exercise(NB, "2.1", lib, [noise("return rngs.noise.normal(shape)")])
    assert "✅" in printed and "❌" not in printed, printed
