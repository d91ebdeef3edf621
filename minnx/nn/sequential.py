"""Sequential: layers (or functions) called one after the other, like `torch.nn.Sequential`."""
from ..containers import List
from ..module import Module

class Sequential(Module):
    """Calls its layers in order; a tuple output becomes positional arguments, a dict keywords."""
    def __init__(self, *fns):
        self.layers = List(fns)

    def __call__(self, *args, **kwargs):
        if len(self.layers) == 0:
            if len(args) == 1:
                return args[0]
            return args or kwargs or None
        for i, layer in enumerate(self.layers):
            if not callable(layer):
                raise TypeError(f"Sequence[{i}] is not callable: {layer}. minnx.Sequential takes "
                                "layers and functions, e.g. Sequential(Linear(...), minnx.relu).")
            output = layer(*args, **kwargs)
            args, kwargs = (output,), {}
            if isinstance(output, tuple):
                args = output
            elif isinstance(output, dict):
                args, kwargs = (), output
        return output
