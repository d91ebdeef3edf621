"""Tests that need 8 devices: JAX fixes its device count when it starts, and the rest of the suite
runs with one CPU device. The sharding tests (test_sharding.py, test_exercise_checks_10.py) carry
the mark below; tests/test_on_8_devices.py runs them in a second pytest process started with 8
simulated CPU devices. To run one directly:

    XLA_FLAGS=--xla_force_host_platform_device_count=8 .venv/bin/python -m pytest FILE
"""
import os

import pytest

FLAG = "--xla_force_host_platform_device_count=8"
ACTIVE = FLAG in os.environ.get("XLA_FLAGS", "")
FILES = ["tests/test_sharding.py", "tests/test_exercise_checks_10.py"]

only_with_8_devices = pytest.mark.skipif(
    not ACTIVE, reason="needs 8 devices: tests/test_on_8_devices.py runs it in a process with 8")
