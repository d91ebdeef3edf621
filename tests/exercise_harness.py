"""Run one exercise of a solution notebook with the learner's answer swapped for another one.

The tests of the exercise checks (tests/test_exercise_checks_*.py) use it to put realistic wrong
answers, and correct alternatives, through each check: `run_exercise("01_...", "1.4", lib,
[source])` executes the notebook's code cells in this process, with `nnx` bound to minnx or flax
(through COURSE_NNX, as the notebooks' first cell reads it), replaces the exercise's answer
cells (those holding `### BEGIN SOLUTION`, in order) by the given sources, and returns what the
exercise's cells printed. Checks run strict (COURSE_STRICT_CHECKS=1): a ❌ raises CheckFailed.

Cells before the exercise run once per notebook and library; each case starts from a copy of
that namespace. An exercise is the cells from its `## Exercise N.M` heading to the next `## `
heading. Solution notebooks therefore use no IPython magics. `shared_tests` makes the four tests
that every check file built from lists of wrong and right answers has.
"""
import contextlib
import io
import json
import os
import pathlib
import re

import matplotlib
import pytest

from course.grading import CheckFailed

matplotlib.use("Agg")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
BEGIN = "### BEGIN SOLUTION"
_HEADING = re.compile(r"^##\s+Exercise\s+(\d+\.\d+)", re.MULTILINE)

_prefixes = {}


def _cells(notebook):
    nb = json.loads((SOLUTIONS / f"{notebook}.ipynb").read_text())
    return [("".join(c["source"]), c["cell_type"]) for c in nb["cells"]]


def exercise_span(notebook, number):
    """(first, end) cell indexes of exercise `number` ("1.4") in the solution notebook."""
    cells = _cells(notebook)
    start = None
    for i, (source, kind) in enumerate(cells):
        if kind != "markdown":
            continue
        match = _HEADING.search(source)
        if start is not None and source.lstrip().startswith("## "):
            return start, i
        if match and match.group(1) == number:
            start = i
    if start is None:
        raise KeyError(f"{notebook} has no '## Exercise {number}' heading")
    return start, len(cells)


def _exec(source, namespace, name):
    exec(compile(source, name, "exec"), namespace)


def _prefix(notebook, lib, stop):
    """The namespace after running every code cell before `stop`, as the solution has them."""
    key = (notebook, lib, stop)
    if key not in _prefixes:
        # continue from the longest prefix already run (a shallow copy: cells rebind names)
        done = max((k[2] for k in _prefixes if k[:2] == (notebook, lib) and k[2] <= stop),
                   default=0)
        namespace = dict(_prefixes.get((notebook, lib, done), {"__name__": "__main__"}))
        with _environment(lib), contextlib.redirect_stdout(io.StringIO()):
            for i, (source, kind) in enumerate(_cells(notebook)[done:stop], start=done):
                if kind == "code":
                    _exec(source, namespace, f"<{notebook} cell {i}>")
        _prefixes[key] = namespace
    return _prefixes[key]


@contextlib.contextmanager
def _environment(lib):
    saved = {k: os.environ.get(k) for k in ("COURSE_NNX", "COURSE_STRICT_CHECKS")}
    os.environ["COURSE_NNX"] = "flax" if lib == "flax" else "minnx"
    os.environ["COURSE_STRICT_CHECKS"] = "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_exercise(notebook, number, lib, answers=None):
    """Run exercise `number` with its answer cells replaced by `answers` (None: the solution's).
    Returns the printed text; raises CheckFailed if a check fails."""
    start, end = exercise_span(notebook, number)
    cells = _cells(notebook)
    answer_cells = [i for i in range(start, end) if cells[i][1] == "code" and BEGIN in cells[i][0]]
    if answers is not None and len(answers) != len(answer_cells):
        raise ValueError(f"exercise {number} has {len(answer_cells)} answer cell(s), "
                         f"{len(answers)} answer(s) given")
    replaced = dict(zip(answer_cells, answers or []))
    namespace = dict(_prefix(notebook, lib, start))
    printed = io.StringIO()
    with _environment(lib), contextlib.redirect_stdout(printed):
        for i in range(start, end):
            source, kind = cells[i]
            if kind == "code":
                _exec(replaced.get(i, source), namespace, f"<{notebook} cell {i}>")
    return printed.getvalue()


def libraries(minnx_xfail=None):
    """The `lib` values a check test runs on: minnx and flax. `minnx_xfail="reason"` marks the
    minnx case as a strict expected failure, for a case where minnx still differs from flax (the
    test is written as flax, the oracle, behaves)."""
    if minnx_xfail is None:
        return ["minnx", "flax"]
    return [pytest.param("minnx", marks=pytest.mark.xfail(strict=True, reason=minnx_xfail)), "flax"]


def shared_tests(notebook, numbers, wrong, right):
    """The four tests that each exercise-check file built from case lists shares: the solution
    passes each exercise; each wrong answer gets a ❌ whose words say why; each other correct
    answer passes; and every exercise has at least two wrong answers and one right one, on
    minnx and on flax. `wrong` holds (number, name, answers, words) cases, `right` (number,
    name, answers). The test file binds the four to names starting with `test_`, so that
    pytest collects them there."""

    def ids(cases):
        return [f"{case[0]} {case[1]}" for case in cases]

    @pytest.mark.parametrize("lib", libraries())
    @pytest.mark.parametrize("number", numbers)
    def test_the_solution_passes(number, lib):
        printed = run_exercise(notebook, number, lib)
        assert "✅" in printed and "❌" not in printed, printed

    @pytest.mark.parametrize("lib", libraries())
    @pytest.mark.parametrize("number, name, answers, words", wrong, ids=ids(wrong))
    def test_a_wrong_answer_gets_a_cross_that_says_why(number, name, answers, words, lib):
        with pytest.raises(CheckFailed, match=words):
            run_exercise(notebook, number, lib, answers)

    @pytest.mark.parametrize("lib", libraries())
    @pytest.mark.parametrize("number, name, answers", right, ids=ids(right))
    def test_another_correct_answer_passes(number, name, answers, lib):
        printed = run_exercise(notebook, number, lib, answers)
        assert "✅" in printed and "❌" not in printed, printed

    def test_every_exercise_has_two_wrong_answers_and_a_right_one():
        for number in numbers:
            assert sum(case[0] == number for case in wrong) >= 2, number
            assert sum(case[0] == number for case in right) >= 1, number

    return (test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
            test_another_correct_answer_passes,
            test_every_exercise_has_two_wrong_answers_and_a_right_one)
