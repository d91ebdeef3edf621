"""Call overhead of a jitted no-op step as the model gets deeper, in one process.

For models of 1 to 256 Linear(8, 8) layers, the median time per call of a step that does
nothing with the model (so the time is the call's overhead) for: plain `jax.jit` over the model
as a pytree; minnx.jit in graph mode and in tree mode; flax's nnx.jit in both modes. A last row
repeats minnx's graph-mode call after a structure change to an *unrelated* model before every
call (its walk cache must stay valid: fastpath.py). Ratios are to jax.jit at the same depth.

    python benchmarks/jit_depth.py [--depths 1 16 256] [--rounds 7] [--calls 100]
"""
import argparse
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from flax import nnx as flax_nnx

import minnx


def model_of(nnx, depth):
    return nnx.Sequential(*[nnx.Linear(8, 8, rngs=nnx.Rngs(i)) for i in range(depth)])


def median_microseconds(call, rounds, calls):
    call().block_until_ready()  # compile
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            out = call()
        out.block_until_ready()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def variants(depth):
    x = jnp.ones((1, 8))
    found = {}
    for name, nnx in (("minnx", minnx), ("flax", flax_nnx)):
        model = model_of(nnx, depth)
        for graph in (True, False):
            step = nnx.jit(lambda m, x: x.sum(), graph=graph)
            found[f"{name} nnx.jit {'graph' if graph else 'tree'}"] = (
                lambda step=step, model=model: step(model, x))
    model = model_of(minnx, depth)
    other = model_of(minnx, 2)
    step = minnx.jit(lambda m, x: x.sum())

    def after_unrelated_change():
        other.flag = not getattr(other, "flag", False)  # a structure change elsewhere
        return step(model, x)
    found["minnx graph, unrelated change"] = after_unrelated_change
    plain = jax.jit(lambda m, x: x.sum())
    pytree = model_of(minnx, depth)
    found["jax.jit (pytree)"] = lambda: plain(pytree, x)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="*", default=[1, 4, 16, 64, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, jax {jax.__version__}, {platform.machine()}, "
          f"median of {args.rounds} rounds of {args.calls} calls, microseconds per call")
    for depth in args.depths:
        results = {name: median_microseconds(call, args.rounds, args.calls)
                   for name, call in variants(depth).items()}
        base = results["jax.jit (pytree)"]
        print(f"\n{depth} layers")
        for name, us in results.items():
            print(f"  {name:32s} {us:9.1f} us  {us / base:6.2f}x")


if __name__ == "__main__":
    main()
