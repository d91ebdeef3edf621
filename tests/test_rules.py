"""The rules minnx is written under: compact, one idea per file with a docstring saying which,
public JAX APIs only, and flax's names for everything the core issue lists."""
import ast
import pathlib

import pytest
from flax import nnx as flax_nnx

import minnx

PKG = pathlib.Path(minnx.__file__).parent
FILES = sorted(PKG.rglob("*.py"))
LAYERS = [p for p in FILES if p.parent.name == "nn"]
CORE = [p for p in FILES if p not in LAYERS]


def _lines(paths):
    return sum(len(p.read_text().splitlines()) for p in paths)


def test_core_within_2000_lines_and_layers_within_1000():
    assert _lines(CORE) <= 2000, f"minnx core is {_lines(CORE)} lines"
    assert _lines(LAYERS) <= 1000, f"minnx layers are {_lines(LAYERS)} lines"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_each_file_has_a_docstring_and_only_public_jax(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} needs a docstring saying which idea it holds"
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(("jax._src", "jax.extend", "flax")), f"{path.name} imports {name}"
    assert "jax._src" not in path.read_text()


CORE_API = """Variable Param BatchStat Cache Intermediate RngState RngKey RngCount Module List Dict Sequential
split merge update state graphdef pop clone merge_state split_state filter_state as_pure pure to_pure_dict
GraphDef State All Any Not PathContains OfType Everything Nothing Rngs RngStream reseed split_rngs
Linear Dropout BatchNorm relu gelu sigmoid softmax tanh display iter_graph iter_modules data
initializers""".split()


@pytest.mark.parametrize("name", CORE_API)
def test_flax_names_exist(name):
    assert hasattr(flax_nnx, name), f"flax.nnx has no {name}: the list is wrong"
    assert hasattr(minnx, name), f"minnx lacks {name}"


@pytest.mark.parametrize("name", ["split", "state", "pop", "clone", "Linear", "Dropout",
                                  "BatchNorm", "reseed", "split_rngs"])
def test_signatures_take_flaxs_parameter_names(name):
    import inspect
    def named(obj):
        params = inspect.signature(obj.__init__ if isinstance(obj, type) else obj).parameters
        return {k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    ours_named, theirs_named = named(getattr(minnx, name)), named(getattr(flax_nnx, name))
    assert ours_named
    # every keyword a learner can pass to minnx means the same in flax
    assert ours_named <= theirs_named | {"rngs"}, ours_named - theirs_named
