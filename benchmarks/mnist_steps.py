"""Training speed of the MNIST CNN (notebook 7) with minnx, with flax.nnx, and in pure JAX.

The same CNN, optimizer (adamw) and batches (128 random MNIST-shaped images: speed does not
depend on the pixels) in all three; each variant is compiled and warmed up, then timed over
interleaved rounds of STEPS steps. Prints the median steps per second and the ratio to pure JAX.
Run: python benchmarks/mnist_steps.py [STEPS] [ROUNDS]
"""
import platform
import statistics
import sys
import time

import jax
import optax
from flax import nnx as flax_nnx

import minnx

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
BATCH = 128


def cnn(nnx):
    class CNN(nnx.Module):
        def __init__(self, *, rngs):
            self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
            self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
            self.linear2 = nnx.Linear(256, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.avg_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
            x = nnx.avg_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
            return self.linear2(nnx.relu(self.linear1(x.reshape(x.shape[0], -1))))
    return CNN(rngs=nnx.Rngs(0))


def loss_of(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def nnx_step(nnx):
    model = cnn(nnx)
    optimizer = nnx.Optimizer(model, optax.adamw(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        grads = nnx.grad(lambda m: loss_of(m(x), y))(model)
        optimizer.update(model, grads)

    return lambda x, y: step(model, optimizer, x, y), lambda: model.linear2.bias[...]


def pure_jax_step():
    params = minnx.to_pure_dict(minnx.state(cnn(minnx), minnx.Param))
    tx = optax.adamw(1e-3)
    state = {"params": params, "opt": tx.init(params)}

    def conv(x, p):
        y = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + p["bias"]

    def pool(x):
        return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4

    def forward(p, x):
        x = pool(jax.nn.relu(conv(x, p["conv1"])))
        x = pool(jax.nn.relu(conv(x, p["conv2"])))
        x = jax.nn.relu(x.reshape(x.shape[0], -1) @ p["linear1"]["kernel"] + p["linear1"]["bias"])
        return x @ p["linear2"]["kernel"] + p["linear2"]["bias"]

    @jax.jit
    def step(params, opt, x, y):
        grads = jax.grad(lambda p: loss_of(forward(p, x), y))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    def run(x, y):
        state["params"], state["opt"] = step(state["params"], state["opt"], x, y)
    return run, lambda: state["params"]["linear2"]["bias"]


def main():
    x = jax.random.uniform(jax.random.key(0), (BATCH, 28, 28, 1))
    y = jax.random.randint(jax.random.key(1), (BATCH,), 0, 10)
    variants = {"pure JAX (jax.jit)": pure_jax_step(), "minnx.jit": nnx_step(minnx),
                "flax nnx.jit": nnx_step(flax_nnx)}
    for step, result in variants.values():   # compile and warm up
        for _ in range(3):
            step(x, y)
        jax.block_until_ready(result())
    rates = {name: [] for name in variants}
    for _ in range(ROUNDS):                  # interleaved, so noise hits every variant alike
        for name, (step, result) in variants.items():
            start = time.perf_counter()
            for _ in range(STEPS):
                step(x, y)
            jax.block_until_ready(result())
            rates[name].append(STEPS / (time.perf_counter() - start))
    device = jax.devices()[0]
    print(f"{device.platform} ({device.device_kind}), {platform.machine()}, "
          f"jax {jax.__version__}; batch {BATCH}, "
          f"median of {ROUNDS} rounds x {STEPS} steps")
    base = statistics.median(rates["pure JAX (jax.jit)"])
    print(f"| {'variant':<20} | steps/s | ratio to pure JAX |")
    print(f"|{'-' * 22}|---------|-------------------|")
    for name, r in rates.items():
        print(f"| {name:<20} | {statistics.median(r):7.1f} | {statistics.median(r) / base:17.3f} |")


if __name__ == "__main__":
    main()
