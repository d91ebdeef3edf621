"""repr and display: the tree a learner prints, with parameter counts and bytes per Variable
type."""
import functools
import importlib

import jax.numpy as jnp
from oracle import LIBS
from test_seeds_core import _mlp

import minnx

display_module = importlib.import_module("minnx.display")  # minnx.display is the function


def _first_lines(make):
    """The first line of each library's repr of the same model."""
    return {name: repr(make(nnx)).splitlines()[0].rstrip() for name, nnx in LIBS.items()}


def test_counts_per_variable_type_match_flax():
    for make in (lambda nnx: nnx.Linear(2, 5, rngs=nnx.Rngs(params=0)), _mlp,
                 lambda nnx: nnx.BatchNorm(4, rngs=nnx.Rngs(0)),
                 lambda nnx: nnx.Linear(64, 64, rngs=nnx.Rngs(0)),  # KB
                 lambda nnx: nnx.Embed(1000, 300, rngs=nnx.Rngs(0))):  # MB
        lines = _first_lines(make)
        assert lines["minnx"] == lines["flax"]


def test_slides_linear_header():
    text = repr(minnx.Linear(2, 5, rngs=minnx.Rngs(params=0)))
    assert text.startswith("Linear( # Param: 15 (60 B)\n")


def test_repr_lists_attributes_in_definition_order_and_summarises_arrays():
    text = repr(minnx.Linear(2, 5, rngs=minnx.Rngs(0)))
    lines = [line.strip().split("=")[0] for line in text.splitlines()[1:-1]]
    assert lines[:4] == ["kernel", "bias", "in_features", "out_features"]
    assert "float32(2, 5) ≈" in text
    assert "bias=Param(value=<float32(5,) [0., 0., 0., 0., 0.]>)" in text
    small = repr(minnx.Param(jnp.array([0.123456, 2.0])))
    assert "<float32(2,) [0.123, 2.   ]>" in small  # small arrays in full, at 3 decimals
    eight, nine = repr(minnx.Param(jnp.arange(8.0))), repr(minnx.Param(jnp.arange(9.0)))
    assert "[0., 1., 2., 3., 4., 5., 6., 7.]" in eight  # up to 8 numbers in full
    assert "<float32(9,) ≈4 ±2.6 [≥0, ≤8] nonzero:8>" in nine  # from 9 on, a summary
    assert " at 0x" not in text  # no object addresses: stored notebook outputs stay stable
    for setting in ("in_features=2,", "out_features=5,", "use_bias=True,", "dtype=None,"):
        assert setting in text, setting  # plain settings are shown with their repr


def test_dtype_settings_are_shown_by_name_as_flax_shows_them():
    def dtype_lines(nnx):
        layer = nnx.Linear(2, 3, dtype=jnp.bfloat16, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
        return [line.strip() for line in repr(layer).splitlines()
                if line.strip().startswith(("dtype=", "param_dtype="))]
    lines = {name: dtype_lines(nnx) for name, nnx in LIBS.items()}
    assert lines["minnx"] == lines["flax"] == ["dtype=bfloat16,", "param_dtype=float32,"]


def test_callable_settings_are_shown_by_name_or_repr():
    def double(x):
        return 2 * x

    class Block(minnx.Module):
        def __init__(self):
            self.activation = double  # a function: its type and name
            self.gate = functools.partial(minnx.gelu, approximate=False)  # no name: its repr
    text = repr(Block())
    assert "activation=<function double>," in text
    assert "gate=functools.partial(" in text and "approximate=False)" in text


def test_class_settings_are_shown_by_name_as_flax_shows_them():
    def settings(nnx):
        class Block(nnx.Module):
            def __init__(self):
                self.kind = nnx.Param
                self.dtype = jnp.float16
        # (minnx ends every attribute's line with a comma, flax all but the last)
        return [line.strip().rstrip(",") for line in repr(Block()).splitlines()[1:-1]]
    lines = {name: settings(nnx) for name, nnx in LIBS.items()}
    assert lines["minnx"] == lines["flax"] == ["kind=Param", "dtype=float16"]


def test_a_state_shows_values_that_are_not_arrays():
    text = repr(minnx.State({"dtype": jnp.float32, "n": 3, "name": "x"}))
    assert "'n': 3" in text and "'name': 'x'" in text and "float32" in text


def test_empty_states_inside_a_state_are_shown_as_flax_shows_them():
    texts = {name: repr(nnx.State({"a": {}, "b": nnx.State({})})) for name, nnx in LIBS.items()}
    assert texts["minnx"] == texts["flax"]
    assert "'a': {}" in texts["minnx"]


def test_display_uses_treescope_in_a_notebook_kernel_and_prints_elsewhere(monkeypatch, capsys):
    shown = []

    class Kernel:
        config = {"IPKernelApp": {}}

    class FakeIPython:
        kernel = None

        @staticmethod
        def get_ipython():
            return FakeIPython.kernel

    class FakeTreescope:
        @staticmethod
        def display(node):
            shown.append(node)
    monkeypatch.setattr(display_module, "IPython", FakeIPython)
    monkeypatch.setattr(display_module, "treescope", FakeTreescope)
    layer = minnx.Linear(2, 3, rngs=minnx.Rngs(0))
    minnx.display(layer)
    assert shown == [] and capsys.readouterr().out.startswith("Linear( # Param: 9 (36 B)")
    FakeIPython.kernel = Kernel()
    minnx.display(layer, layer)
    assert shown == [layer, layer] and capsys.readouterr().out == ""


def test_shared_layer_is_shown_once():
    class Model(minnx.Module):
        def __init__(self):
            self.a = minnx.Linear(2, 2, rngs=minnx.Rngs(0))
            self.b = self.a
    text = repr(Model())
    assert text.count("kernel=") == 1 and "<the same Linear as above>" in text
    assert text.startswith("Model( # Param: 6 (24 B)")


def test_state_repr_and_display_outside_a_notebook(capsys):
    state = minnx.state(minnx.Linear(2, 3, rngs=minnx.Rngs(0)))
    assert repr(state).startswith("State({\n  'bias': Param(value=<float32(3,) [0., 0., 0.]>)")
    minnx.display(state)
    assert capsys.readouterr().out.startswith("State({")


def test_traced_values_are_shown_without_reading_them():
    import jax
    seen = []
    state = minnx.state(minnx.Linear(2, 3, rngs=minnx.Rngs(0)))
    jax.jit(lambda s: seen.append(repr(s)) or 0)(state)
    assert "<traced float32(2, 3)>" in seen[0]


def test_variable_repr_shows_metadata():
    assert repr(minnx.Param(jnp.ones(2), note="x")) == \
        "Param(value=<float32(2,) [1., 1.]>, note='x')"


def test_graphdef_repr_shows_the_structure():
    graphdef = minnx.graphdef(minnx.Linear(2, 3, rngs=minnx.Rngs(0)))
    assert repr(graphdef) == "GraphDef(Linear(bias=Param, kernel=Param), num_leaves=2)"
