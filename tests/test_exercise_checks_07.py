"""The checks of exercises 7 (solutions/07_mnist_cnn.ipynb) grade like a teacher.

Realistic wrong answers must print a ❌ (CheckFailed under test) whose words say what is wrong, and
other correct answers must print only ✅. Every case runs on minnx and on flax.
"""
import textwrap


from exercise_harness import shared_tests

NB = "07_mnist_cnn"
NUMBERS = ["7.1", "7.2", "7.3", "7.4"]


def indented(text, spaces):
    return textwrap.indent(textwrap.dedent(text).strip(), " " * spaces)


LAYERS = """
    self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
    self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
    self.linear2 = nnx.Linear(256, 10, rngs=rngs)
"""
FORWARD = """
    x = nnx.avg_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
    x = nnx.avg_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    return self.linear2(nnx.relu(self.linear1(x)))
"""


def cnn(layers=LAYERS, forward=FORWARD):
    return ("class CNN(nnx.Module):\n    def __init__(self, *, rngs):\n"
            f"{indented(layers, 8)}\n\n    def __call__(self, x):\n{indented(forward, 8)}\n")


def accuracy(body):
    return f"def accuracy(model, images, labels, batch_size):\n{indented(body, 4)}\n"


SAVE = """
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory, nnx.to_pure_dict(nnx.state(model)))
    checkpointer.wait_until_finished()
"""
RESTORE = """
    state = nnx.state(model)
    restored = ocp.StandardCheckpointer().restore(directory, nnx.to_pure_dict(state))
    state.replace_by_pure_dict(restored)
    nnx.update(model, state)
"""


def checkpoint(save=SAVE, restore=RESTORE):
    return (f"def save(model, directory):\n{indented(save, 4)}\n\n\n"
            f"def restore(model, directory):\n{indented(restore, 4)}\n")


LOSS_FN = """def loss_fn(model, images, labels):
    logits = model(images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits


"""


def train_step(body):
    return (LOSS_FN + "@nnx.jit\ndef train_step(model, optimizer, metrics, images, labels):\n"
            f"{indented(body, 4)}\n")


WRONG = [
    ("7.1", "PyTorch's x.flatten(1)", [cnn(forward=FORWARD.replace(
        "x = x.reshape(x.shape[0], -1)", "x = x.flatten(1)"))],
     "raised ValueError.*\n.*x.reshape\\(x.shape\\[0\\], -1\\)"),
    ("7.1", "max pooling", [cnn(forward=FORWARD.replace("avg_pool", "max_pool"))],
     "the logits differ from conv1 -> ReLU -> avg_pool"),
    ("7.1", "the batch flattened too", [cnn(forward=FORWARD.replace(
        "x = x.reshape(x.shape[0], -1)", "x = x.reshape(-1)"))], "raised|output shape"),
    ("7.1", "the ReLU after the pooling", [cnn(forward="""
        x = nnx.relu(nnx.avg_pool(self.conv1(x), window_shape=(2, 2), strides=(2, 2)))
        x = nnx.relu(nnx.avg_pool(self.conv2(x), window_shape=(2, 2), strides=(2, 2)))
        return self.linear2(nnx.relu(self.linear1(x.reshape(x.shape[0], -1))))
        """)], "the logits differ"),
    ("7.2", "the last, shorter batch dropped", [accuracy("""
        correct = 0
        for i in range(0, len(images) - batch_size + 1, batch_size):
            predictions = model(jnp.asarray(images[i:i + batch_size])).argmax(-1)
            correct += int((predictions == labels[i:i + batch_size]).sum())
        return correct / len(images)
        """)], "2500 images in batches of 1000: got .*last, shorter batch"),
    ("7.2", "the mean of the batches' accuracies", [accuracy("""
        scores = []
        for i in range(0, len(images), batch_size):
            predictions = model(jnp.asarray(images[i:i + batch_size])).argmax(-1)
            scores.append(float((predictions == labels[i:i + batch_size]).mean()))
        return sum(scores) / len(scores)
        """)], "in batches of .*: got"),
    ("7.2", "everything in one call", [accuracy("""
        return float((model(jnp.asarray(images)).argmax(-1) == labels).mean())
        """)], "received 2500 images in one call"),
    ("7.2", "a jax array, not a float", [accuracy("""
        correct = 0
        for i in range(0, len(images), batch_size):
            predictions = model(jnp.asarray(images[i:i + batch_size])).argmax(-1)
            correct += (predictions == labels[i:i + batch_size]).sum()
        return correct / len(images)
        """)], "got Array.*expected the float"),
    ("7.3", "only the Params saved", [checkpoint(save=SAVE.replace(
        "nnx.state(model)", "nnx.state(model, nnx.Param)"))], "raised|statistics"),
    ("7.3", "restored but never written into the model", [checkpoint(
        restore=RESTORE.replace("nnx.update(model, state)", ""))], "logits differ"),
    ("7.3", "a new model returned instead", [checkpoint(restore="""
        fresh = nnx.clone(model)
        state = nnx.state(fresh)
        restored = ocp.StandardCheckpointer().restore(directory, nnx.to_pure_dict(state))
        state.replace_by_pure_dict(restored)
        nnx.update(fresh, state)
        return fresh
        """)], "logits differ"),
    ("7.4", "the metrics not updated", [train_step("""
        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, images, labels)
        optimizer.update(model, grads)
        """)], "metrics hold|raised"),
    ("7.4", "no optimizer step", [train_step("""
        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, images, labels)
        metrics.update(loss=loss, logits=logits, labels=labels)
        """)], "after three steps the parameters differ"),
    ("7.4", "has_aux forgotten", [train_step("""
        (loss, logits), grads = nnx.value_and_grad(loss_fn)(model, images, labels)
        metrics.update(loss=loss, logits=logits, labels=labels)
        optimizer.update(model, grads)
        """)], "raised"),
    ("7.4", "the optimizer's old one-argument update", [train_step("""
        (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, images, labels)
        metrics.update(loss=loss, logits=logits, labels=labels)
        optimizer.update(grads)
        """)], "raised TypeError"),
]

RIGHT = [
    ("7.1", "reshape with a tuple, pools by position", [cnn(forward="""
        x = nnx.avg_pool(jax.nn.relu(self.conv1(x)), (2, 2), (2, 2))
        x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), (2, 2), (2, 2))
        x = jnp.reshape(x, (len(x), -1))
        return self.linear2(jax.nn.relu(self.linear1(x)))
        """)]),
    ("7.2", "np.array_split and a sum of booleans", [accuracy("""
        n_batches = -(-len(images) // batch_size)
        hits = 0
        for xs, ys in zip(np.array_split(images, n_batches), np.array_split(labels, n_batches)):
            hits += int(np.sum(np.asarray(model(jnp.asarray(xs))).argmax(-1) == ys))
        return float(hits / len(labels))
        """)]),
    ("7.3", "the checkpointer as a context manager", [checkpoint(save="""
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(directory, nnx.to_pure_dict(nnx.state(model)))
        """, restore="""
        target = nnx.to_pure_dict(nnx.state(model))
        restored = ocp.StandardCheckpointer().restore(directory, target)
        state = nnx.state(model)
        state.replace_by_pure_dict(restored)
        nnx.update(model, state)
        """)]),
    ("7.4", "grad with has_aux and the loss from the logits", [train_step("""
        grads, logits = nnx.grad(loss_fn, has_aux=True)(model, images, labels)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        metrics.update(loss=loss, logits=logits, labels=labels)
        optimizer.update(model, grads)
        """)]),
]


(test_the_solution_passes, test_a_wrong_answer_gets_a_cross_that_says_why,
 test_another_correct_answer_passes,
 test_every_exercise_has_two_wrong_answers_and_a_right_one) = shared_tests(NB, NUMBERS, WRONG,
                                                                           RIGHT)
