"""The checks of exercises 9.x, fed realistic wrong answers (each must be refused with the right
message) and alternative correct answers (each must pass), on minnx and on flax."""
import warnings

import pytest

from course.grading import CheckFailed
from exercise_harness import run_exercise

NB = "09_checkpoints_debugging_speed"
LIBS = ["minnx", "flax"]
# The wrong answer of test_9_4_restoring_the_whole_checkpoint_is_refused makes Orbax fail while
# reading arrays in the background; the reads it abandons are reported when they are garbage
# collected, which may be during a later test of this module.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_the_solutions_pass():
    for number in ("9.1", "9.2", "9.3", "9.4"):
        printed = run_exercise(NB, number, "minnx")
        assert "✅" in printed and "❌" not in printed, printed


# -- 9.1: resume exactly ---------------------------------------------------------------------
SAVE_WHOLE_RUN = '''
def save_run(path, model, optimizer):
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.to_pure_dict(nnx.state((model, optimizer))))
    checkpointer.wait_until_finished()
'''
MODEL_ONLY = '''
def save_run(path, model, optimizer):
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.to_pure_dict(nnx.state(model)))
    checkpointer.wait_until_finished()

def load_run(path):
    abstract_model, abstract_optimizer = nnx.eval_shape(lambda: make_run())
    graphdef, abstract_state = nnx.split(abstract_model)
    abstract_state.replace_by_pure_dict(
        ocp.StandardCheckpointer().restore(path, nnx.to_pure_dict(abstract_state)))
    model = nnx.merge(graphdef, abstract_state)
    return model, nnx.Optimizer(model, optax.adamw(3e-3), wrt=nnx.Param)
'''
RESEEDED_AFTER_LOADING = SAVE_WHOLE_RUN + '''
def load_run(path):
    graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: make_run()))
    abstract_state.replace_by_pure_dict(
        ocp.StandardCheckpointer().restore(path, nnx.to_pure_dict(abstract_state)))
    model, optimizer = nnx.merge(graphdef, abstract_state)
    # "fresh randomness after a restart"
    nnx.update(model, nnx.state(make_run(seed=1)[0], nnx.RngState))
    return model, optimizer
'''
CONCRETE_TARGET = SAVE_WHOLE_RUN + '''
def load_run(path):
    model, optimizer = make_run()
    state = nnx.state((model, optimizer))
    state.replace_by_pure_dict(ocp.StandardCheckpointer().restore(path, nnx.to_pure_dict(state)))
    nnx.update((model, optimizer), state)
    return model, optimizer
'''
STATE_NOT_PURE_DICT = '''
def save_run(path, model, optimizer):
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, nnx.state((model, optimizer)))
    checkpointer.wait_until_finished()

def load_run(path):
    abstract = nnx.eval_shape(make_run)
    graphdef, abstract_state = nnx.split(abstract)
    restored = ocp.StandardCheckpointer().restore(path, abstract_state)
    return nnx.merge(graphdef, restored)
'''


@pytest.mark.parametrize("lib", LIBS)
def test_9_1_saving_the_model_only_is_refused(lib):
    with pytest.raises(CheckFailed, match="optimizer's state too"):
        run_exercise(NB, "9.1", lib, [MODEL_ONLY])


@pytest.mark.parametrize("lib", LIBS)
def test_9_1_reseeding_after_loading_is_refused(lib):
    with pytest.raises(CheckFailed, match="RNG state"):
        run_exercise(NB, "9.1", lib, [RESEEDED_AFTER_LOADING])


@pytest.mark.parametrize("lib", LIBS)
def test_9_1_a_concrete_restore_target_is_refused(lib):
    with pytest.raises(CheckFailed, match="nnx.eval_shape"):
        run_exercise(NB, "9.1", lib, [CONCRETE_TARGET])


@pytest.mark.parametrize("lib", LIBS)
def test_9_1_saving_the_state_itself_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "9.1", lib, [STATE_NOT_PURE_DICT])


# -- 9.2: find the NaN, then fix it ----------------------------------------------------------
NAN_TO_NUM = '''
def stable_cross_entropy(logits, labels):
    return jnp.nan_to_num(naive_cross_entropy(logits, labels))
'''
EPSILON = '''
def stable_cross_entropy(logits, labels):
    probs = jax.nn.softmax(logits, axis=-1)            # subtracts the max: no overflow
    return -jnp.log(probs[jnp.arange(len(labels)), labels] + 1e-9).mean()
'''
MAX_SUBTRACTED_THEN_LOG = '''
def stable_cross_entropy(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    probs = jnp.exp(z) / jnp.exp(z).sum(-1, keepdims=True)
    return -jnp.log(probs[jnp.arange(len(labels)), labels]).mean()
'''
LOGSUMEXP = '''
def stable_cross_entropy(logits, labels):
    target = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    return (jax.scipy.special.logsumexp(logits, axis=1) - target).mean()
'''
OPTAX = '''
def stable_cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
'''


@pytest.mark.parametrize("lib", LIBS)
def test_9_2_hiding_the_nan_is_refused(lib):
    with pytest.raises(CheckFailed, match="hiding the NaN"):
        run_exercise(NB, "9.2", lib, [NAN_TO_NUM])


@pytest.mark.parametrize("lib", LIBS)
def test_9_2_an_epsilon_in_the_log_is_refused(lib):
    with pytest.raises(CheckFailed, match="expected"):
        run_exercise(NB, "9.2", lib, [EPSILON])


@pytest.mark.parametrize("lib", LIBS)
def test_9_2_log_of_a_stable_softmax_is_refused(lib):
    with pytest.raises(CheckFailed, match="log space"):
        run_exercise(NB, "9.2", lib, [MAX_SUBTRACTED_THEN_LOG])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer", [LOGSUMEXP, OPTAX], ids=["logsumexp", "optax"])
def test_9_2_other_stable_forms_are_accepted(lib, answer):
    assert "❌" not in run_exercise(NB, "9.2", lib, [answer])


# -- 9.3: fix a retracing loop ---------------------------------------------------------------
UNCHANGED = '''
def epoch(model, optimizer, x, y, batch_size):
    epoch_that_retraces(model, optimizer, x, y, batch_size)
'''
DROPS_THE_LAST_BATCH = '''
def epoch(model, optimizer, x, y, batch_size):
    for i in range(len(x) // batch_size):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        weighted_step(model, optimizer, x[sl], y[sl], jnp.ones(batch_size))
'''
PADS_WITH_WEIGHT_ONE = '''
def epoch(model, optimizer, x, y, batch_size):
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        pad = batch_size - len(xb)
        xb, yb = jnp.pad(xb, ((0, pad), (0, 0))), jnp.pad(yb, (0, pad))
        weighted_step(model, optimizer, xb, yb, jnp.ones(batch_size))
'''
PADS_BY_REPEATING = '''
import math

def epoch(model, optimizer, x, y, batch_size):
    steps = math.ceil(len(x) / batch_size)
    total = steps * batch_size
    index = jnp.arange(total) % len(x)                       # wrap around to fill the last batch
    weights = (jnp.arange(total) < len(x)).astype(jnp.float32)
    for s in range(steps):
        sl = index[s * batch_size:(s + 1) * batch_size]
        weighted_step(model, optimizer, x[sl], y[sl], weights[s * batch_size:(s + 1) * batch_size])
'''


@pytest.mark.parametrize("lib", LIBS)
def test_9_3_the_retracing_loop_is_refused(lib):
    with pytest.raises(CheckFailed, match="pad the last one"):
        run_exercise(NB, "9.3", lib, [UNCHANGED])


@pytest.mark.parametrize("lib", LIBS)
def test_9_3_dropping_the_last_batch_is_refused(lib):
    with pytest.raises(CheckFailed, match="do not drop it"):
        run_exercise(NB, "9.3", lib, [DROPS_THE_LAST_BATCH])


@pytest.mark.parametrize("lib", LIBS)
def test_9_3_padding_that_counts_is_refused(lib):
    with pytest.raises(CheckFailed, match="weight 0"):
        run_exercise(NB, "9.3", lib, [PADS_WITH_WEIGHT_ONE])


@pytest.mark.parametrize("lib", LIBS)
def test_9_3_padding_by_repeating_examples_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "9.3", lib, [PADS_BY_REPEATING])


# -- 9.4: a pretrained backbone under a new head ---------------------------------------------
FULL_RESTORE = '''
def load_backbone(path, model):
    state = nnx.state(model)
    state.replace_by_pure_dict(ocp.StandardCheckpointer().restore(path, nnx.to_pure_dict(state)))
    nnx.update(model, state)
'''
FIRST_LAYER_ONLY = '''
def load_backbone(path, model):
    layer = model.backbone.layers[0]
    target = {"backbone": {"layers": {0: nnx.to_pure_dict(nnx.state(layer))}}}
    restored = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True))
    state = nnx.state(layer)
    state.replace_by_pure_dict(restored["backbone"]["layers"][0])
    nnx.update(layer, state)
'''
EVERYTHING_BUT_THE_HEAD = '''
def load_backbone(path, model):
    target = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.PathContains("head"))))
    restored = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True))
    state = nnx.state(model, nnx.Not(nnx.PathContains("head")))
    state.replace_by_pure_dict(restored)
    nnx.update(model, state)
'''
OLD_STRUCTURE_THEN_SURGERY = '''
def load_backbone(path, model):
    abstract_model = nnx.eval_shape(lambda: Classifier(rngs=nnx.Rngs(0), classes=2))
    graphdef, abstract_state = nnx.split(abstract_model)
    abstract_state.replace_by_pure_dict(
        ocp.StandardCheckpointer().restore(path, nnx.to_pure_dict(abstract_state)))
    old = nnx.merge(graphdef, abstract_state)
    nnx.update(model.backbone, nnx.state(old.backbone))
'''


@pytest.mark.parametrize("lib", LIBS)
def test_9_4_restoring_the_whole_checkpoint_is_refused(lib):
    with warnings.catch_warnings():
        # Orbax's abandoned reads after the error
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(CheckFailed, match="not compatible with the stored shape"):
            run_exercise(NB, "9.4", lib, [FULL_RESTORE])


@pytest.mark.parametrize("lib", LIBS)
def test_9_4_one_layer_of_the_backbone_is_refused(lib):
    with pytest.raises(CheckFailed, match="all its layers"):
        run_exercise(NB, "9.4", lib, [FIRST_LAYER_ONLY])


@pytest.mark.parametrize("lib", LIBS)
def test_9_4_restoring_the_rng_state_too_is_refused(lib):
    with pytest.raises(CheckFailed, match="restore the backbone only"):
        run_exercise(NB, "9.4", lib, [EVERYTHING_BUT_THE_HEAD])


@pytest.mark.parametrize("lib", LIBS)
def test_9_4_restoring_the_old_model_and_copying_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "9.4", lib, [OLD_STRUCTURE_THEN_SURGERY])
