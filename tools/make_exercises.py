"""Generate exercises/ from solutions/: every answer becomes a stub, outputs are cleared.

In a solution notebook, an answer sits between two marker lines:

    ### BEGIN SOLUTION
    ...the answer...
    ### END SOLUTION

In the exercise, those lines become one `raise NotImplementedError(...)` at the marker's indent,
so the cell still runs (defining the function or class the next check cell calls) and the check
says what is missing. Cell ids are kept, so a learner's notebook and the solution line up.

    python tools/make_exercises.py           # write exercises/
    python tools/make_exercises.py --check   # exit 1 if exercises/ is not what would be written
"""
import argparse
import copy
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def strip_solution(source: str) -> str:
    out, skipping = [], False
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError('
                       '"Your turn: write this part, then run the check below.")\n')
            skipping = True
        elif marker == END:
            if not skipping:
                raise ValueError(f"{END} without {BEGIN}")
            skipping = False
        elif not skipping:
            out.append(line)
    if skipping:
        raise ValueError(f"{BEGIN} without {END}")
    return "".join(out)


def exercise_from(solution: dict) -> dict:
    nb = copy.deepcopy(solution)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = strip_solution("".join(cell["source"]))
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that exercises/ is up to date")
    args = parser.parse_args()
    stale = []
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        target = ROOT / "exercises" / solution.name
        text = render(exercise_from(json.loads(solution.read_text())))
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
    if stale:
        print(f"exercises/ is out of date for {', '.join(stale)}: "
              "run python tools/make_exercises.py")
        sys.exit(1)


if __name__ == "__main__":
    main()
