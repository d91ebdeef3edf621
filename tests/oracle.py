"""The differential harness: run the same code on minnx and on flax.nnx, compare the results.

flax.nnx is the oracle. A test writes its body once as `def body(nnx): ...`, `run_both(body)`
runs it with `nnx` bound to each library, and every array, number and string it returns must
agree. `plain` turns what a body returns (States, Variables, keys, nested containers) into numpy
arrays and Python values, so the comparison never depends on either library's classes; a
Variable becomes its type's name, its metadata (less flax's own bookkeeping entries) and its
value, so types and metadata are compared too.
"""
import warnings

import jax
import numpy as np
from flax import nnx as flax_nnx

import minnx

LIBS = {"minnx": minnx, "flax": flax_nnx}
FLAX_BOOKKEEPING = {"hijax", "ref", "eager_sharding"}  # flax's always-present metadata


def plain(x):
    """A library-independent copy of `x`: nested dicts/lists of numpy arrays and Python values."""
    for lib in LIBS.values():
        if isinstance(x, lib.State):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, lib.Variable):
            metadata = {k: plain(v) for k, v in x.get_metadata().items()
                        if k not in FLAX_BOOKKEEPING}
            return {"Variable type": type(x).__name__, "metadata": metadata,
                    "value": plain(x.get_raw_value())}
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(plain(v) for v in x)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return ("key", np.asarray(jax.random.key_data(x)))
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return np.asarray(x)
    return x


def assert_same(a, b, path="result", rtol=1e-6, atol=1e-6):
    """Assert two `plain` values are equal: same structure, same dtypes and shapes, close
    numbers."""
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: minnx gave a dict, flax gave {type(b).__name__}"
        assert sorted(map(str, a)) == sorted(map(str, b)), \
            f"{path}: keys differ: {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]", rtol, atol)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]", rtol, atol)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{path}: minnx gave an array, flax gave {b!r}"
        assert a.shape == b.shape, f"{path}: shape {a.shape} vs {b.shape}"
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} vs {b.dtype}"
        if np.issubdtype(a.dtype, np.inexact):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)
        else:
            np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} (minnx) vs {b!r} (flax)"


def run_both(body, **tolerances):
    """Run `body(nnx)` on minnx and on flax.nnx; assert the results agree; return minnx's."""
    ours = plain(body(minnx))
    empty = ours is None or (isinstance(ours, (dict, list, tuple)) and not ours)
    assert not empty, "the body returned nothing"
    with warnings.catch_warnings():
        # flax warns on `.value`; the seeds use it
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = plain(body(flax_nnx))
    assert_same(ours, theirs, **tolerances)
    return ours


def raise_both(body, error_type, match=None):
    """Run `body(nnx)` on both libraries: each must raise `error_type` (flax's own type, so a
    learner's `except` written for flax catches minnx's error), minnx's message matching `match`.
    Returns minnx's exception."""
    import pytest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(error_type):
            body(flax_nnx)
    with pytest.raises(error_type, match=match) as ours:
        body(minnx)
    return ours.value
