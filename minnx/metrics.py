"""Metrics: running averages kept in Variables, so they update inside `minnx.jit`.

As in flax's MNIST tutorial: `metrics = MultiMetric(accuracy=Accuracy(), loss=Average('loss'))`,
then `metrics.update(loss=..., logits=..., labels=...)` each step, `metrics.compute()` for the
numbers, `metrics.reset()` between epochs.
"""
import jax.numpy as jnp

from .module import Object
from .variables import Variable


class MetricState(Variable): """The running totals a Metric keeps."""
class Metric(Object): """Base class: `update(**kwargs)`, `compute()`, `reset()`."""

class Average(Metric):
    """The mean of every value passed as `update(<argname>=values)` since the last reset."""

    def __init__(self, argname: str = "values"):
        self.argname = argname
        self.total = MetricState(jnp.array(0, dtype=jnp.float32))
        self.count = MetricState(jnp.array(0, dtype=jnp.int32))

    def reset(self):
        self.total[...], self.count[...] = jnp.zeros_like(self.total[...]), jnp.zeros_like(self.count[...])

    def update(self, mask=None, **kwargs):
        if self.argname not in kwargs:
            raise TypeError(f"minnx.metrics.{type(self).__name__}.update expected the keyword argument "
                            f"'{self.argname}', got {sorted(kwargs) or 'none'}.")
        values = jnp.asarray(kwargs[self.argname])
        mask = jnp.ones(values.shape, values.dtype) if mask is None else mask.astype(values.dtype)
        self.total[...] += (values * mask).sum()
        self.count[...] += mask.sum().astype(jnp.int32)

    def compute(self):
        return self.total[...] / self.count[...]


class Accuracy(Average):
    """The fraction of `argmax(logits) == labels` (or `logits >= threshold` for binary labels)."""

    def __init__(self, threshold: float | None = None, *args, **kwargs):
        self.threshold = threshold
        super().__init__(*args, **kwargs)

    def update(self, *, logits, labels, mask=None, **_):
        if self.threshold is None and logits.ndim != labels.ndim + 1:
            raise ValueError(
                f"minnx.metrics.Accuracy expected logits with one more axis than labels ((batch, classes) vs "
                f"(batch,)), got shapes {logits.shape} and {labels.shape}. Pass integer labels, not one-hot.")
        correct = ((logits >= self.threshold) == (labels > 0) if self.threshold is not None
                   else logits.argmax(axis=-1) == labels.astype(jnp.int32))
        super().update(values=correct, mask=mask)


class MultiMetric(Metric):
    """Several metrics updated together: `MultiMetric(accuracy=Accuracy(), loss=Average('loss'))`."""

    def __init__(self, **metrics):
        self._metric_names = tuple(metrics)
        for name, metric in metrics.items():
            setattr(self, name, metric)

    def reset(self):
        for name in self._metric_names:
            getattr(self, name).reset()

    def update(self, **updates):
        mask = updates.pop("mask", None)
        for name in self._metric_names:
            m = mask.get(name) if isinstance(mask, dict) else mask
            getattr(self, name).update(**updates, **({"mask": m} if m is not None else {}))

    def compute(self):
        return {name: getattr(self, name).compute() for name in self._metric_names}
