"""Make the PyTorch checkpoints that notebook 8 ports to NNX, and PyTorch's outputs to check
against.

Notebook 8 ("From PyTorch to NNX") and its exercises read these files, with `safetensors` and numpy
only; this script is the one place that needs PyTorch. It trains three small models on MNIST in
PyTorch and writes, into `notebooks/data/pytorch/`:

    cnn.safetensors          the CNN's state_dict: Conv2d, BatchNorm2d (with running stats), Linear
    cnn_outputs.safetensors  its logits for the first 256 test images, their labels, and its
                             predictions for all 10,000 test images
    mlp.safetensors          an MLP with LayerNorm and GELU (exercise 8.4)
    mlp_outputs.safetensors  its logits for the first 256 test images
    lstm.safetensors         an LSTM that reads an image row by row, and a Linear (exercise 8.5)
    lstm_outputs.safetensors its logits for the first 256 test images
    habits.safetensors       PyTorch's own numbers for the notebook's "PyTorch habits that break"

PyTorch is not part of the course's requirements. Install it in an environment of its own, outside
the repository (torch 2.13.0 is the version the committed files were made with):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 safetensors numpy tensorflow-datasets==4.9.10 \
        array-record==0.8.6 pillow
    /tmp/torchenv/bin/python tools/make_pytorch_checkpoints.py \
        --data-dir ../shared/datasets/tensorflow_datasets

MNIST is read with `tfds.data_source` (no TensorFlow) from `--data-dir` (default: $TFDS_DATA_DIR).
Everything is seeded. The run that made the committed files used 12 minutes of CPU time on a
2-core machine (54 minutes of wall time, shared with other jobs). Rerun on the same machine and
torch version, it writes the same tensors; elsewhere the last bits of the floats may differ, which
is why PyTorch's outputs are stored next to the weights: the notebook checks NNX against these
files.
"""
import argparse
import os
import pathlib
import time

import numpy as np
import tensorflow_datasets as tfds
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "notebooks" / "data" / "pytorch"
MEAN, STD = 0.1307, 0.3081   # MNIST's pixel mean and standard deviation (torchvision's examples)
N_STORED = 256               # the first 256 test images get their logits stored


# ---------------------------------------------------------------------------------------- models
class CNN(nn.Module):
    """Notebook 8's model: two conv blocks with BatchNorm and max pooling, then two Linears."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):                       # x: (N, 1, 28, 28), channels first
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)                 # (N, 32 * 7 * 7), in (C, H, W) order
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class MLP(nn.Module):
    """Exercise 8.4: Linear, LayerNorm, exact GELU, Linear, on flattened images."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.norm = nn.LayerNorm(128)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):                       # x: (N, 784)
        return self.fc2(self.act(self.norm(self.fc1(x))))


class RowLSTM(nn.Module):
    """Exercise 8.5: an LSTM reads an image's 28 rows as 28 time steps, a Linear its last h."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):                       # x: (N, 28 rows, 28 pixels)
        outputs, (h, c) = self.lstm(x)
        return self.fc(outputs[:, -1])


# ------------------------------------------------------------------------------------------ data
def load_mnist(split, data_dir):
    """`split` as (images float32 (n, 1, 28, 28), normalised as PyTorch's examples do; labels)."""
    source = tfds.data_source("mnist", split=split, data_dir=data_dir, download=False)
    images = np.stack([record["image"] for record in source])              # (n, 28, 28, 1) uint8
    labels = np.array([record["label"] for record in source], dtype=np.int64)
    images = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels)


def inputs_for(model, images):
    """The CNN takes (N, 1, 28, 28); the MLP flattened images; the LSTM (N, 28 rows, 28 pixels)."""
    if isinstance(model, MLP):
        return images.flatten(1)
    if isinstance(model, RowLSTM):
        return images[:, 0]
    return images


def train(model, images, labels, epochs, seed, batch_size=128, lr=1e-3):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(model(inputs_for(model, images[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"  {type(model).__name__} epoch {epoch + 1}: last batch loss {loss.item():.4f}")
    model.eval()


@torch.no_grad()
def logits_of(model, images, batch_size=1000):
    model.eval()
    return torch.cat([model(inputs_for(model, images[i:i + batch_size]))
                      for i in range(0, len(images), batch_size)])


def state_dict_arrays(model):
    """The state_dict as numpy arrays, exactly the tensors `torch.save` would write."""
    return {name: tensor.detach().numpy().copy() for name, tensor in model.state_dict().items()}


def save(name, arrays, description):
    path = OUT / name
    # (np.array keeps 0-d arrays 0-d)
    arrays = {k: np.array(v, order="C") for k, v in arrays.items()}
    # one metadata entry: safetensors writes several in no fixed order, so reruns would differ
    about = f"{description}; made by {pathlib.Path(__file__).name}, torch {torch.__version__}"
    save_file(arrays, str(path), metadata={"about": about})
    print(f"  wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.1f} KiB)")


# ---------------------------------------------------------------------------------------- habits
@torch.no_grad()
def habit_numbers():
    """PyTorch's own results for the notebook's "habits that break": NNX is compared with these."""
    torch.manual_seed(1)
    out = {}
    # nn.GELU() is exact (erf); nn.GELU(approximate="tanh") is the tanh formula
    x = torch.linspace(-4, 4, 81)
    out["gelu.x"], out["gelu.exact"] = x, nn.GELU()(x)
    out["gelu.tanh"] = nn.GELU(approximate="tanh")(x)
    # nn.LayerNorm's eps is 1e-5; an input with a small spread makes eps visible
    x = torch.randn(4, 16) * 0.01
    out["layernorm.x"], out["layernorm.y"] = x, nn.LayerNorm(16)(x)
    # Conv2d(padding=1) at stride 1 and 2 on an 8x8 image
    conv = nn.Conv2d(1, 1, kernel_size=3, padding=1, bias=False)
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8) / 64
    out["conv.x"], out["conv.weight"] = x, conv.weight
    out["conv.stride1"] = F.conv2d(x, conv.weight, stride=1, padding=1)
    out["conv.stride2"] = F.conv2d(x, conv.weight, stride=2, padding=1)
    # Adam(weight_decay=...) adds wd * p to the gradient (L2); AdamW decays the weights directly
    start, target = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([0.0, 1.0, 2.0, -1.0])
    out["adam.start"], out["adam.target"] = start, target
    for name, make in (("adam_l2", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        p = start.clone().requires_grad_(True)
        optimizer = make([p], lr=0.1, weight_decay=0.1)
        steps = []
        for _ in range(5):
            with torch.enable_grad():
                loss = 0.5 * ((p - target) ** 2).sum()
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
            steps.append(p.detach().clone())
        out[f"{name}.steps"] = torch.stack(steps)
    # nn.Linear's default initialisation, summarised (a 512 -> 256 layer)
    linear = nn.Linear(512, 256)
    out["init.weight_std"] = linear.weight.std().reshape(1)
    out["init.weight_absmax"] = linear.weight.abs().max().reshape(1)
    out["init.bias_absmax"] = linear.bias.abs().max().reshape(1)
    # one training-mode BatchNorm2d call: how the running statistics move (momentum 0.1)
    bn = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    bn.train()
    bn(x)
    out["batchnorm.x"], out["batchnorm.running_mean"] = x, bn.running_mean
    out["batchnorm.running_var"] = bn.running_var
    # a tiny LSTM, weights and outputs, to check a port of nn.LSTM's packed gates
    lstm = nn.LSTM(3, 5, batch_first=True)
    x = torch.randn(2, 6, 3)
    outputs, _ = lstm(x)
    for name, tensor in lstm.state_dict().items():
        out[f"lstm.{name}"] = tensor
    out["lstm.x"], out["lstm.outputs"] = x, outputs
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TFDS_DATA_DIR"),
                        help="folder holding a prepared TFDS mnist (default: $TFDS_DATA_DIR)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()

    train_images, train_labels = load_mnist("train", args.data_dir)
    test_images, test_labels = load_mnist("test", args.data_dir)
    print(f"MNIST: {tuple(train_images.shape)} train, {tuple(test_images.shape)} test")

    stored = test_images[:N_STORED]
    models = (("cnn", CNN, 2, 1), ("mlp", MLP, 1, 2), ("lstm", RowLSTM, 1, 3))   # epochs, seed
    for name, make, epochs, seed in models:
        torch.manual_seed(seed)                # each model starts from its own seed
        model = make()
        began = time.perf_counter()
        train(model, train_images, train_labels, epochs, seed)
        print(f"  {name}: trained in {time.perf_counter() - began:.0f} s")
        predictions = logits_of(model, test_images).argmax(1)
        correct = int((predictions == test_labels).sum())
        print(f"  {name}: test accuracy {correct / len(test_labels):.4f} ({correct} of 10000)")
        outputs = {"labels": test_labels[:N_STORED].numpy(),
                   "logits": logits_of(model, stored).numpy(),
                   "test_correct": np.array([correct], dtype=np.int64)}
        if name == "cnn":
            outputs["test_predictions"] = predictions.numpy().astype(np.uint8)
        model_name = type(model).__name__
        save(f"{name}.safetensors", state_dict_arrays(model), f"state_dict of the {model_name}")
        save(f"{name}_outputs.safetensors", outputs,
             f"PyTorch outputs of the {model_name} on the first {N_STORED} MNIST test images")

    save("habits.safetensors", habit_numbers(), "PyTorch's numbers for notebook 8's habits")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
