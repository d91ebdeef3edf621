"""pytest setup shared by the unit tests and nbval.

The notebook kernels inherit this process's environment, so what is set here
reaches every notebook nbval runs.
"""
import os
import pathlib

ROOT = pathlib.Path(__file__).parent
SHARED_TFDS = ROOT.parent / "shared" / "datasets" / "tensorflow_datasets"

# TensorFlow (imported by TFDS when installed) prints oneDNN notices with timestamps to
# stderr; nbval would compare them. Both variables are needed to silence them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Offline machines (CI) read MNIST from the shared, prepared copy; never download in tests.
if SHARED_TFDS.is_dir():
    os.environ.setdefault("TFDS_DATA_DIR", str(SHARED_TFDS))
# Exercise checks raise CheckFailed on a ❌ under test (course/grading.py), so that nbval and the
# real-flax run of the solutions see a failed check.
os.environ.setdefault("COURSE_STRICT_CHECKS", "1")
# Stored notebook outputs come from a CPU run.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
