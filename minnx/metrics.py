"""Metrics: running averages kept in Variables, so they update inside `minnx.jit`.

`metrics = MultiMetric(accuracy=Accuracy(), loss=Average('loss'))`, then `metrics.update(...)`
each step, `metrics.compute()`, and `metrics.reset()` between epochs, as in flax's MNIST tutorial.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .objects import Pytree
from .variables import Variable

class MetricState(Variable):
    """The running totals a Metric keeps."""

class Metric(Pytree):
    """Base class: `update`, `compute`, `reset`, and `check`, which raises what `update` would."""
    def check(self, **kwargs):
        if "argname" in vars(self) and self.argname not in kwargs:  # Average, Welford
            raise TypeError(f"Expected keyword argument '{self.argname}' for "
                            f"{type(self).__name__}.update, got {sorted(kwargs) or 'none'}.")

    def reset(self):  # every running total back to zero
        for total in vars(self).values():
            if isinstance(total, MetricState):
                total[...] = jnp.zeros_like(total[...])

class Average(Metric):
    """The mean of every value passed as `update(<argname>=values)` since the last reset."""
    def __init__(self, argname: str = "values"):
        self.argname = argname
        self.total = MetricState(jnp.array(0, dtype=jnp.float32))
        self.count = MetricState(jnp.array(0, dtype=jnp.int32))

    def check(self, mask=None, **kwargs):
        Metric.check(self, **kwargs)
        if mask is not None and isinstance(kwargs[self.argname], (int, float)):
            raise ValueError(f"If mask is provided, {self.argname} should be a jax array")

    def update(self, mask=None, **kwargs):
        Average.check(self, mask, **kwargs)  # Accuracy.check takes other arguments
        values = kwargs[self.argname]
        if isinstance(values, (int, float)):
            self.total[...] += values
            self.count[...] += 1
        elif mask is None:
            self.total[...] += values.sum()
            self.count[...] += values.size
        else:
            self.total[...] += (values * mask.astype(values.dtype)).sum()
            self.count[...] += mask.sum().astype(jnp.int32)

    def compute(self):
        return self.total[...] / self.count[...]

class Accuracy(Average):
    """The fraction of `argmax(logits) == labels` (with a `threshold`: `logits >= threshold`)."""
    def __init__(self, threshold: float | None = None, *args, **kwargs):
        if threshold is not None and not isinstance(threshold, float):
            raise TypeError(f"Expected threshold to be a float, got {type(threshold)}")
        self.threshold = threshold
        super().__init__(*args, **kwargs)

    def check(self, *, logits=None, labels=None, mask=None, **_):
        if logits is None or labels is None:
            raise TypeError("Accuracy.update expects keyword arguments logits= and labels=.")
        if self.threshold is not None and logits.ndim != labels.ndim:
            raise ValueError(f"For binary classification, expected logits.ndim==labels.ndim, got "
                             f"shapes {logits.shape} and {labels.shape}.")
        if self.threshold is None and logits.ndim != labels.ndim + 1:
            raise ValueError(f"For multi-class classification, expected logits.ndim==labels.ndim+1,"
                             f" got shapes {logits.shape} and {labels.shape}: pass integer labels.")
        if labels.dtype not in (jnp.int32, np.int64, np.int32):
            raise ValueError(f"Expected labels.dtype==jnp.int32, got {labels.dtype}")

    def update(self, *, logits=None, labels=None, mask=None, **_):
        self.check(logits=logits, labels=labels, mask=mask)
        labels = labels.astype(jnp.int32)
        if self.threshold is not None:
            correct = (logits >= self.threshold) == (labels > 0)
        else:
            correct = logits.argmax(axis=-1) == labels
        super().update(values=correct, mask=mask)

@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Statistics:
    """What Welford computes."""
    mean: jax.Array
    standard_error_of_mean: jax.Array
    standard_deviation: jax.Array

class Welford(Metric):
    """The running mean and variance of every value passed (Welford's algorithm)."""
    def __init__(self, argname: str = "values"):
        self.argname = argname
        self.count = MetricState(jnp.array(0, dtype=jnp.int32))
        self.mean = MetricState(jnp.array(0, dtype=jnp.float32))
        self.m2 = MetricState(jnp.array(0, dtype=jnp.float32))

    def update(self, **kwargs):
        self.check(**kwargs)
        values = kwargs[self.argname]
        scalar = isinstance(values, (int, float))
        count = 1 if scalar else values.size
        count_before = self.count[...]
        self.count[...] += count
        delta = (values if scalar else values.mean()) - self.mean[...]
        self.mean[...] += delta * count / self.count[...]
        spread = 0.0 if scalar else values.var() * count
        self.m2[...] += spread + delta * delta * count * count_before / self.count[...]

    def compute(self):
        variance = self.m2[...] / self.count[...]
        standard_deviation = variance ** 0.5
        return Statistics(mean=self.mean[...],
                          standard_error_of_mean=standard_deviation / self.count[...] ** 0.5,
                          standard_deviation=standard_deviation)

class MultiMetric(Metric):
    """Several metrics updated together; `update(mask=...)` takes a mask or a dict of masks."""
    def __init__(self, **metrics):
        self._metric_names = tuple(metrics)
        for name, metric in metrics.items():
            setattr(self, name, metric)

    def reset(self):
        for name in self._metric_names:
            getattr(self, name).reset()

    def _arguments(self, updates):
        mask = updates.pop("mask", None)
        for name in self._metric_names:
            metric_mask = mask.get(name) if isinstance(mask, dict) else mask
            extra = {} if metric_mask is None else {"mask": metric_mask}
            yield getattr(self, name), {**updates, **extra}

    def update(self, **updates):
        arguments = list(self._arguments(updates))
        for metric, kwargs in arguments:  # check every metric first: all or nothing
            metric.check(**kwargs)
        for metric, kwargs in arguments:
            metric.update(**kwargs)

    def compute(self):
        return {name: getattr(self, name).compute() for name in self._metric_names}
