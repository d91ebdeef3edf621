"""The checks of exercises 10 (scale out) refuse realistic wrong answers and accept other correct
ones, on minnx and on flax. They need 8 devices: tests/test_on_8_devices.py runs this file in a
process that has them."""
import pytest

from course.grading import CheckFailed
from eight_devices import only_with_8_devices
from exercise_harness import run_exercise

pytestmark = only_with_8_devices
NB = "10_scale_out"
LIBS = ["minnx", "flax"]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("number", ["10.1", "10.2", "10.3", "10.4"])
def test_the_solution_passes(lib, number):
    printed = run_exercise(NB, number, lib)
    assert "✅" in printed and "❌" not in printed, printed


# -- 10.1: shard a batch --------------------------------------------------------------------------
SHARD_ON_ONE_DEVICE = '''
def shard_batch(batch, mesh):
    return jax.device_put(batch)
'''
SHARD_OVER_EVERY_AXIS = '''
def shard_batch(batch, mesh):
    return jax.device_put(batch, NamedSharding(mesh, P(mesh.axis_names)))
'''
SHARD_THE_SECOND_DIMENSION = '''
def shard_batch(batch, mesh):
    return {k: jax.device_put(v, NamedSharding(mesh, P(None, "data"))) for k, v in batch.items()}
'''
SHARD_AS_FLOATS = '''
def shard_batch(batch, mesh):
    return {k: jax.device_put(jnp.asarray(v, jnp.float32), NamedSharding(mesh, P("data")))
            for k, v in batch.items()}
'''
SHARD_WITH_TRAILING_NONES_UNDER_THE_MESH = '''
def shard_batch(batch, mesh):
    with jax.set_mesh(mesh):
        return {k: jax.device_put(v, P("data", *[None] * (np.ndim(v) - 1)))
                for k, v in batch.items()}
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer, words", [
    (SHARD_ON_ONE_DEVICE, "split its first dimension over 'data'"),
    (SHARD_OVER_EVERY_AXIS, r"over 'data' and nothing else"),
    (SHARD_THE_SECOND_DIMENSION, "your code raised"),
    (SHARD_AS_FLOATS, "the values or the dtype"),
])
def test_10_1_wrong_layouts_are_refused(lib, answer, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "10.1", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_10_1_a_spec_with_trailing_nones_under_the_mesh_passes(lib):
    assert "❌" not in run_exercise(NB, "10.1", lib, [SHARD_WITH_TRAILING_NONES_UNDER_THE_MESH])


# -- 10.2: the PartitionSpecs of a tensor-parallel block ------------------------------------------
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("specs, words", [
    # both layers split by columns: the output comes out split over "model"
    ('((None, "model"), ("model",), (None, "model"), None)', "split down's kernel by its rows"),
    # rows, then columns: the output comes out split over "model"
    ('(("model", None), ("model",), (None, "model"), None)',
     "split its features over 'model'|split down's kernel by its rows"),
    # the right kernels, but up's bias left whole
    ('((None, "model"), None, ("model", None), None)', "of up's bias"),
    # the right kernels, but down's bias split too
    ('((None, "model"), ("model",), ("model", None), ("model",))', "down's bias is split"),
    # FSDP mixed in: parameters split over "data" as well
    ('(("data", "model"), ("model",), ("model", "data"), None)', "over 'model' only"),
    ('((None, "model"), ("model",))', "it needs four"),
])
def test_10_2_wrong_specs_are_refused(lib, specs, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "10.2", lib, [f"TP_SPECS = {specs}"])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("specs", [
    '(P(None, "model"), P("model"), P("model", None), P())',
    '((None, ("model",)), (("model",),), ("model", None), ())',
])
def test_10_2_other_ways_to_write_the_answer_pass(lib, specs):
    assert "❌" not in run_exercise(NB, "10.2", lib, [f"TP_SPECS = {specs}"])


@pytest.mark.parametrize("lib", LIBS)
def test_10_2_the_communication_check_fires(lib):
    """No layout passes the earlier checks and communicates more, so this answer fakes the count:
    the last check must read it and refuse."""
    answer = ('TP_SPECS = ((None, "model"), ("model",), ("model", None), None)\n'
              'communication = lambda f, model, *args: {"all-gather": 1, "all-reduce": 1}')
    with pytest.raises(CheckFailed, match="needs exactly one all-reduce"):
        run_exercise(NB, "10.2", lib, [answer])


# -- 10.3: FSDP on top, half the bytes per device -------------------------------------------------
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("specs, words", [
    ('((None, "model"), ("model", None))', "half of it needs"),                    # unchanged
    ('(("data", None), ("data", None))', "half of it needs"),                      # FSDP only
    ('(("model", "data"), ("data", "model"))', "keep 'model' on the hidden"),      # swapped
    ('((None, ("model", "data")), (("model", "data"), None))', "keep 'model' on the hidden"),
])
def test_10_3_wrong_specs_are_refused(lib, specs, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "10.3", lib, [f"FSDP_TP_SPECS = {specs}"])


@pytest.mark.parametrize("lib", LIBS)
def test_10_3_partition_specs_with_one_axis_tuples_pass(lib):
    answer = 'FSDP_TP_SPECS = (P(("data",), "model"), P("model", ("data",)))'
    assert "❌" not in run_exercise(NB, "10.3", lib, [answer])


# -- 10.4: restore a sharded checkpoint -----------------------------------------------------------
RESTORE_INTO_AN_EAGER_MODEL = '''
def restore(checkpoint_dir, make_model, mesh):
    with jax.set_mesh(mesh):
        model = make_model()
    state = nnx.state(model)
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding),
                          state)
    nnx.update(model, ocp.StandardCheckpointer().restore(checkpoint_dir, target))
    return model
'''
RESTORE_WITHOUT_SHARDINGS = '''
def restore(checkpoint_dir, make_model, mesh):
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(make_model)
    graphdef, abstract_state = nnx.split(abstract)
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), abstract_state)
    return nnx.merge(graphdef, ocp.StandardCheckpointer().restore(checkpoint_dir, target))
'''
RESTORE_THE_STATE_ONLY = '''
def restore(checkpoint_dir, make_model, mesh):
    with jax.set_mesh(mesh):
        abstract = nnx.eval_shape(make_model)
    graphdef, abstract_state = nnx.split(abstract)
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract_state, nnx.get_named_sharding(abstract_state, mesh))
    return ocp.StandardCheckpointer().restore(checkpoint_dir, target)
'''
FORGET_TO_RESTORE = '''
def restore(checkpoint_dir, make_model, mesh):
    with jax.set_mesh(mesh):
        return nnx.jit(make_model)()
'''
RESTORE_INTO_A_MODEL_CREATED_UNDER_JIT = '''
def restore(checkpoint_dir, make_model, mesh):
    with jax.set_mesh(mesh):
        model = nnx.jit(make_model)()
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding),
                          nnx.state(model))
    nnx.update(model, ocp.StandardCheckpointer().restore(checkpoint_dir, target))
    return model
'''


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer, words", [
    (RESTORE_INTO_AN_EAGER_MODEL, "make_model ran eagerly"),
    (RESTORE_WITHOUT_SHARDINGS, "give the restore target the shardings"),
    (RESTORE_THE_STATE_ONLY, "return the model"),
    (FORGET_TO_RESTORE, "not the checkpoint's"),
])
def test_10_4_wrong_restores_are_refused(lib, answer, words):
    with pytest.raises(CheckFailed, match=words):
        run_exercise(NB, "10.4", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_10_4_restoring_into_a_model_created_under_jit_passes(lib):
    assert "❌" not in run_exercise(NB, "10.4", lib, [RESTORE_INTO_A_MODEL_CREATED_UNDER_JIT])
