"""Call overhead of minnx.jit, flax's nnx.jit and plain jax.jit, side by side in one process.

Two workloads over an MLP (784 -> 256 -> 10) and its optimizer:
  * a no-op step: the function does nothing, so the time is all call overhead;
  * a real train step: loss, grad and an optax.sgd update, on a batch of 32.
Each variant is warmed up, then timed in rounds of many calls; the table shows the median time
per call and the ratio to plain jax.jit over pytrees. Run: python benchmarks/jit_overhead.py
"""
import platform
import statistics
import sys
import timeit

import jax
import jax.numpy as jnp
import optax
from flax import nnx as flax_nnx

import minnx

ROUNDS, CALLS = 15, 300


def mlp(nnx):
    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.linear1 = nnx.Linear(784, 256, rngs=rngs)
            self.linear2 = nnx.Linear(256, 10, rngs=rngs)

        def __call__(self, x):
            return self.linear2(jax.nn.relu(self.linear1(x)))
    return MLP(nnx.Rngs(0))


def loss_fn(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def nnx_variants(nnx):
    model = mlp(nnx)
    optimizer = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)

    @nnx.jit
    def noop(model, optimizer):
        pass

    @nnx.jit
    def train(model, optimizer, x, y):
        grads = nnx.grad(lambda m: loss_fn(m(x), y))(model)
        optimizer.update(model, grads)

    def train_call(x, y):
        train(model, optimizer, x, y)
        return model.linear2.bias[...]

    return (lambda: noop(model, optimizer)), train_call


def pure_jax_variants():
    model = mlp(minnx)
    params = minnx.to_pure_dict(minnx.state(model, minnx.Param))
    tx = optax.sgd(0.01)
    state = {"params": params, "opt_state": tx.init(params)}

    def forward(p, x):
        h = jax.nn.relu(x @ p["linear1"]["kernel"] + p["linear1"]["bias"])
        return h @ p["linear2"]["kernel"] + p["linear2"]["bias"]

    @jax.jit
    def noop(params, opt_state):
        pass

    @jax.jit
    def train(params, opt_state, x, y):
        grads = jax.grad(lambda p: loss_fn(forward(p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def train_call(x, y):
        state["params"], state["opt_state"] = train(state["params"], state["opt_state"], x, y)
        return state["params"]

    return (lambda: noop(state["params"], state["opt_state"])), train_call


def median_us(fns):
    """Median time per call of each function, in microseconds. The rounds interleave the
    functions, so a noisy moment on a shared machine hits all of them alike."""
    for fn in fns:
        fn(), fn()  # compiled and warm
    times = [[] for _ in fns]
    for _ in range(ROUNDS):
        for fn, t in zip(fns, times):
            t.append(timeit.timeit(fn, number=CALLS) / CALLS * 1e6)
    return [statistics.median(t) for t in times]


def main():
    x = jax.random.normal(jax.random.key(0), (32, 784))
    y = jnp.arange(32) % 10
    variants = {"jax.jit (pure pytrees)": pure_jax_variants(), "minnx.jit": nnx_variants(minnx),
                "flax nnx.jit": nnx_variants(flax_nnx)}
    noops = median_us([noop for noop, _ in variants.values()])
    trains = median_us([lambda train=train: jax.block_until_ready(train(x, y))
                        for _, train in variants.values()])
    rows = dict(zip(variants, zip(noops, trains)))
    base_noop, base_train = rows["jax.jit (pure pytrees)"]
    print(f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"python {sys.version.split()[0]}, jax {jax.__version__}; "
          f"median of {ROUNDS} rounds x {CALLS} calls")
    print(f"| {'variant':<24} | no-op step (us) | ratio | train step (us) | ratio |")
    print(f"|{'-' * 26}|-----------------|-------|-----------------|-------|")
    for name, (noop_us, train_us) in rows.items():
        print(f"| {name:<24} | {noop_us:15.1f} | {noop_us / base_noop:5.2f} | {train_us:15.1f} | "
              f"{train_us / base_train:5.2f} |")


if __name__ == "__main__":
    main()
