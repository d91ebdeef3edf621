"""The checks of exercises 6.x, fed realistic wrong answers (each must be refused with the right
message) and alternative correct answers (each must pass), on minnx and on flax."""
import pytest

from course.grading import CheckFailed
from exercise_harness import run_exercise

NB = "06_training_loop"
LIBS = ["minnx", "flax"]


def test_the_solutions_pass():
    for number in ("6.1", "6.2", "6.3", "6.4", "6.5"):
        printed = run_exercise(NB, number, "minnx")
        assert "✅" in printed and "❌" not in printed, printed


# -- 6.1: the train step ---------------------------------------------------------------------
STEP_WITHOUT_UPDATE = '''
@nnx.jit
def train_step(model, optimizer, metrics, x, y):
    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, y)
    metrics.update(loss=loss, logits=logits, labels=y)
'''
METRICS_AFTER_UPDATE = '''
@nnx.jit
def train_step(model, optimizer, metrics, x, y):
    grads = nnx.grad(lambda m: loss_fn(m, x, y)[0])(model)
    optimizer.update(model, grads)
    loss, logits = loss_fn(model, x, y)          # the model after the update
    metrics.update(loss=loss, logits=logits, labels=y)
'''
STEP_WITH_GRAD_AND_A_SECOND_FORWARD = '''
@nnx.jit
def train_step(model, optimizer, metrics, x, y):
    grads = nnx.grad(lambda m: loss_fn(m, x, y)[0])(model)
    loss, logits = loss_fn(model, x, y)
    metrics.update(loss=loss, logits=logits, labels=y)
    optimizer.update(model, grads)
'''


@pytest.mark.parametrize("lib", LIBS)
def test_6_1_a_step_that_never_updates_is_refused(lib):
    with pytest.raises(CheckFailed, match="optimizer.step is 0"):
        run_exercise(NB, "6.1", lib, [STEP_WITHOUT_UPDATE])


@pytest.mark.parametrize("lib", LIBS)
def test_6_1_metrics_of_the_updated_model_are_refused(lib):
    with pytest.raises(CheckFailed, match="before optimizer.update"):
        run_exercise(NB, "6.1", lib, [METRICS_AFTER_UPDATE])


@pytest.mark.parametrize("lib", LIBS)
def test_6_1_grad_then_a_forward_pass_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "6.1", lib, [STEP_WITH_GRAD_AND_A_SECOND_FORWARD])


# -- 6.2: the evaluation step ----------------------------------------------------------------
EVAL_THAT_RESETS = '''
@nnx.jit
def eval_step(model, metrics, x, y):
    metrics.reset()
    loss, logits = loss_fn(model, x, y)
    metrics.update(loss=loss, logits=logits, labels=y)
'''
EVAL_WITH_PREDICTIONS_AS_LABELS = '''
@nnx.jit
def eval_step(model, metrics, x, y):
    loss, logits = loss_fn(model, x, y)
    metrics.update(loss=loss, logits=logits, labels=logits.argmax(-1))
'''
EVAL_WRITTEN_OUT = '''
@nnx.jit
def eval_step(model, metrics, x, y):
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    metrics.update(logits=logits, labels=y, loss=loss)
'''


@pytest.mark.parametrize("lib", LIBS)
def test_6_2_resetting_inside_eval_is_refused(lib):
    with pytest.raises(CheckFailed, match="do not reset them inside eval_step"):
        run_exercise(NB, "6.2", lib, [EVAL_THAT_RESETS])


@pytest.mark.parametrize("lib", LIBS)
def test_6_2_predictions_as_labels_are_refused(lib):
    with pytest.raises(CheckFailed, match="not the model's accuracy"):
        run_exercise(NB, "6.2", lib, [EVAL_WITH_PREDICTIONS_AS_LABELS])


@pytest.mark.parametrize("lib", LIBS)
def test_6_2_a_written_out_loss_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "6.2", lib, [EVAL_WRITTEN_OUT])


# -- 6.3: epochs -----------------------------------------------------------------------------
FIT_WITHOUT_RESET = '''
def fit(model, optimizer, metrics, epochs, batch_size):
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch_size):
            train_step(model, optimizer, metrics,
                       x_train[i:i + batch_size], y_train[i:i + batch_size])
        losses.append(float(metrics.compute()["loss"]))
    return losses
'''
FIT_LAST_BATCH_LOSS = '''
def fit(model, optimizer, metrics, epochs, batch_size):
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch_size):
            metrics.reset()
            train_step(model, optimizer, metrics,
                       x_train[i:i + batch_size], y_train[i:i + batch_size])
        losses.append(float(metrics.compute()["loss"]))
    metrics.reset()
    return losses
'''
FIT_LAST_BATCH_LOSS_FUNCTION = '''
def fit(model, optimizer, metrics, epochs, batch_size):
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch_size):
            xb, yb = x_train[i:i + batch_size], y_train[i:i + batch_size]
            train_step(model, optimizer, metrics, xb, yb)
        losses.append(float(loss_fn(model, xb, yb)[0]))   # the last batch, after its update
        metrics.reset()
    return losses
'''
FIT_DROPPING_THE_REMAINDER = '''
def fit(model, optimizer, metrics, epochs, batch_size):
    losses = []
    for _ in range(epochs):
        for b in range(len(x_train) // batch_size):
            sl = slice(b * batch_size, (b + 1) * batch_size)
            train_step(model, optimizer, metrics, x_train[sl], y_train[sl])
        losses.append(float(metrics.compute()["loss"]))
        metrics.reset()
    return losses
'''
FIT_RESETTING_FIRST = '''
import math

def fit(model, optimizer, metrics, epochs, batch_size):
    losses = []
    for epoch in range(epochs):
        metrics.reset()
        for b in range(math.ceil(len(x_train) / batch_size)):
            sl = slice(b * batch_size, (b + 1) * batch_size)
            train_step(model, optimizer, metrics, x_train[sl], y_train[sl])
        losses.append(metrics.compute()["loss"].item())
    return losses
'''


@pytest.mark.parametrize("lib", LIBS)
def test_6_3_never_resetting_is_refused(lib):
    with pytest.raises(CheckFailed, match="never reset"):
        run_exercise(NB, "6.3", lib, [FIT_WITHOUT_RESET])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("answer", [FIT_LAST_BATCH_LOSS, FIT_LAST_BATCH_LOSS_FUNCTION],
                         ids=["metrics", "loss_fn"])
def test_6_3_the_last_batch_loss_is_refused(lib, answer):
    with pytest.raises(CheckFailed, match="last batch|epochs' average"):
        run_exercise(NB, "6.3", lib, [answer])


@pytest.mark.parametrize("lib", LIBS)
def test_6_3_dropping_the_last_batch_is_refused(lib):
    with pytest.raises(CheckFailed, match="last smaller batch"):
        run_exercise(NB, "6.3", lib, [FIT_DROPPING_THE_REMAINDER])


@pytest.mark.parametrize("lib", LIBS)
def test_6_3_resetting_at_the_start_of_each_epoch_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "6.3", lib, [FIT_RESETTING_FIRST])


# -- 6.4: freeze the backbone ----------------------------------------------------------------
def freeze_answer(wrt, diff):
    return f'''
def make_head_optimizer(model, tx):
    return nnx.Optimizer(model, tx, wrt={wrt})

@nnx.jit
def train_head_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(lambda m: loss_fn(m, x, y)[0], {diff})(model)
    optimizer.update(model, grads)
    return loss, grads
'''


HEAD_PARAMS = 'nnx.All(nnx.Param, nnx.PathContains("head"))'


@pytest.mark.parametrize("lib", LIBS)
def test_6_4_an_optimizer_over_every_param_is_refused(lib):
    with pytest.raises(CheckFailed, match="state .* for the backbone"):
        run_exercise(NB, "6.4", lib, [freeze_answer("nnx.Param", "argnums=0")])


@pytest.mark.parametrize("lib", LIBS)
def test_6_4_a_filter_that_takes_batchnorm_statistics_is_refused(lib):
    with pytest.raises(CheckFailed, match="BatchNorm statistics"):
        run_exercise(NB, "6.4", lib, [freeze_answer('nnx.PathContains("head")',
                                                   "argnums=nnx.DiffState(0, optimizer.wrt)")])


@pytest.mark.parametrize("lib", LIBS)
def test_6_4_gradients_for_the_whole_model_are_refused(lib):
    with pytest.raises(CheckFailed, match="grads include the backbone"):
        run_exercise(NB, "6.4", lib, [freeze_answer(HEAD_PARAMS, "argnums=0")])


@pytest.mark.parametrize("lib", LIBS)
def test_6_4_another_filter_spelling_is_accepted(lib):
    wrt = 'nnx.All(nnx.Param, nnx.Not(nnx.PathContains("backbone")))'
    answer = freeze_answer(wrt, f"argnums=nnx.DiffState(0, {wrt})")
    assert "❌" not in run_exercise(NB, "6.4", lib, [answer])


# -- 6.5: an optimizer recipe ----------------------------------------------------------------
def recipe(body):
    indented = "".join("    " + line + "\n" for line in body.strip().splitlines())
    return "def make_tx(total_steps):\n" + indented


SCHEDULE = "sched = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, total_steps, 0.0)"
KERNELS = ("kernels = lambda p: jax.tree.map_with_path(\n"
           "    lambda path, _: 'kernel' in jax.tree_util.keystr(path), p)")
NO_MASK = recipe(f"""
{SCHEDULE}
return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(sched, weight_decay=1e-2))
""")
CLIPPING_AFTER = recipe(f"""
{SCHEDULE}
{KERNELS}
return optax.chain(optax.adamw(sched, weight_decay=1e-2, mask=kernels),
                   optax.clip_by_global_norm(1.0))
""")
WRONG_DECAY_STEPS = recipe(f"""
sched = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, total_steps + 10, 0.0)
{KERNELS}
return optax.chain(optax.clip_by_global_norm(1.0),
                   optax.adamw(sched, weight_decay=1e-2, mask=kernels))
""")
BY_PARTS = recipe("""
warmup = optax.linear_schedule(0.0, 1e-2, transition_steps=10)
cosine = optax.cosine_decay_schedule(1e-2, decay_steps=total_steps - 10)
sched = optax.join_schedules([warmup, cosine], boundaries=[10])
def is_kernel(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)
return optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                   optax.add_decayed_weights(1e-2, mask=is_kernel),
                   optax.scale_by_learning_rate(sched))
""")


@pytest.mark.parametrize("lib", LIBS)
def test_6_5_decaying_the_biases_is_refused(lib):
    with pytest.raises(CheckFailed, match="biases are decayed"):
        run_exercise(NB, "6.5", lib, [NO_MASK])


@pytest.mark.parametrize("lib", LIBS)
def test_6_5_clipping_after_adamw_is_refused(lib):
    with pytest.raises(CheckFailed, match="clip the global norm"):
        run_exercise(NB, "6.5", lib, [CLIPPING_AFTER])


@pytest.mark.parametrize("lib", LIBS)
def test_6_5_a_schedule_that_ends_late_is_refused(lib):
    with pytest.raises(CheckFailed, match="learning rate asked for"):
        run_exercise(NB, "6.5", lib, [WRONG_DECAY_STEPS])


@pytest.mark.parametrize("lib", LIBS)
def test_6_5_the_recipe_written_out_in_parts_is_accepted(lib):
    assert "❌" not in run_exercise(NB, "6.5", lib, [BY_PARTS])
