"""Sequential: layers (or functions) called one after the other, like `torch.nn.Sequential`."""
from ..containers import List
from ..module import Module


class Sequential(Module):
    """Calls its layers one after the other, like `torch.nn.Sequential`."""

    def __init__(self, *fns):
        self.layers = List(fns)

    def __call__(self, *args, **kwargs):
        for layer in self.layers:
            output = layer(*args, **kwargs)
            args, kwargs = (output if isinstance(output, tuple) else (output,)), {}
        return output
