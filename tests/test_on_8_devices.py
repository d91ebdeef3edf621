"""Run the tests that need 8 devices (eight_devices.FILES) in a pytest process of their own, with 8
simulated CPU devices; this process keeps its single device."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from eight_devices import ACTIVE, FILES, FLAG

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(ACTIVE, reason="this process has 8 devices: the tests run in it directly")
def test_sharding_tests_pass_on_8_simulated_devices():
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FLAG}".strip()}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", *FILES], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "skipped" not in summary and re.search(r"\d+ passed", summary), summary
