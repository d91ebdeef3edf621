"""Notebook 7's pieces that nbval cannot exercise: MNIST loading on a machine with neither the data
nor internet, and the Orbax checkpoint round trip on minnx and flax.nnx alike."""
import json
import os
import pathlib
import socket
import tempfile
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
import pytest
from oracle import run_both

NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "07_mnist_cnn.ipynb"


def notebook_cell(marker):
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return next("".join(c["source"]) for c in cells
                if c["cell_type"] == "code" and marker in "".join(c["source"]))


def test_loading_mnist_offline_without_data_stops_at_once(monkeypatch, tmp_path):
    source = notebook_cell("def load_mnist")
    import numpy as np
    import tensorflow_datasets as tfds
    # what the notebook imported before
    namespace = {"os": os, "socket": socket, "np": np, "tfds": tfds}
    # the function, not the calls
    exec(source.split("\ntrain_images, train_labels = load_mnist")[0], namespace)

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")
    monkeypatch.setattr(socket, "create_connection", no_network)  # never download in a test
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # an empty folder: no prepared MNIST
    start = time.perf_counter()
    with pytest.raises(RuntimeError,
                       match="MNIST is not prepared in .* no internet to download it"):
        namespace["load_mnist"]("test")
    assert time.perf_counter() - start < 30


def test_checkpoint_round_trip_gives_identical_predictions():
    def body(nnx):
        def model(seed):
            return nnx.Sequential(nnx.Conv(1, 4, kernel_size=(3, 3), rngs=nnx.Rngs(seed)),
                                  nnx.relu,
                                  lambda x: x.reshape(x.shape[0], -1),
                                  nnx.Linear(28 * 28 * 4, 10, rngs=nnx.Rngs(seed)))
        trained, fresh = model(0), model(1)
        directory = os.path.join(tempfile.mkdtemp(), "checkpoint")
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(directory, nnx.to_pure_dict(nnx.state(trained)))
        checkpointer.wait_until_finished()
        state = nnx.state(fresh)
        state.replace_by_pure_dict(checkpointer.restore(directory, nnx.to_pure_dict(state)))
        nnx.update(fresh, state)
        x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
        return {"trained": trained(x), "restored": fresh(x),
                "same": bool(jnp.array_equal(trained(x), fresh(x)))}
    assert run_both(body)["same"]
