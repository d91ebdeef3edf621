"""What flax's rewritten nnx tests import in place of flax: `nnx` is minnx here.

tools/run_flax_tests.py rewrites flax's test files so that every `flax.nnx` becomes minnx. A few
imports cannot become a plain `import minnx...` line, and come from this module instead:

- `from flax.nnx.X import name` becomes `name = flax_tests_shim.import_from("minnx.X", "name")`.
  When minnx has no such module or name, the test file still imports: `name` is a placeholder
  whose every use raises `NotOffered` (an AttributeError naming the flax API), so only the tests
  that use it fail, and they are counted as "API not offered", never as passes.
- `flax.errors.SomeError` is minnx's exception class of that name when minnx has one (minnx
  raises its own `TraceContextError`), else flax's, which minnx never raises.
- `flax.config.update("nnx_graph_mode", v)` and `flax.config._read(...)` drive minnx's
  `set_graph_mode` / `set_graph_updates` switches; other flax settings stay flax's.
- `flax.nnx.name` written as an attribute path becomes `flax_tests_shim.nnx.name`.

Nothing here is imported before the test file's own first import runs, and minnx is imported
only when first used, so a test file's `os.environ["XLA_FLAGS"] = ...` line still comes first.
"""
import importlib


class NotOffered(AttributeError):
    """A flax API that minnx does not offer was used. `api` names it as flax spells it."""

    def __init__(self, api: str):
        super().__init__(f"minnx does not offer flax's {api}")
        self.api = api


class Missing:
    """Stands for a name minnx lacks: looking anything up on it, or calling it, raises."""

    def __init__(self, api: str):
        self._api = api

    def __getattr__(self, name):
        raise NotOffered(self._api)

    def __call__(self, *args, **kwargs):
        raise NotOffered(self._api)

    def __repr__(self):
        return f"<not offered by minnx: {self._api}>"


def flax_name(minnx_path: str) -> str:
    """'minnx.nn.attention' -> 'flax.nnx.nn.attention'."""
    return "flax.nnx" + minnx_path[len("minnx"):]


def import_from(module: str, name: str):
    """`from <module> import <name>` on minnx, or a Missing placeholder if minnx lacks it."""
    api = f"{flax_name(module)}.{name}"
    try:
        owner = importlib.import_module(module)
    except ImportError:
        return Missing(api)
    if hasattr(owner, name):
        return getattr(owner, name)
    try:
        return importlib.import_module(f"{module}.{name}")
    except ImportError:
        return Missing(api)


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


def __getattr__(name):
    if name == "nnx":
        return importlib.import_module("minnx")
    raise AttributeError(f"module 'flax_tests_shim' has no attribute {name!r}")
