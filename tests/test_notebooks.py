"""The course notebooks beyond nbval: exercises stay in sync with the solutions and fail only where
the learner has work to do, and every notebook runs unchanged on real flax.nnx.

nbval itself (`--nbval` in pyproject.toml) re-runs notebooks/, solutions/ and slides/ on minnx and
compares every stored output; these tests add what nbval cannot check.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
COURSE = sorted(p for folder in ("notebooks", "solutions", "slides")
                for p in (ROOT / folder).glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
FIRST_PART = sorted((ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def run(path, **env):
    """Execute a notebook in a fresh kernel (with `env` added); return it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, **env})
    return nb


def errors(nb):
    return [(cell.get("id"), out["ename"], out["evalue"])
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"
            and "raises-exception" not in cell.metadata.get("tags", [])]


def test_there_are_notebooks_exercises_and_solutions():
    names = {p.name for p in COURSE if p.parent.name == "solutions"}
    assert names and names == {p.name for p in EXERCISES}


def test_exercises_are_generated_from_the_solutions():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def printed_per_exercise(nb):
    """{"1.4": everything the cells of exercise 1.4 printed} for an executed notebook."""
    printed, current = {}, None
    for cell in nb.cells:
        source = "".join(cell.source)
        if cell.cell_type == "markdown" and source.lstrip().startswith("## "):
            match = re.match(r"##\s+Exercise\s+(\d+\.\d+)", source.lstrip())
            current = match.group(1) if match else None
        elif cell.cell_type == "code" and current:
            text = "".join(out.get("text", "") for out in cell.get("outputs", []))
            printed[current] = printed.get(current, "") + text
    return printed


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercises_fail_only_where_the_learner_has_work_to_do(path):
    nb = run(path, COURSE_STRICT_CHECKS="0")    # a ❌ prints, it does not raise
    found = errors(nb)
    # Only answer cells may stop with a traceback (a stub at the top level of a cell); check
    # cells turn every exception into a ❌ (course/grading.py).
    assert {name for _, name, _ in found} <= {"NotImplementedError"}, found
    printed = printed_per_exercise(nb)
    assert len(printed) >= 4, f"{path.name} has {len(printed)} exercises; the course wants four"
    for number, text in printed.items():
        # An unanswered exercise never passes a check, and never ends in a raw traceback.
        assert "❌" in text and "✅" not in text, (number, text)


# The solutions run on real flax in tests/test_exercise_checks_NN.py (each exercise's
# `test_the_solution(s)_pass[flax]`, cell by cell), so this run covers the notebooks and decks.
ON_FLAX = [p for p in COURSE if p.parent.name != "solutions"]


@pytest.mark.parametrize("path", ON_FLAX, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_runs_unchanged_on_real_flax(path):
    # COURSE_QUICK=1: long training notebooks run fewer steps here (never in the stored run)
    nb = run(path, COURSE_NNX="flax", COURSE_QUICK="1")
    first_code = nb.cells[[c.cell_type for c in nb.cells].index("code")]
    first = "".join(out.get("text", "") for out in first_code.outputs)
    assert "Running on flax.nnx" in first, first
    assert not errors(nb), errors(nb)


@pytest.mark.skipif((shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"))
                    and os.environ.get("CI") != "true",    # CI has taskset (.ci/run): it must run
                    reason="pinning to one core uses taskset (util-linux), on Linux")
def test_first_part_outputs_hold_on_one_core_and_one_thread():
    """The stored outputs of notebooks 1-6 do not depend on the CPU configuration that made them:
    nbval re-runs them pinned to one core, with XLA's multi-threaded Eigen off, and they match."""
    assert len(FIRST_PART) == 6, FIRST_PART
    core = min(os.sched_getaffinity(0))
    flags = f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD}".strip()
    command = ["taskset", "-c", str(core), sys.executable, "-m", "pytest", "-q",
               *[str(p.relative_to(ROOT)) for p in FIRST_PART]]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "XLA_FLAGS": flags},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
