"""Sequential: layers (or functions) called one after the other, like `torch.nn.Sequential`."""
from ..containers import List
from ..module import Module


class Sequential(Module):
    """Calls its layers one after the other. A layer's tuple output becomes the next layer's
    positional arguments, a dict output its keyword arguments. With no layers, it returns its
    input."""

    def __init__(self, *fns):
        self.layers = List(fns)

    def __call__(self, *args, **kwargs):
        if len(self.layers) == 0:
            if len(args) == 1:
                return args[0]
            return args or kwargs or None
        output = None
        for i, layer in enumerate(self.layers):
            if not callable(layer):
                raise TypeError(f"Sequence[{i}] is not callable: {layer}. minnx.Sequential takes "
                                "layers and functions, e.g. Sequential(Linear(...), minnx.relu).")
            if i > 0:
                if isinstance(output, tuple):
                    args, kwargs = output, {}
                elif isinstance(output, dict):
                    args, kwargs = (), output
                else:
                    args, kwargs = (output,), {}
            output = layer(*args, **kwargs)
        return output
