"""Rngs: explicit random numbers, the JAX way, with PyTorch's convenience.

`Rngs` keeps named streams: `rngs.params()` returns `fold_in(key, count)` and counts, so a seed
reproduces every call; a missing stream falls back to `default`. `split_rngs` serves vmap/scan.
"""
import functools

import jax
import jax.numpy as jnp

from .filters import to_predicate
from .graph import iter_graph
from .objects import Pytree
from .state import path_text
from .variables import RngCount, RngKey

def _as_key(key):  # an int seed, a typed key, or a legacy uint32 key -> a typed key
    if isinstance(key, int):
        return jax.random.key(key)
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32:
        return jax.random.wrap_key_data(key)  # jax.random.PRNGKey(0), the older key form
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    raise ValueError(f"Invalid rng value: {key!r}. A seed is an int or a jax.random.key(...) "
                     "(or the older jax.random.PRNGKey(...)).")

def _random_method(random_function):  # `rngs.normal(shape)` is `jax.random.normal(rngs(), shape)`
    @functools.wraps(random_function)
    def method(self, *args, **kwargs):
        return random_function(self(), *args, **kwargs)
    return method

class _RandomMethods:
    """Random functions that draw their key from the stream (or Rngs' default stream)."""
    normal = _random_method(jax.random.normal)
    uniform = _random_method(jax.random.uniform)
    bernoulli = _random_method(jax.random.bernoulli)
    categorical = _random_method(jax.random.categorical)
    randint = _random_method(jax.random.randint)
    permutation = _random_method(jax.random.permutation)
    choice = _random_method(jax.random.choice)
    truncated_normal = _random_method(jax.random.truncated_normal)
    gumbel = _random_method(jax.random.gumbel)
    bits = _random_method(jax.random.bits)

class RngStream(_RandomMethods, Pytree):
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
        """A new stream holding `k` keys (a shape), split from a key drawn from this one."""
        return type(self)(jax.random.split(self(), k), tag=self.tag)
    def fork(self, *, split=None):
        """A new, independent stream, started from a key drawn from this one (or `split`)."""
        return type(self)(self(), tag=self.tag) if split is None else self.split(split)

    def broadcast(self, k):
        """A new stream holding one key drawn from this one, repeated to shape `k`."""
        key = self()
        shape = (k,) if isinstance(k, int) else tuple(k)
        return type(self)(jnp.broadcast_to(key, shape + key.shape), tag=self.tag)

class Rngs(_RandomMethods, Pytree):
    """Named streams of random keys: `Rngs(0)`, `Rngs(params=0, dropout=1)`."""
    def __init__(self, default=None, /, **rngs):
        if isinstance(default, dict):
            rngs = {**default, **rngs}
        elif default is not None:
            rngs["default"] = default
        for tag, key in rngs.items():
            if isinstance(key, RngStream):
                key = key.key.get_value()
            setattr(self, tag, RngStream(key, tag=tag))

    def _stream(self, name, error_type):
        streams = vars(self)
        if name in streams:
            return streams[name]
        if "default" in streams:
            return streams["default"]
        raise error_type(f"No RngStream named '{name}' found in Rngs, and no 'default' stream to "
                         f"fall back on. Create it: Rngs({name}=0), or Rngs(0) for a default.")

    def __getattr__(self, name):
        if name.startswith("__") or name.startswith("_object__"):
            raise AttributeError(name)
        return self._stream(name, AttributeError)

    def __getitem__(self, name):
        return self._stream(name, KeyError)
    def __call__(self):
        return self.default()
    # a mapping from names to streams
    def items(self):
        return [(name, x) for name, x in vars(self).items() if isinstance(x, RngStream)]
    def __iter__(self):
        return iter(dict(self.items()))
    def __len__(self):
        return len(self.items())
    def __contains__(self, name):
        return name in vars(self)

    def _sized_items(self, sizes):  # `(name, stream, size of the first filter selecting it)`
        if not isinstance(sizes, dict):
            sizes = {...: sizes}
        selectors = [(to_predicate(f), size) for f, size in sizes.items()]
        for name, stream in self.items():
            yield name, stream, next((s for select, s in selectors if select((), stream)), None)

    def split(self, k):
        """New Rngs whose streams hold `k` keys each (or per filter: `{'dropout': 4}`)."""
        return self._new_rngs(k, RngStream.split)
    def broadcast(self, k):
        """New Rngs whose streams hold one new key each, repeated to shape `k`."""
        return self._new_rngs(k, RngStream.broadcast)
    def _new_rngs(self, sizes, make):  # the streams a filter gives a size to, remade by `make`
        sized = self._sized_items(sizes)
        return Rngs(**{name: s if size is None else make(s, size) for name, s, size in sized})
    def fork(self, *, split=None):
        """New Rngs with independent streams drawn from these ones (optionally split)."""
        return Rngs(**{name: s.fork(split=size) for name, s, size in self._sized_items(split)})

# -- changing the streams inside a model -------------------------------------------------------
def _streams(node, only=..., graph=None):  # the RngStreams whose key and count `only` selects
    predicate = to_predicate(only)
    for path, stream in iter_graph(node, graph=graph):
        if not isinstance(stream, RngStream):
            continue
        if predicate((*path, "key"), stream.key) and predicate((*path, "count"), stream.count):
            yield path, stream

def reseed(node, /, *, graph=None, policy="scalars_only", **stream_keys):
    """Restart the named streams in `node` from new seeds: `reseed(model, dropout=1)`. Split keys
    need `policy='match_shape'`, or a function `(path, key, shape) -> new key`."""
    if policy == "scalars_only":
        policy = _scalars_only
    elif policy == "match_shape":
        policy = _match_shape
    elif not callable(policy):
        raise ValueError(f'policy must be "scalars_only", "match_shape" or a callable, got '
                         f'{policy!r}')
    rngs = Rngs(**stream_keys)
    for path, stream in _streams(node, graph=graph):
        if stream.key.tag in stream_keys:
            key = policy(path, rngs[stream.key.tag](), stream.key.shape)
            stream.key.set_value(key)
            stream.count.set_value(jnp.zeros(key.shape, dtype=jnp.uint32))

def _scalars_only(path, key, shape):
    if shape != ():
        raise ValueError(f"Cannot reseed the stream at {path!r}: its key has shape {shape} (it "
                         "was split). Pass policy='match_shape' to split the new key likewise.")
    return key

def _match_shape(path, key, shape):
    return key if shape == () else jax.random.split(key, shape)

class SplitBackups(list):
    """The keys `split_rngs` replaced; `with` restores them at the end of the block."""
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        restore_rngs(self)

def restore_rngs(backups, /):
    """Put back the keys (and counts) that `split_rngs` saved."""
    for stream, key, count in backups:
        stream.key.set_value(key)
        stream.count.set_value(count)

def split_rngs(node=None, /, *, splits, only=..., squeeze=False, graph=None):
    """Split the streams inside `node` into `splits` keys (for vmap/scan) for a call: as
    `@split_rngs(splits=5)` above `@minnx.vmap`, or `with split_rngs(rngs, splits=5):`."""
    if squeeze and splits != 1:
        raise ValueError("squeeze=True is only supported for splits=1")
    if node is None:
        def decorator(f):
            @functools.wraps(f)
            def wrapper(*args, **kwargs):
                with _split(args, splits, only, squeeze, graph, shown_from=1):
                    return f(*args, **kwargs)
            return wrapper
        return decorator
    return _split(node, splits, only, squeeze, graph, shown_from=0)

def _split(node, splits, only, squeeze, graph, shown_from):  # shown_from: where paths start
    backups = SplitBackups()
    for path, stream in _streams(node, only, graph):
        if stream.key.shape != ():
            raise ValueError(f"split_rngs: the stream at {path_text(path[shown_from:])} already "
                             f"holds keys of shape {stream.key.shape}: vmap or scan already gives "
                             "each step its own key. Leave out this split_rngs (flax fails too).")
        key = jax.random.split(stream(), splits)
        backups.append((stream, stream.key[...], stream.count[...]))
        if squeeze:
            key = key[0]
        stream.key.set_value(key)
        stream.count.set_value(jnp.zeros(key.shape, dtype=jnp.uint32))
    return backups
