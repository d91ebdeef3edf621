"""The checks of exercises 3 (solutions/03_functional_api.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap

import pytest

from exercise_harness import libraries, shared_tests

NB = "03_functional_api"
NUMBERS = ["3.1", "3.2", "3.3", "3.4"]


def function(signature, body):
    return f"def {signature}:\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n"


def split(body):
    return function("params_and_rest(model)", body)


def transplant(body):
    return function("transplant(source, target)", body)


def walk(body):
    return function("param_paths(model)", body)


def encoder(body):
    return function("encoder_params(model)", body)


WRONG = [
    ("3.1", "rest holding the full state", [split("""
        graphdef, state = nnx.split(model)
        return graphdef, nnx.state(model, nnx.Param), state
        """)], "rest also holds the Params"),
    ("3.1", "a Param filter alone", [split("return nnx.split(model, nnx.Param)")],
     "raised ValueError"),
    ("3.1", "only BatchStats in rest", [split("""
        graphdef = nnx.graphdef(model)
        return graphdef, nnx.state(model, nnx.Param), nnx.state(model, nnx.BatchStat)
        """)], "rest lacks .*dropout"),
    ("3.2", "only the kernel copied",
     [transplant("target.linear1.kernel[...] = source.linear1.kernel[...]")],
     "linear1.bias does not hold source.linear1.bias"),
    ("3.2", "the layer itself assigned", [transplant("target.linear1 = source.linear1")],
     "is a different object now"),
    ("3.2", "every Param of the model copied",
     [transplant("nnx.update(target, nnx.state(source, nnx.Param))")], "changed too"),
    ("3.2", "source's Variables assigned", [transplant("""
        target.linear1.kernel = source.linear1.kernel
        target.linear1.bias = source.linear1.bias
        """)], "is a different object now"),
    ("3.3", "the Variables instead of their arrays", [walk("""
        return {path: value for path, value in nnx.iter_graph(model)
                if isinstance(value, nnx.Param)}
        """)], "map to Variables"),
    ("3.3", "nnx.state instead of walking the graph", [walk("""
        return {tuple(path): v[...] for path, v in nnx.state(model, nnx.Param).flat_state()}
        """)], "without nnx.state or nnx.split"),
    ("3.3", "every Variable, not only Params", [walk("""
        return {path: value[...] for path, value in nnx.iter_graph(model)
                if isinstance(value, nnx.Variable)}
        """)], r"extra \[\('bn', 'mean'\)"),
    ("3.4", "the encoder's own State", [encoder("return nnx.state(model.encoder, nnx.Param)")],
     r"lacks \[\('encoder', 'bn', 'bias'\).*paths start at 'encoder'"),
    ("3.4", "every Param", [encoder("return nnx.state(model, nnx.Param)")],
     r"lacks \[\] and should not hold \[\('decoder'"),
    ("3.4", "the path filter alone",
     [encoder("return nnx.state(model, nnx.PathContains('encoder'))")],
     r"should not hold \[\('encoder', 'bn', 'mean'\), \('encoder', 'bn', 'var'\)\]"),
    ("3.4", "a pure dict", [encoder("""
        selected = nnx.state(model, nnx.All(nnx.Param, nnx.PathContains('encoder')))
        return nnx.to_pure_dict(selected)
        """)],
     "the result is a dict"),
]

RIGHT = [
    ("3.1", "graphdef and two filtered states", [split("""
        params = nnx.state(model, nnx.Param)
        rest = nnx.state(model, nnx.Not(nnx.Param))
        return nnx.graphdef(model), params, rest
        """)]),
    ("3.1", "split_state on the whole state", [split("""
        graphdef, state = nnx.split(model)
        params, rest = nnx.split_state(state, nnx.Param, ...)
        return graphdef, params, rest
        """)]),
    ("3.2", "the values assigned Variable by Variable", [transplant("""
        target.linear1.kernel[...] = source.linear1.kernel[...]
        target.linear1.bias[...] = source.linear1.bias[...]
        """)]),
    ("3.2", "the whole state of linear1, through a path filter", [transplant("""
        nnx.update(target, nnx.state(source, nnx.All(nnx.Param, nnx.PathContains("linear1"))))
        """)]),
    ("3.3", "a loop and get_value()", [walk("""
        found = {}
        for path, node in nnx.iter_graph(model):
            if isinstance(node, nnx.Param):
                found[tuple(path)] = node.get_value()
        return found
        """)]),
    ("3.4", "a function as filter", [encoder("""
        return nnx.state(model, lambda path, v: isinstance(v, nnx.Param) and path[0] == "encoder")
        """)]),
    ("3.4", "split with the filter, then the rest", [encoder("""
        _, selected, _ = nnx.split(model, nnx.All(nnx.Param, nnx.PathContains("encoder")), ...)
        return selected
        """)]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)


@pytest.mark.parametrize("lib", libraries())
def test_3_1_merge_refuses_a_rest_that_holds_the_params_again(lib):
    # The check's last step, nnx.merge(graphdef, params, rest), must not rebuild a model from
    # states that overlap: flax raises. (The check refuses such a rest earlier, on both.)
    nnx = pytest.importorskip("flax.nnx") if lib == "flax" else pytest.importorskip("minnx")
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    with pytest.raises(ValueError):
        nnx.merge(graphdef, nnx.state(model, nnx.Param), state)
