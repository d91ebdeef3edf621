"""The pytest plugin tools/run_flax_tests.py loads: one JSON line per test, and "API not offered".

For every test it appends a line to the file named by FLAX_TESTS_RECORD:

    {"nodeid": ..., "outcome": "passed" | "failed" | "error" | "skipped" | "not-offered"
                               | "collection-error",
     "api": "nnx.compat" or null, "exc": "AttributeError", "message": ..., "where": ...}

A test is put down to an API minnx does not offer (its "api") when
- it fails with an exception that is, or was raised while handling, flax_tests_shim.NotOffered
  or an AttributeError for a name that a minnx module lacks and the matching flax.nnx module
  has (`module 'minnx.nn' has no attribute 'lora'`);
- or it fails, or even passes, after using a placeholder for such a name while it ran
  (flax_tests_shim.missing_used): a test that needs an API minnx lacks is not a pass.
Attribute errors on objects (a method a minnx class lacks) are ordinary failures.
With FLAX_TESTS_ONLY_OFFERED=1 such tests are reported to pytest as skipped ("API not offered:
nnx.compat") and recorded as "not-offered"; otherwise they stay "failed" or "error", with "api"
set. Either way a missing API is never counted as a pass.

minnx and flax are imported only when a failure has to be classified: a test file must be able
to set XLA_FLAGS before JAX starts.
"""
import importlib
import json
import os
import re

import pytest

import flax_tests_shim

RECORD = os.environ.get("FLAX_TESTS_RECORD")
ONLY_OFFERED = os.environ.get("FLAX_TESTS_ONLY_OFFERED") == "1"
MODULE_MISS = re.compile(r"module '(minnx[\w.]*)' has no attribute '(\w+)'")
SHIM_MISS = re.compile(r"minnx does not offer flax's (nnx[\w.]*)")
WORST = ["passed", "skipped", "not-offered", "failed", "error"]


def _flax_has(minnx_module: str, name: str) -> bool:
    try:
        flax_module = importlib.import_module("flax.nnx" + minnx_module[len("minnx"):])
    except ImportError:
        return False
    return hasattr(flax_module, name)


def _api_in_text(text: str) -> str | None:
    """The missing API an error message names, as `nnx.<name>`, or None."""
    found = SHIM_MISS.search(text)
    if found:
        return found.group(1)
    found = MODULE_MISS.search(text)
    if found and _flax_has(found.group(1), found.group(2)):
        return "nnx" + found.group(1)[len("minnx"):] + "." + found.group(2)
    return None


def missing_api(exc: BaseException | None) -> str | None:
    """`nnx.<name>` when exc, or an exception it was raised from, is a lookup of a name minnx
    lacks and flax.nnx has; None for any other failure."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, AttributeError):
            api = _api_in_text(str(exc))
            if api:
                return api
        exc = exc.__cause__ or exc.__context__
    return None


def _where(excinfo) -> str:
    """The deepest frame of the traceback in minnx, else the deepest frame of all."""
    entries = list(excinfo.traceback)
    for entry in reversed(entries):
        if "/minnx/" in str(entry.path):
            return f"{entry.path}:{entry.lineno + 1}"
    entry = entries[-1] if entries else None
    return f"{entry.path}:{entry.lineno + 1}" if entry else ""


_results: dict[str, dict] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    flax_tests_shim.missing_used.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    used = flax_tests_shim.missing_used
    if report.passed and call.when == "call" and used:
        # It passed, but only by way of a placeholder: not a pass.
        info = {"exc": None, "where": None, "api": used[0],
                "message": f"passed, having used {used[0]}, which minnx does not offer"}
        report.outcome = "failed"
        report.longrepr = info["message"]
    elif call.excinfo is not None and report.failed:
        info = {"exc": call.excinfo.typename, "message": str(call.excinfo.value)[:600],
                "where": _where(call.excinfo), "api": missing_api(call.excinfo.value)}
        if info["api"] is None and used:
            info["api"] = used[0]
    else:
        return
    report.flax_tests_info = info
    if ONLY_OFFERED and info["api"]:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"API not offered: {info['api']}")
        report.flax_tests_not_offered = True


def pytest_runtest_logreport(report):
    if getattr(report, "flax_tests_not_offered", False):
        outcome = "not-offered"
    elif report.failed:
        outcome = "failed" if report.when == "call" else "error"
    else:
        outcome = report.outcome
    record = _results.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                 "api": None, "exc": None, "message": None,
                                                 "where": None})
    if WORST.index(outcome) > WORST.index(record["outcome"]):
        record["outcome"] = outcome
        record.update(getattr(report, "flax_tests_info", {}))
    if outcome == "skipped" and report.longrepr and record["message"] is None:
        record["message"] = str(report.longrepr[-1])[:600]
    if report.when == "teardown":
        _write(record)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longrepr)
        last = [line for line in text.splitlines() if line.startswith("E ")]
        _write({"nodeid": report.nodeid, "outcome": "collection-error", "api": _api_in_text(text),
                "exc": None, "message": "\n".join(last)[-600:], "where": None})


def _write(record):
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps(record) + "\n")
