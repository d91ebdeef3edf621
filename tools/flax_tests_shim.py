"""What flax's rewritten nnx tests import in place of flax: `nnx` is minnx here.

tools/run_flax_tests.py rewrites flax's test files so that every `flax.nnx` becomes this
module's `nnx`, which is minnx with one difference: a name that minnx lacks and flax.nnx has
(`nnx.compat`, `nnx.TrainState`) is a `Missing` placeholder rather than an AttributeError at the
lookup. A placeholder is lazy (see `Missing`), so a module-level `class TrainState(nnx.TrainState)`
or `@parameterized.parameters(nnx.Einsum)` does not stop the whole file from importing. Every
lookup and use of a placeholder is noted in `missing_used`, which the plugin empties before each
test: a test during which one was used counts as "API not offered" (whether it then failed, or
raised `NotOffered`, an AttributeError naming the flax API, or even passed), never as a pass.

The other imports that cannot become a plain `import minnx...` line:

- `from flax.nnx.X import name` becomes `name = flax_tests_shim.import_from("minnx.X", "name")`:
  minnx's object, or a `Missing` placeholder when minnx lacks it.
- `flax.errors.SomeError` is minnx's exception class of that name when minnx has one (minnx
  raises its own `TraceContextError`), else flax's, which minnx never raises.
- `flax.config.update("nnx_graph_mode", v)` and `flax.config._read(...)` drive minnx's
  `set_graph_mode` / `set_graph_updates` switches; other flax settings stay flax's.

minnx is imported only when first used, so a test file's `os.environ["XLA_FLAGS"] = ...` line
still runs before JAX starts.
"""
import functools
import importlib
import types

missing_used: list[str] = []


class NotOffered(AttributeError):
    """A flax API that minnx does not offer was used. `api` names it: `nnx.compat`."""

    def __init__(self, api: str):
        super().__init__(f"minnx does not offer flax's {api}")
        self.api = api


def _is_probe(name: str) -> bool:
    """Names Python, unittest and pytest look up to inspect an object: not a use of the API."""
    return name.startswith("_") or name == "pytestmark"


class Missing:
    """Stands for a name minnx lacks. It is lazy, so that a module-level use (a parameter list
    `[nnx.Linear, nnx.Einsum]`, a base class, a decorator) does not stop the file importing:
    an attribute of it or a call on it is another placeholder, a decorator it makes turns the
    function into one that raises, and iterating, indexing or testing its truth raises
    NotOffered. Each of these notes the API in `missing_used`."""

    def __init__(self, api: str):
        self._api = api

    def _use(self):
        missing_used.append(self._api)
        return Missing(self._api)

    def __getattr__(self, name):
        if _is_probe(name):
            raise AttributeError(name)
        return self._use()

    def __call__(self, *args, **kwargs):
        self._use()
        if len(args) == 1 and not kwargs and isinstance(args[0], types.FunctionType):
            return _raising(args[0], self._api)  # used as a decorator
        return Missing(self._api)

    def _refuse(self, *args):
        self._use()
        raise NotOffered(self._api)

    __iter__ = __getitem__ = __len__ = __bool__ = _refuse

    def __mro_entries__(self, bases):
        return (_not_offered_class(self._api),)

    def __repr__(self):
        return f"<not offered by minnx: {self._api}>"


def _raising(function, api: str):
    @functools.wraps(function)
    def not_offered(*args, **kwargs):
        missing_used.append(api)
        raise NotOffered(api)
    return not_offered


def _not_offered_class(api: str) -> type:
    """The base class `class X(nnx.Missing)` gets: X's instances and class attributes that X
    does not define itself are placeholders."""

    class NotOfferedMeta(type):
        def __getattr__(cls, name):
            if _is_probe(name):
                raise AttributeError(name)
            return Missing(api)._use()

        def __call__(cls, *args, **kwargs):
            return Missing(api)._use()

    return NotOfferedMeta("NotOffered", (), {"__module__": __name__})


def _missing(api: str) -> Missing:
    missing_used.append(api)
    return Missing(api)


class _MinnxAsNnx(types.ModuleType):
    """minnx, where a name minnx lacks and flax.nnx has is a Missing placeholder."""

    def __getattr__(self, name):
        minnx = importlib.import_module("minnx")
        if hasattr(minnx, name):
            return getattr(minnx, name)
        if name.startswith("__") or not hasattr(importlib.import_module("flax.nnx"), name):
            raise AttributeError(f"module 'minnx' has no attribute {name!r}")
        return _missing(f"nnx.{name}")


nnx = _MinnxAsNnx("minnx", "minnx, seen from flax's rewritten tests (tools/flax_tests_shim.py)")


def import_from(module: str, name: str):
    """`from <module> import <name>` on minnx, or a Missing placeholder if minnx lacks it."""
    api = "nnx" + module[len("minnx"):] + "." + name
    try:
        owner = importlib.import_module(module)
    except ImportError:
        return _missing(api)
    if hasattr(owner, name):
        return getattr(owner, name)
    try:
        return importlib.import_module(f"{module}.{name}")
    except ImportError:
        return _missing(api)


class _Errors:
    """flax.errors with minnx's exception classes in place of flax's where minnx has them."""

    def __getattr__(self, name):
        minnx = importlib.import_module("minnx")
        ours = getattr(minnx, name, None)
        if isinstance(ours, type) and issubclass(ours, BaseException):
            return ours
        return getattr(importlib.import_module("flax.errors"), name)


class _Config:
    """flax.config whose NNX mode settings are minnx's switches."""

    def _switch(self, name):
        minnx = importlib.import_module("minnx")
        switches = {"nnx_graph_mode": minnx.set_graph_mode,
                    "nnx_graph_updates": minnx.set_graph_updates}
        return switches.get(name)

    def update(self, name, value):
        switch = self._switch(name)
        if switch is None:
            importlib.import_module("flax").config.update(name, value)
        else:
            switch(value)

    def _read(self, name):
        switch = self._switch(name)
        if switch is None:
            return importlib.import_module("flax").config._read(name)
        return switch.current_value()

    def __getattr__(self, name):
        switch = self._switch(name)
        if switch is None:
            return getattr(importlib.import_module("flax").config, name)
        return switch.current_value()


errors = _Errors()
config = _Config()
