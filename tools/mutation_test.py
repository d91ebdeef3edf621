"""Mutation testing of minnx's core: does the unit suite notice a one-line bug?

Each mutant changes one line of one core file (everything in minnx/ but nn/): a comparison or
boolean operator flipped, a constant changed, an arithmetic operator swapped, a statement
replaced by `pass`, a returned value replaced by None. The core's unit tests (CORE_TESTS: the
unit suite without the layers, notebooks, slides and exercises, which test other code) then run
against the mutant, stopping at the first failure; a mutant is *killed* if some test fails or
errors, and *survives* if all pass. The score is killed / (killed + survived); a mutant that
runs past the timeout (a loop that no longer ends) counts as killed.
The tests are first run on the unmutated copy: if they fail there, the tool stops.

    python tools/mutation_test.py                      # a seeded sample of 200 mutants
    python tools/mutation_test.py --sample 0           # every mutant (hours)
    python tools/mutation_test.py --files graph.py lift.py --jobs 2 --sample 50

It works on a copy of the repository in a temporary directory, never on your files. Surviving
mutants are listed with their file, line and change: each is a missing test, or a change that
does not alter behaviour (an equivalent mutant).
"""
import argparse
import ast
import concurrent.futures
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE_TESTS = ["test_trust.py", "test_errors.py", "test_variables.py", "test_graph.py",
              "test_rngs.py", "test_display.py", "test_views.py", "test_tree_mode.py",
              "test_transforms.py", "test_fastpath.py", "test_api_details.py",
              "test_ema.py", "test_cached.py", "test_seeds_core.py",
              "test_seeds_training.py",
              "test_on_8_devices.py"]  # not test_rules: ast.unparse reformats the file
SWAPS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
         ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
         ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And, ast.Add: ast.Sub, ast.Sub: ast.Add,
         ast.Mult: ast.Div, ast.Div: ast.Mult}


class Mutant:
    def __init__(self, path, line, description, source):
        self.path = path
        self.line = line
        self.description = description
        self.source = source  # the whole mutated file

    def __str__(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.description}"


def _returns_none(node):  # `return` or `return None`: "return None" would change nothing
    return node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)


def _mutations(node):
    """(description, mutated copy of node) for each one-node change of `node`."""
    if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
        new = type(node.ops[0])
        yield f"{new.__name__} -> {SWAPS[new].__name__}", _replace(node, ops=[SWAPS[new]()] +
                                                                   node.ops[1:])
    elif isinstance(node, ast.BoolOp):
        yield f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}", _replace(
            node, op=SWAPS[type(node.op)]())
    elif isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
        yield f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}", _replace(
            node, op=SWAPS[type(node.op)]())
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop `not`", node.operand
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield f"{node.value} -> {not node.value}", ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield f"{node.value} -> {node.value + 1}", ast.Constant(node.value + 1)
    elif isinstance(node, ast.Return) and not _returns_none(node):
        yield "return None", ast.Return(ast.Constant(None))
    elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr)) and not _is_docstring(node):
        yield "statement -> pass", ast.Pass()


def _replace(node, **fields):
    new = type(node)(**{f: getattr(node, f) for f in node._fields})
    for name, value in fields.items():
        setattr(new, name, value)
    return new


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)


def mutants_of(path):
    """Every one-line mutant of a file: one node of its syntax tree changed at a time."""
    tree = ast.parse(path.read_text())
    places = {}  # node -> (parent, field, index in the field's list or None)
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                places[value] = (parent, field, None)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        places[item] = (parent, field, i)
    found = []
    for target, (parent, field, index) in places.items():
        one_line = getattr(target, "lineno", None) == getattr(target, "end_lineno", None)
        if not one_line and not isinstance(target, (ast.Return, ast.Assign, ast.AugAssign)):
            continue
        for description, replacement in _mutations(target):
            ast.copy_location(replacement, target)
            _put(parent, field, index, replacement)
            found.append(Mutant(path, target.lineno, description, ast.unparse(tree)))
            _put(parent, field, index, target)
    return found


def _put(parent, field, index, node):
    if index is None:
        setattr(parent, field, node)
    else:
        getattr(parent, field)[index] = node


def _prepare(directory):
    for name in ("minnx", "course", "tests", "solutions"):  # exercise 10's checks read solutions/
        shutil.copytree(ROOT / name, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "pyproject.toml", "nbval_sanitize.cfg"):
        shutil.copy(ROOT / name, directory / name)


def _suite_fails(directory, timeout):
    """Run CORE_TESTS in `directory`, stopping at the first failure: True if any test failed."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-p", "no:nbval", "-o", "addopts="] + [f"tests/{t}" for t in CORE_TESTS]
    env = {**os.environ, "PYTHONPATH": str(directory), "JAX_PLATFORMS": "cpu"}
    try:
        result = subprocess.run(command, cwd=directory, env=env, capture_output=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return result.returncode != 0


def _run(mutant, directory, timeout):
    relative = mutant.path.relative_to(ROOT)
    original = (directory / relative).read_text()
    (directory / relative).write_text(mutant.source)
    try:
        return _suite_fails(directory, timeout)
    finally:
        (directory / relative).write_text(original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", help="core files to mutate (default: all)")
    parser.add_argument("--sample", type=int, default=200, help="how many mutants (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    args = parser.parse_args()
    core = sorted(p for p in (ROOT / "minnx").glob("*.py") if p.name != "__init__.py")
    if args.files:
        core = [p for p in core if p.name in args.files]
    mutants = [m for path in core for m in mutants_of(path)]
    print(f"{len(mutants)} mutants in {len(core)} files")
    if args.sample and args.sample < len(mutants):
        mutants = random.Random(args.seed).sample(mutants, args.sample)
    directories = [pathlib.Path(tempfile.mkdtemp(prefix="minnx-mutants-"))
                   for _ in range(args.jobs)]
    for directory in directories:
        _prepare(directory)
    # Without a passing baseline every mutant would count as killed: check it first.
    if _suite_fails(directories[0], args.timeout):
        sys.exit("the core's unit tests fail on the unmutated copy: fix them before mutating")
    survivors = []
    killed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        batches = [mutants[j::args.jobs] for j in range(args.jobs)]

        def run_batch(batch, directory):
            results = []
            for mutant in batch:
                was_killed = _run(mutant, directory, args.timeout)
                print("killed:  " if was_killed else "SURVIVED:", mutant, flush=True)
                results.append((mutant, was_killed))
            return results

        for results in pool.map(run_batch, batches, directories):
            for mutant, was_killed in results:
                killed += was_killed
                if not was_killed:
                    survivors.append(mutant)
    for directory in directories:
        shutil.rmtree(directory)
    total = killed + len(survivors)
    print(f"killed {killed} of {total} mutants: score {killed / total:.1%}")
    for mutant in sorted(survivors, key=str):
        print("survived:", mutant)


if __name__ == "__main__":
    main()
