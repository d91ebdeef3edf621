"""minnx.tabulate against flax's nnx.tabulate: the same rows (path, type, input and output
shapes), the same counts and bytes per Variable type and the same totals. Both tables are read
back into rows and compared; their drawing (rich's boxes vs plain text) is not."""
import re

import jax.numpy as jnp
import pytest
from flax import nnx as flax_nnx

import minnx
from oracle import LIBS

SIZE = re.compile(r"\d[\d,]* \([\d.,]+ [KMG]?B\)")
ARRAY = re.compile(r"\w+\[[\d,]*\]")


def read_flax(text):
    """Rows of flax's rich table: (path, type, input shapes, output shapes, sizes), the totals
    row and the 'Total Parameters' line."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    groups, group = [], []
    for line in lines:
        if line.startswith("│"):
            group.append([c.strip() for c in line.strip("│").split("│")])
        elif line.startswith(("├", "└")) and group:
            groups.append(group)
            group = []
    rows = []
    for group in groups:
        cells = ["\n".join(line[i] for line in group) for i in range(len(names))]
        sizes = {n: SIZE.findall(c)[-1] if SIZE.findall(c) else ""
                 for n, c in zip(names[4:], cells[4:])}
        rows.append((cells[0].split("\n")[0], cells[1].split("\n")[0], ARRAY.findall(cells[2]),
                     ARRAY.findall(cells[3]), sizes))
    total = re.search(r"Total Parameters: (.*)", text).group(1).strip()
    return rows[:-1], rows[-1][4], total


def read_minnx(text):
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("-"))
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]

    def cells(line):
        return [line[a:b + 2].strip() if j < len(spans) - 1 else line[a:].strip()
                for j, (a, b) in enumerate(spans)]
    names = cells(lines[rule - 1])
    end = next(i for i in range(rule + 1, len(lines)) if lines[i].startswith("-"))
    rows = []
    for line in lines[rule + 1:end]:
        c = cells(line)
        rows.append((c[0], c[1], ARRAY.findall(c[2]), ARRAY.findall(c[3]),
                     dict(zip(names[4:], c[4:]))))
    totals = dict(zip(names[4:], cells(lines[end + 1])[4:]))
    total = re.search(r"Total Parameters: (.*)", text).group(1).strip()
    return rows, totals, total


def both(build, *args, **kwargs):
    ours = read_minnx(minnx.tabulate(build(minnx), *args, **kwargs))
    plain = {"force_terminal": False, "force_jupyter": False, "width": 400}
    theirs = read_flax(flax_nnx.tabulate(build(flax_nnx), *args, console_kwargs=plain, **kwargs))
    assert ours == theirs
    return ours


def docstring_model(nnx):  # the model of flax's tabulate docstring
    class Block(nnx.Module):
        def __init__(self, din, dout, rngs):
            self.linear = nnx.Linear(din, dout, rngs=rngs)
            self.bn = nnx.BatchNorm(dout, rngs=rngs)
            self.dropout = nnx.Dropout(0.2, rngs=rngs)

        def __call__(self, x):
            return nnx.relu(self.dropout(self.bn(self.linear(x))))

    class Foo(nnx.Module):
        def __init__(self, rngs):
            self.block1 = Block(32, 128, rngs=rngs)
            self.block2 = Block(128, 10, rngs=rngs)

        def __call__(self, x):
            return self.block2(self.block1(x))
    return Foo(nnx.Rngs(0))


def test_nested_blocks_with_batchnorm_and_dropout():
    rows, totals, total = both(docstring_model, jnp.ones((1, 32)))
    assert [r[0] for r in rows] == ["", "block1", "block1/linear", "block1/bn", "block1/dropout",
                                    "block2", "block2/linear", "block2/bn", "block2/dropout"]
    assert totals["Param"] == "5,790 (23.2 KB)" and total == "6,070 (24.3 KB)"


def test_depth_keeps_the_top_rows_and_the_totals():
    rows, totals, _ = both(docstring_model, jnp.ones((4, 32)), depth=1)
    assert [r[0] for r in rows] == ["", "block1", "block2"]
    assert totals["BatchStat"] == "276 (1.1 KB)"


def shared_and_unused(nnx):
    class Model(nnx.Module):
        def __init__(self, rngs):
            self.shared = nnx.Linear(3, 3, rngs=rngs)
            self.again = self.shared                      # counted once, under its first path
            self.unused = nnx.Linear(3, 5, rngs=rngs)     # never called: no row, still counted
            self.embed = nnx.Embed(10, 3, rngs=rngs)

        def __call__(self, tokens):
            x = self.embed(tokens)
            return self.again(self.shared(x)), self.shared(x[:, 0])
    return Model(nnx.Rngs(0))


def test_shared_modules_unused_modules_and_two_outputs():
    rows, totals, _ = both(shared_and_unused, jnp.zeros((2, 4), jnp.int32))
    paths = [r[0] for r in rows]
    assert paths.count("again") == 2    # the first path in attribute order; two shapes: two rows
    assert "unused" not in paths and "shared" not in paths
    assert rows[0][3] == ["float32[2,4,3]", "float32[2,3]"]


def encoder(nnx):
    class AutoEncoder(nnx.Module):
        def __init__(self, rngs):
            self.encoder = nnx.Linear(6, 2, rngs=rngs)
            self.decoder = nnx.Linear(2, 6, rngs=rngs)

        def __call__(self, x):
            return self.decoder(self.encode(x))

        def encode(self, x):
            return self.encoder(x)
    return AutoEncoder(nnx.Rngs(0))


def test_another_method_and_keyword_inputs():
    rows, _, _ = both(encoder, x=jnp.ones((5, 6)), method="encode")
    assert [r[0] for r in rows] == ["encode", "encoder"]


def test_public_methods_called_inside_get_rows():
    rows, _, _ = both(encoder, jnp.ones((5, 6)))
    # flax keeps one row per object and input shapes, the call that finishes first: `encode`
    # (same object, same input as the top call) finishes before `__call__`, so the top row goes
    assert [r[0] for r in rows] == ["encode", "encoder", "decoder"]


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_the_model_is_not_changed(lib):
    nnx = LIBS[lib]
    model = docstring_model(nnx)
    mean = model.block1.bn.mean[...]
    nnx.tabulate(model, jnp.ones((3, 32)) + 5.0)
    assert (model.block1.bn.mean[...] == mean).all()
    # methods restored
    assert type(model.block1).__call__ is type(model.block1).__dict__["__call__"]
    assert "__call__" not in nnx.Linear.__dict__ or nnx.Linear.__call__.__name__ == "__call__"


@pytest.mark.parametrize("lib", ["minnx", "flax"])
def test_not_a_module(lib):
    with pytest.raises(ValueError):
        LIBS[lib].tabulate(jnp.ones(3))


def test_flops_are_not_counted_by_minnx():
    with pytest.raises(NotImplementedError, match="FLOPs"):
        minnx.tabulate(encoder(minnx), jnp.ones((1, 6)), compute_flops=True)
