"""The course notebooks beyond nbval: exercises stay in sync with the solutions and fail only where
the learner has work to do, and every notebook runs unchanged on real flax.nnx.

nbval itself (`--nbval` in pyproject.toml) re-runs notebooks/, solutions/ and slides/ on minnx and
compares every stored output; these tests add what nbval cannot check.
"""
import json
import os
import pathlib
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
COURSE = sorted(p for folder in ("notebooks", "solutions", "slides") for p in (ROOT / folder).glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def run(path, **env):
    """Execute a notebook in a fresh kernel (with `env` added); return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, **env})
    return nb


def errors(nb):
    return [(cell.get("id"), out["ename"], out["evalue"]) for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"
            and "raises-exception" not in cell.metadata.get("tags", [])]


def test_there_are_notebooks_exercises_and_solutions():
    names = {p.name for p in COURSE if p.parent.name == "solutions"}
    assert names and names == {p.name for p in EXERCISES}


def test_exercises_are_generated_from_the_solutions():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercises_fail_only_where_the_learner_has_work_to_do(path):
    solution = json.loads((ROOT / "solutions" / path.name).read_text())
    stubs = sum("### BEGIN SOLUTION" in "".join(c["source"]) for c in solution["cells"])
    found = errors(run(path, COURSE_STRICT_CHECKS="0"))  # a ❌ prints, it does not raise
    assert found, "an exercise notebook with nothing to do"
    assert {name for _, name, _ in found} == {"NotImplementedError"}, found
    assert stubs >= 3, f"{path.name} has {stubs} answers to write; the course wants at least three"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_runs_unchanged_on_real_flax(path):
    # COURSE_QUICK=1: long training notebooks run fewer steps here (never in the stored run)
    nb = run(path, COURSE_NNX="flax", COURSE_QUICK="1")
    first = "".join(out.get("text", "") for out in nb.cells[[c.cell_type for c in nb.cells].index("code")].outputs)
    assert "Running on flax.nnx" in first, first
    assert not errors(nb), errors(nb)
