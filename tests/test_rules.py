"""The rules minnx is written under: it is read by learners, so it stays small, layered and
plain; it uses public JAX APIs only; and it keeps flax's names and parameter names."""
import ast
import inspect
import pathlib
import subprocess
import sys

import pytest
from flax import nnx as flax_nnx

import minnx

PKG = pathlib.Path(minnx.__file__).parent
FILES = sorted(PKG.rglob("*.py"))
LAYERS = [p for p in FILES if p.parent.name == "nn"]
FAST_PATH = [PKG / "fastpath.py"]
CORE = [p for p in FILES if p not in LAYERS and p not in FAST_PATH]

# The order the README and notebook 13 give for reading minnx: each file may import only files
# before it. fastpath.py is an optimisation, listed where transforms needs it.
READING_ORDER = ["config", "filters", "variables", "objects", "state", "graph", "module",
                 "containers", "views", "rngs", "display", "lift", "fastpath", "transforms",
                 "optimizer", "metrics", "ema", "sharding", "nn"]


def _lines(paths):
    return sum(len(p.read_text().splitlines()) for p in paths)


def test_sizes():
    assert _lines(CORE) <= 2600, f"the minnx core is {_lines(CORE)} lines (never over 2,600)"
    assert _lines(FAST_PATH) <= 200, f"the fast path is {_lines(FAST_PATH)} lines (budget 200)"
    assert _lines(LAYERS) <= 1200, f"the layers are {_lines(LAYERS)} lines (budget 1,200)"


def _module_of(path):
    parts = path.relative_to(PKG).with_suffix("").parts
    return "nn" if parts[0] == "nn" else parts[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_each_file_says_its_idea_imports_only_earlier_files_and_public_jax(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} needs a docstring saying which idea it holds"
    me = _module_of(path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
            assert not inner, f"{path.name}: an import inside {node.name}(); imports go at the top"
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.level and path.name != "__init__.py" and not (me == "nn" and node.level == 1):
                target = (node.module or node.names[0].name).split(".")[0]
                assert target in READING_ORDER, f"{path.name} imports unknown module {target}"
                assert READING_ORDER.index(target) < READING_ORDER.index(me), (
                    f"{path.name} imports {target}, which comes after it in the reading order")
        for name in names:
            assert not name.startswith(("jax._src", "jax.extend", "flax")), f"{path.name}: {name}"
    assert "jax._src" not in path.read_text()


def test_lint():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "minnx", "course", "tools",
                             "benchmarks", "tests"], capture_output=True, text=True,
                            cwd=PKG.parent)
    assert result.returncode == 0, result.stdout[-3000:]


CORE_API = """Variable Param BatchStat Cache Intermediate Perturbation RngState RngKey RngCount
Module Pytree Object List Dict Sequential split merge update state graphdef pop clone merge_state
split_state filter_state as_pure pure to_pure_dict GraphDef State All Any Not PathContains OfType
WithTag Everything Nothing Rngs RngStream reseed split_rngs restore_rngs Linear Dropout BatchNorm
relu gelu sigmoid softmax tanh display iter_graph iter_modules iter_children data static
dataclass set_metadata set_graph_mode set_graph_updates view capture jit grad value_and_grad vmap
scan remat cond switch fori_loop while_loop eval_shape Carry DiffState Optimizer MultiMetric
initializers""".split()


@pytest.mark.parametrize("name", CORE_API)
def test_flax_names_exist(name):
    assert hasattr(flax_nnx, name), f"flax.nnx has no {name}: the list is wrong"
    assert hasattr(minnx, name), f"minnx lacks {name}"


@pytest.mark.parametrize("name", ["split", "merge", "state", "pop", "clone", "jit",
                                  "grad", "vmap", "scan", "view", "capture", "reseed",
                                  "split_rngs", "Linear", "Dropout", "BatchNorm"])
def test_every_parameter_minnx_takes_means_the_same_in_flax(name):
    def named(obj):
        params = inspect.signature(obj.__init__ if isinstance(obj, type) else obj).parameters
        return {k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                           p.KEYWORD_ONLY)} - {"self"}
    ours, theirs = named(getattr(minnx, name)), named(getattr(flax_nnx, name))
    assert ours
    assert ours <= theirs | {"rngs"}, ours - theirs
