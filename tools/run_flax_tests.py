"""Run flax's own nnx tests on minnx, and print a table of what passes.

flax.nnx 0.12.8 is minnx's oracle, and flax's test suite for nnx (tests/nnx in flax's repository)
is the most thorough statement of what its APIs do. This developer tool takes those test files,
copies them into a temporary directory (never into this repository: the project does not ship
flax's code), rewrites them so that `nnx` means minnx, runs pytest on each file in turn, and
prints, per file, how many tests passed, failed, errored, were skipped, or used an API minnx does
not offer, with totals.

The rewrite (see `to_minnx`): `from flax import nnx` becomes `nnx = flax_tests_shim.nnx`, which
is minnx except that a name minnx lacks and flax.nnx has is a placeholder (so one missing name
fails only the tests that use it, not the whole file); `from flax.nnx.X import name` takes `name`
from `minnx.X`; `flax.nnx`, `flax.errors` and `flax.config` attribute paths go through
tools/flax_tests_shim.py, which also maps flax's exception classes and graph-mode settings to
minnx's. Everything else stays flax's: `flax.linen` (several tests compare nnx layers with
Linen's), `flax.typing`, `flax.struct`. tools/flax_tests_plugin.py records each test's outcome.

Where the tests come from (CI has no flax mirror, so this tool is not part of the test suite):

    # from the bare mirror of flax's repository, at flax 0.12.8 (the default)
    python tools/run_flax_tests.py
    # from a flax checkout, or any folder holding tests/nnx or the test files themselves
    python tools/run_flax_tests.py --source ~/src/flax

Options:

    python tools/run_flax_tests.py variable_test.py 'nn/*'   # only these files (glob patterns,
                                                              # relative to tests/nnx)
    python tools/run_flax_tests.py --only-offered   # a test that fails on looking up an
        # `nnx.<name>` that minnx lacks (and flax has), or that uses such a name at all, is
        # reported as "API not offered" (pytest shows it skipped), never as a pass or a
        # failure. Without the option such tests count as failed. Either way the names, and
        # how many tests each blocks, are listed under the table
    python tools/run_flax_tests.py --baseline       # also run on flax, unmodified, the tests
        # that fail on minnx, and count those that fail on flax too (the environment)
    python tools/run_flax_tests.py --failures       # list each failing test with its error
    python tools/run_flax_tests.py --json out.json  # every test's record (both runs)
    python tools/run_flax_tests.py --keep /tmp/ft   # keep the rewritten files there

Files run one at a time (the machine may be shared), each under --timeout seconds (default
1200); a file that times out keeps the results of the tests that finished. `tests/nnx/bridge`
needs Linen modules inside nnx ones and is skipped unless named. The tests need absl-py (installed
with JAX) and cloudpickle (`pip install cloudpickle`: module_test.py imports it). Set
JAX_PLATFORMS to run elsewhere than the CPU (the default here).
"""
import argparse
import ast
import collections
import fnmatch
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = pathlib.Path(__file__).resolve().parent
MIRROR = pathlib.Path("/work/.mirror/google+flax/repo")
FLAX_0_12_8 = "3a491108"
COLUMNS = ["passed", "failed", "error", "skipped", "not-offered"]


# -- Where the test files come from -------------------------------------------------------------

def _is_bare_git(path: pathlib.Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def read_test_files(source: pathlib.Path, commit: str) -> dict[str, str]:
    """{path relative to tests/nnx: text} for every test file (and tests/nnx/__init__.py)."""
    if _is_bare_git(source):
        listing = subprocess.run(["git", "-C", str(source), "ls-tree", "-r", "--name-only",
                                  commit, "tests/nnx"],
                                 check=True, capture_output=True, text=True).stdout.split()
        files = {}
        for name in listing:
            if name.endswith(".py"):
                text = subprocess.run(["git", "-C", str(source), "show", f"{commit}:{name}"],
                                      check=True, capture_output=True, text=True).stdout
                files[name[len("tests/nnx/"):]] = text
        return files
    folder = source / "tests" / "nnx" if (source / "tests" / "nnx").is_dir() else source
    if not folder.is_dir():
        raise SystemExit(f"--source {source}: expected a bare git mirror of flax, a flax "
                         "checkout, or a folder of flax's nnx test files")
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.py"))}


def is_test_file(rel: str) -> bool:
    name = pathlib.PurePosixPath(rel).name
    return name.endswith("_test.py") or name.startswith("test_")


def select(files: dict[str, str], patterns: list[str]) -> list[str]:
    """The test files to run: those matching a pattern, or all but bridge/ when none given."""
    tests = sorted(rel for rel in files if is_test_file(rel))
    if not patterns:
        return [rel for rel in tests if not rel.startswith("bridge/")]
    chosen = [rel for rel in tests if any(fnmatch.fnmatch(rel, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no flax test file matches {patterns}; the files are:\n  "
                         + "\n  ".join(tests))
    return chosen


# -- The rewrite: nnx means minnx ---------------------------------------------------------------

def _rewrite_import(node: ast.stmt) -> list[str] | None:
    """The lines that replace one import statement, or None to keep it as written."""
    if isinstance(node, ast.ImportFrom) and node.module == "flax":
        lines, kept = [], []
        for alias in node.names:
            bound = alias.asname or alias.name
            if alias.name == "nnx":
                lines.append(f"{bound} = flax_tests_shim.nnx")
            elif alias.name in ("errors", "config"):
                lines.append(f"{bound} = flax_tests_shim.{alias.name}")
            else:
                kept.append(alias.name if alias.asname is None
                            else f"{alias.name} as {alias.asname}")
        if not lines:
            return None
        if kept:
            lines.insert(0, f"from flax import {', '.join(kept)}")
        return lines
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flax.nnx"):
        module = "minnx" + node.module[len("flax.nnx"):]
        return [f"{alias.asname or alias.name} = "
                f"flax_tests_shim.import_from({module!r}, {alias.name!r})"
                for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module == "flax.errors":
        return [f"{alias.asname or alias.name} = flax_tests_shim.errors.{alias.name}"
                for alias in node.names]
    if isinstance(node, ast.Import) and any(a.name.startswith("flax.nnx") for a in node.names):
        lines = []
        for alias in node.names:
            if not alias.name.startswith("flax.nnx"):
                suffix = f" as {alias.asname}" if alias.asname else ""
                lines.append(f"import {alias.name}{suffix}")
            elif alias.asname and alias.name == "flax.nnx":
                lines.append(f"{alias.asname} = flax_tests_shim.nnx")
            elif alias.asname:
                module = "minnx" + alias.name[len("flax.nnx"):]
                lines.append(f"import {module} as {alias.asname}")
            # a plain `import flax.nnx` needs no line: the attribute paths are rewritten
        return lines or ["pass"]
    return None


def _attribute_target(node: ast.AST) -> str | None:
    """What a `flax.nnx` / `flax.errors` / `flax.config` attribute path is rewritten to."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "flax" and node.attr in ("nnx", "errors", "config")):
        return f"flax_tests_shim.{node.attr}"
    return None


def to_minnx(source: str, filename: str = "<test>") -> str:
    """flax test source -> the same test, with nnx meaning minnx (see the module docstring)."""
    tree = ast.parse(source, filename)
    lines = source.splitlines(keepends=True)
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:  # ast's 1-based line, 0-based column
        return line_starts[lineno - 1] + col

    edits = []  # (start offset, end offset, replacement)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            new = _rewrite_import(node)
            if new is None:
                continue
            if lines[node.lineno - 1][:node.col_offset].strip():
                raise ValueError(f"{filename}:{node.lineno}: cannot rewrite an import that "
                                 "shares its line with another statement")
            indent = " " * node.col_offset
            text = "".join(f"{indent}{line}\n" for line in new)
            edits.append((offset(node.lineno, 0), offset(node.end_lineno + 1, 0), text))
        target = _attribute_target(node)
        if target:
            edits.append((offset(node.lineno, node.col_offset),
                          offset(node.end_lineno, node.end_col_offset), target))
    imports = [node.lineno for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and getattr(node, "module", None) != "__future__"]
    first_import = offset(min(imports), 0) if imports else 0
    edits.append((first_import, first_import, "import flax_tests_shim\n"))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


# -- Running pytest on one file -----------------------------------------------------------------

def run_file(folder: pathlib.Path, rel: str, timeout: int, only_offered: bool,
             nodeids: list[str] | None = None) -> dict:
    """Run pytest on folder/rel (or only these tests of it) in a fresh process;
    {"records": [...], "status": ...}."""
    record = folder / f".records-{rel.replace('/', '-')}.jsonl"
    record.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TOOLS)] + env.get("PYTHONPATH", "").split(os.pathsep))
    env["FLAX_TESTS_RECORD"] = str(record)
    env["FLAX_TESTS_ONLY_OFFERED"] = "1" if only_offered else "0"
    env.setdefault("JAX_PLATFORMS", "cpu")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "flax_tests_plugin",
               "-c", str(folder / "pytest.ini"), "--rootdir", str(folder),
               "--import-mode=importlib", "-W", "ignore::DeprecationWarning",
               *(nodeids or [rel])]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=timeout)
        status = f"exit {done.returncode}"
        tail = done.stdout[-2000:] + done.stderr[-2000:]
    except subprocess.TimeoutExpired:
        status, tail = f"timed out after {timeout} s", ""
    records = []
    if record.exists():
        records = [json.loads(line) for line in record.read_text().splitlines()]
    if not records:
        status += ": no test ran"
    return {"records": records, "status": status, "seconds": time.monotonic() - started,
            "output": tail}


def collected_ids(folder: pathlib.Path, rel: str, timeout: int) -> list[str]:
    """The test ids pytest collects from the unmodified file, on flax."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-c",
               str(folder / "pytest.ini"), "--rootdir", str(folder), "--import-mode=importlib",
               rel]
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return [line.strip() for line in done.stdout.splitlines() if "::" in line]


def blame_collection_error(result: dict, flax_folder: pathlib.Path, rel: str, timeout: int,
                           only_offered: bool):
    """A file that fails to import on minnx: every test it holds on flax counts as an error
    (or as "not offered", when the import failed on an API minnx lacks)."""
    broken = [r for r in result["records"] if r["outcome"] == "collection-error"]
    if not broken:
        return
    seen = {r["nodeid"] for r in result["records"]}
    api = broken[0]["api"]
    for nodeid in collected_ids(flax_folder, rel, timeout):
        if nodeid not in seen:
            result["records"].append({
                "nodeid": nodeid, "outcome": "not-offered" if api and only_offered else "error",
                "api": api, "exc": "collection error", "message": broken[0]["message"],
                "where": None})


def write_tree(folder: pathlib.Path, files: dict[str, str], chosen: list[str], rewrite: bool):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    for rel in chosen:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_minnx(files[rel], rel) if rewrite else files[rel])


# -- The table ----------------------------------------------------------------------------------

def count(records: list[dict]) -> collections.Counter:
    counts = collections.Counter(r["outcome"] for r in records)
    counts["tests"] = sum(counts[c] for c in COLUMNS)
    return counts


def failing(result: dict) -> list[str]:
    return [r["nodeid"] for r in result["records"]
            if r["outcome"] in ("failed", "error") and "::" in r["nodeid"]]


def fail_on_flax_too(result: dict, on_flax: dict) -> list[str]:
    """The tests failing on minnx whose unmodified version fails on flax too."""
    outcome = {r["nodeid"]: r["outcome"] for r in on_flax["records"]}
    return [n for n in failing(result) if outcome.get(n) in ("failed", "error")]


def print_table(results: dict[str, dict], baseline: dict[str, dict] | None):
    headers = ["file", "tests", *COLUMNS]
    if baseline is not None:
        headers += ["fail on flax too"]
    rows, totals = [], collections.Counter()
    for rel, result in results.items():
        counts = count(result["records"])
        row = [rel, counts["tests"], *(counts[c] for c in COLUMNS)]
        if baseline is not None:
            both = len(fail_on_flax_too(result, baseline[rel]))
            row.append(both)
            totals["fail on flax too"] += both
        if counts["collection-error"] or "timed out" in result["status"]:
            row[0] += " (" + ("collection error" if counts["collection-error"]
                              else result["status"]) + ")"
        rows.append(row)
        totals["tests"] += counts["tests"]
        for c in COLUMNS:
            totals[c] += counts[c]
    rows.append(["total", *(totals[h] for h in headers[1:])])
    widths = [max(len(str(row[i])) for row in rows + [headers]) for i in range(len(headers))]
    line = "  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                     for i, h in enumerate(headers))
    print(line)
    print("-" * len(line))
    for row in rows:
        if row[0] == "total":
            print("-" * len(line))
        print("  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                        for i, v in enumerate(row)))


def print_missing(results: dict[str, dict]):
    blocked = collections.Counter()
    for result in results.values():
        for r in result["records"]:
            if r["api"] and r["outcome"] in ("not-offered", "failed", "error"):
                blocked[r["api"]] += 1
    if blocked:
        print("\nAPIs minnx does not offer, and how many tests each blocks:")
        for api, n in blocked.most_common():
            print(f"  {n:4d}  {api}")


def print_failures(results: dict[str, dict], baseline: dict[str, dict] | None):
    print("\nFailing tests:")
    for rel, result in results.items():
        also = set(fail_on_flax_too(result, baseline[rel])) if baseline else set()
        for r in result["records"]:
            if r["outcome"] in ("failed", "error", "collection-error") \
                    and r["exc"] != "collection error":
                message = (r["message"] or "").strip().splitlines()
                first = message[0][:160] if message else ""
                flax = " (fails on flax too)" if r["nodeid"] in also else ""
                print(f"  {r['nodeid']}  [{r['outcome']}{flax}] {r['exc'] or ''}: {first}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="glob patterns relative to tests/nnx")
    parser.add_argument("--source", type=pathlib.Path, default=MIRROR,
                        help="bare git mirror of flax, a flax checkout, or a folder of test files")
    parser.add_argument("--commit", default=FLAX_0_12_8, help="commit, with a git mirror")
    parser.add_argument("--only-offered", action="store_true",
                        help="report tests that use an API minnx lacks as 'not offered'")
    parser.add_argument("--baseline", action="store_true",
                        help="also run on flax the tests that fail on minnx")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per file")
    parser.add_argument("--failures", action="store_true", help="list every failing test")
    parser.add_argument("--json", type=pathlib.Path, help="write every test's record here")
    parser.add_argument("--keep", type=pathlib.Path, help="keep the rewritten files here")
    args = parser.parse_args(argv)

    if not args.source.exists():
        raise SystemExit(f"no flax tests at {args.source}: pass --source with a flax checkout")
    files = read_test_files(args.source, args.commit)
    chosen = select(files, args.files)
    if args.keep:
        keep = args.keep.resolve()
        if keep == ROOT or ROOT in keep.parents:
            raise SystemExit("--keep must be outside the repository: it does not ship flax's code")
        folder, holder = keep, None
    else:
        holder = tempfile.TemporaryDirectory(prefix="flax-tests-on-minnx-")
        folder = pathlib.Path(holder.name)
    write_tree(folder / "minnx", files, chosen, rewrite=True)
    write_tree(folder / "flax", files, chosen if args.baseline else [], rewrite=False)

    results, baseline = {}, ({} if args.baseline else None)
    for rel in chosen:
        results[rel] = run_file(folder / "minnx", rel, args.timeout, args.only_offered)
        if not args.baseline:  # the unmodified file, to count a file that fails to import
            write_tree(folder / "flax", files, [rel], rewrite=False)
        blame_collection_error(results[rel], folder / "flax", rel, args.timeout,
                               args.only_offered)
        counts = count(results[rel]["records"])
        summary = ", ".join(f"{counts[c]} {c}" for c in COLUMNS if counts[c])
        print(f"{rel}: {summary or 'nothing'} on minnx "
              f"({results[rel]['status']}, {results[rel]['seconds']:.0f} s)", flush=True)
        if args.baseline and failing(results[rel]):
            baseline[rel] = run_file(folder / "flax", rel, args.timeout, False,
                                     failing(results[rel]))
            both = fail_on_flax_too(results[rel], baseline[rel])
            print(f"{rel}: of those failing on minnx, {len(both)} fail on flax too "
                  f"({baseline[rel]['status']}, {baseline[rel]['seconds']:.0f} s)", flush=True)
        elif args.baseline:
            baseline[rel] = {"records": [], "status": "not run: nothing fails on minnx"}
    print()
    print_table(results, baseline)
    print_missing(results)
    if args.failures:
        print_failures(results, baseline)
    if args.json:
        args.json.write_text(json.dumps({"minnx": results, "flax": baseline}, indent=1))
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
