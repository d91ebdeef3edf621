"""Rngs: explicit random numbers, the JAX way, with PyTorch's convenience.

PyTorch draws from a hidden global generator. JAX has no hidden state: a *key*
goes in, random numbers come out, and the same key always gives the same numbers.
`Rngs` keeps named streams of keys (`params`, `dropout`, ...); each call
`rngs.params()` returns `fold_in(key, count)` and increments the count, so every
call gives a new key and a seed reproduces the whole sequence. A stream that does
not exist falls back to `default` (what `Rngs(0)` creates).
"""
import functools

import jax
import jax.numpy as jnp

from . import filters as filterlib
from .module import Object
from .variables import RngCount, RngKey


def _as_key(key):
    if isinstance(key, int):
        return jax.random.key(key)
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    raise TypeError(f"minnx.Rngs: a seed must be an int or a jax.random.key(...), got {key!r}.")


class RngStream(Object):
    """One named stream of keys: a key and a counter."""

    def __init__(self, key, *, tag: str):
        key = _as_key(key)
        self.tag = tag
        self.key = RngKey(key, tag=tag)
        self.count = RngCount(jnp.zeros(key.shape, dtype=jnp.uint32), tag=tag)

    def __call__(self):
        key = jax.random.fold_in(self.key[...], self.count[...])
        self.count[...] += 1
        return key

    def split(self, k):
        return type(self)(jax.random.split(self(), k), tag=self.tag)

    def fork(self, *, split=None):
        """A new, independent stream (drawn from this one)."""
        return type(self)(self() if split is None else jax.random.split(self(), split), tag=self.tag)


class Rngs(Object):
    """Named streams of random keys: `Rngs(0)`, `Rngs(params=0, dropout=1)`."""

    def __init__(self, default=None, /, **rngs):
        if default is not None:
            if isinstance(default, dict):
                rngs = {**default, **rngs}
            else:
                rngs["default"] = default
        for tag, key in rngs.items():
            if isinstance(key, RngStream):
                key = key.key.get_value()
            setattr(self, tag, RngStream(key, tag=tag))

    def _stream(self, name, error):
        streams = vars(self)
        if name in streams or "default" in streams:
            return streams.get(name, streams.get("default"))
        raise error(f"minnx.Rngs has no stream '{name}' and no 'default' stream to fall back on. "
                    f"Create it with Rngs({name}=0) (or Rngs(0) for a default stream).")

    def __getattr__(self, name):
        if name.startswith("__") or name.startswith("_minnx"):
            raise AttributeError(name)
        return self._stream(name, AttributeError)

    def __getitem__(self, name):
        return self._stream(name, KeyError)

    def __call__(self):
        return self.default()

    def __iter__(self):
        return (name for name, s in vars(self).items() if isinstance(s, RngStream))

    def __contains__(self, name):
        return name in vars(self)

    def items(self):
        return ((name, vars(self)[name]) for name in self)

    def fork(self, *, split=None):
        """New Rngs with independent streams drawn from these ones."""
        return Rngs(**{name: stream.fork(split=split) for name, stream in self.items()})


# random functions that draw from the default stream: rngs.normal((2, 3)), rngs.uniform(...), ...
for _name in ("normal", "uniform", "bernoulli", "categorical", "randint", "permutation"):
    setattr(Rngs, _name, lambda self, *args, _f=getattr(jax.random, _name), **kw: _f(self.default(), *args, **kw))


def _streams(node, only=...):
    from .graph import iter_graph
    predicate = filterlib.to_predicate(only)
    for path, stream in iter_graph(node):
        if isinstance(stream, RngStream) and predicate((*path, "key"), stream.key) \
                and predicate((*path, "count"), stream.count):
            yield path, stream


def reseed(node, /, *, policy="scalars_only", **stream_keys):
    """Restart the named streams inside `node`: `reseed(model, dropout=1)`."""
    rngs = Rngs(**stream_keys)
    for path, stream in _streams(node):
        if stream.tag in stream_keys:
            key, shape = rngs[stream.tag](), stream.key.shape
            if shape != () and policy != "match_shape":
                raise ValueError(
                    f"minnx.reseed: the stream at {'/'.join(map(str, path))} holds a key of shape "
                    f"{shape} (it was split). Pass policy='match_shape' to split the new key to that shape.")
            key = jax.random.split(key, shape) if shape != () else key
            stream.key.set_value(key)
            stream.count.set_value(jnp.zeros(key.shape, dtype=jnp.uint32))


class SplitBackups(list):
    """The keys split_rngs replaced; `with` restores them at the end of the block."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        restore_rngs(self)


def restore_rngs(backups):
    for stream, key, count in backups:
        stream.key.set_value(key)
        stream.count.set_value(count)


def split_rngs(node=None, /, *, splits, only=..., squeeze=False):
    """Split the streams inside `node` into `splits` keys (for vmap/scan), and put them back
    afterwards. Use as a decorator (`@split_rngs(splits=5)`) or `with split_rngs(rngs, splits=5):`."""
    if node is None:
        def decorator(f):
            @functools.wraps(f)
            def wrapper(*args, **kwargs):
                with split_rngs((args, kwargs), splits=splits, only=only, squeeze=squeeze):
                    return f(*args, **kwargs)
            return wrapper
        return decorator
    backups = SplitBackups()
    for path, stream in _streams(node, only):
        if stream.key.shape != ():
            where = "/".join(map(str, path[2:] if isinstance(node, tuple) else path))  # (args, kwargs)
            raise ValueError(
                f"minnx.split_rngs: the stream at {where or 'the top'} already holds keys of shape "
                f"{stream.key.shape}: it was split before (a layer created under split_rngs + vmap "
                "keeps one key per layer). scan or vmap over that layer already gives each step its own "
                "key, so leave out this split_rngs (flax 0.12 fails here too, inside jax.random.fold_in).")
        key = jax.random.split(stream(), splits)
        backups.append((stream, stream.key[...], stream.count[...]))
        key = key[0] if squeeze else key
        stream.key.set_value(key)
        stream.count.set_value(jnp.zeros(key.shape, dtype=jnp.uint32))
    return backups
