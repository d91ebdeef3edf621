"""The checks of exercises 11 (A GPT from scratch) refuse realistic wrong answers and accept
correct alternatives, on minnx and on flax: each case replaces the solution's answer cell."""
import pytest

from course.grading import CheckFailed
from exercise_harness import run_exercise

NB = "11_gpt_from_scratch"
LIBS = ["minnx", "flax"]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("number", ["11.1", "11.2", "11.3", "11.4"])
def test_the_solutions_pass(lib, number):
    printed = run_exercise(NB, number, lib)
    assert "✅" in printed and "❌" not in printed, printed


# -- 11.1 the causal mask -------------------------------------------------------------------
MASK_SEES_THE_FUTURE = """
def causal_mask(length):
    return jnp.triu(jnp.ones((length, length), dtype=bool))
"""
MASK_HIDES_ITSELF = """
def causal_mask(length):
    return jnp.tril(jnp.ones((length, length), dtype=bool), k=-1)
"""
MASK_OF_ONES = """
def causal_mask(length):
    return jnp.ones((length, length), dtype=bool)
"""
MASK_BY_COMPARISON = """
def causal_mask(length):
    positions = jnp.arange(length)
    return positions[:, None] >= positions[None, :]
"""
MASK_AS_NUMPY_FLOATS = """
def causal_mask(length):
    return np.tril(np.ones((length, length)))
"""


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("source", [MASK_SEES_THE_FUTURE, MASK_HIDES_ITSELF, MASK_OF_ONES],
                         ids=["future", "hides_itself", "ones"])
def test_11_1_wrong_masks_are_refused(lib, source):
    with pytest.raises(CheckFailed, match=r"must be True exactly where k <= q"):
        run_exercise(NB, "11.1", lib, [source])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("source", [MASK_BY_COMPARISON, MASK_AS_NUMPY_FLOATS],
                         ids=["comparison", "numpy_floats"])
def test_11_1_other_correct_masks_pass(lib, source):
    assert "❌" not in run_exercise(NB, "11.1", lib, [source])


# -- 11.2 the multi-head reshapes -------------------------------------------------------------
HEADS_BEFORE_LENGTH = """
def split_heads(x, num_heads):
    *batch, length, features = x.shape
    return x.reshape(*batch, num_heads, length, features // num_heads)


def merge_heads(x):
    *batch, num_heads, length, head_dim = x.shape
    return x.reshape(*batch, length, num_heads * head_dim)
"""
HEADS_INTERLEAVED = """
def split_heads(x, num_heads):
    *leading, features = x.shape
    return x.reshape(*leading, features // num_heads, num_heads).swapaxes(-1, -2)


def merge_heads(x):
    *leading, num_heads, head_dim = x.shape
    return x.swapaxes(-1, -2).reshape(*leading, num_heads * head_dim)
"""
MERGE_FLATTENS_LENGTH_TOO = """
def split_heads(x, num_heads):
    *leading, features = x.shape
    return x.reshape(*leading, num_heads, features // num_heads)


def merge_heads(x):
    return x.reshape(*x.shape[:-3], -1)
"""
RESHAPES_WITH_MINUS_ONE = """
def split_heads(x, num_heads):
    return jnp.reshape(x, x.shape[:-1] + (num_heads, -1))


def merge_heads(x):
    return jnp.reshape(x, x.shape[:-2] + (-1,))
"""


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("source, match", [
    (HEADS_BEFORE_LENGTH, r"heads come after length"),
    (HEADS_INTERLEAVED, r"head h must hold features h\*head_dim"),
    (MERGE_FLATTENS_LENGTH_TOO, r"merge_heads\(split_heads\(x\)\) should give back x"),
], ids=["heads_before_length", "interleaved", "merge_flattens_length"])
def test_11_2_wrong_reshapes_are_refused(lib, source, match):
    with pytest.raises(CheckFailed, match=match):
        run_exercise(NB, "11.2", lib, [source])


@pytest.mark.parametrize("lib", LIBS)
def test_11_2_reshapes_with_minus_one_pass(lib):
    assert "❌" not in run_exercise(NB, "11.2", lib, [RESHAPES_WITH_MINUS_ONE])


# -- 11.3 the cache update ------------------------------------------------------------------------
WRITES_THE_NEXT_SLOT = """
def update_cache(cache, new, index):
    return cache.at[:, index + 1].set(new[:, 0])
"""
CONCATENATES = """
def update_cache(cache, new, index):
    return jnp.concatenate([cache, new], axis=1)
"""
PYTHON_INDEX = """
def update_cache(cache, new, index):
    return cache.at[:, int(index)].set(new[:, 0])
"""
FILLS_TO_THE_END = """
def update_cache(cache, new, index):
    return jnp.where(jnp.arange(cache.shape[1])[None, :, None, None] >= index, new, cache)
"""
WITH_AT_SET = """
def update_cache(cache, new, index):
    return cache.at[:, index].set(new[:, 0])
"""


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("source, match", [
    (WRITES_THE_NEXT_SLOT, r"index 0, eager: position 0 does not hold `new`"),
    (CONCATENATES, r"the cache must keep its shape \(2, 6, 3, 4\), got \(2, 7, 3, 4\)"),
    (PYTHON_INDEX, r"your code raised .*\n.*hint: update_cache"),
    (FILLS_TO_THE_END, r"index 0, eager: positions other than 0 changed"),
], ids=["next_slot", "concatenate", "python_int", "fills_to_the_end"])
def test_11_3_wrong_updates_are_refused(lib, source, match):
    with pytest.raises(CheckFailed, match=match):
        run_exercise(NB, "11.3", lib, [source])


@pytest.mark.parametrize("lib", LIBS)
def test_11_3_at_set_passes(lib):
    assert "❌" not in run_exercise(NB, "11.3", lib, [WITH_AT_SET])


# -- 11.4 top-k sampling --------------------------------------------------------------------------
BOTTOM_K = """
def sample_top_k(logits, key, k, temperature=1.0):
    kth_smallest = -jax.lax.top_k(-logits, k)[0][..., -1:]
    logits = jnp.where(logits > kth_smallest, -jnp.inf, logits)
    return jax.random.categorical(key, logits / temperature)
"""
KEEPS_ONE_TOO_MANY = """
def sample_top_k(logits, key, k, temperature=1.0):
    threshold = jnp.sort(logits, axis=-1)[..., -k - 1][..., None]
    logits = jnp.where(logits < threshold, -jnp.inf, logits)
    return jax.random.categorical(key, logits / temperature)
"""
TAKES_ARGMAX = """
def sample_top_k(logits, key, k, temperature=1.0):
    return jnp.argmax(logits, axis=-1)
"""
MULTIPLIES_BY_TEMPERATURE = """
def sample_top_k(logits, key, k, temperature=1.0):
    kth_largest = jax.lax.top_k(logits, k)[0][..., -1:]
    logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
    return jax.random.categorical(key, logits * temperature)
"""
MASKS_WITH_ZERO = """
def sample_top_k(logits, key, k, temperature=1.0):
    kth_largest = jax.lax.top_k(logits, k)[0][..., -1:]
    logits = jnp.where(logits < kth_largest, 0.0, logits)
    return jax.random.categorical(key, logits / temperature)
"""
BY_SORTING = """
def sample_top_k(logits, key, k, temperature=1.0):
    threshold = jnp.sort(logits, axis=-1)[..., -k][..., None]
    scaled = jnp.where(logits >= threshold, logits / temperature, -jnp.inf)
    return jax.random.categorical(key, scaled, axis=-1)
"""


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("source, match", [
    (BOTTOM_K, r"k=1: drew tokens .* outside the top 1 \[1\]"),
    (KEEPS_ONE_TOO_MANY, r"k=1: drew tokens \[3\], outside the top 1 \[1\]"),
    (TAKES_ARGMAX, r"k=2: only \[1\] were drawn in 4000 draws"),
    (MULTIPLIES_BY_TEMPERATURE, r"temperature 2\.0: frequencies .* should be close to"),
    (MASKS_WITH_ZERO, r"k=1: drew tokens .* outside the top 1"),
], ids=["bottom_k", "one_too_many", "argmax", "multiplies_temperature", "masks_with_zero"])
def test_11_4_wrong_samplers_are_refused(lib, source, match):
    with pytest.raises(CheckFailed, match=match):
        run_exercise(NB, "11.4", lib, [source])


@pytest.mark.parametrize("lib", LIBS)
def test_11_4_sorting_sampler_passes(lib):
    assert "❌" not in run_exercise(NB, "11.4", lib, [BY_SORTING])
