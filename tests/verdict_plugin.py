"""Planted optimizers for tests/test_verdict.py: better, an exact copy (two), and one that diverges on some seeds."""

import optbench
from optbench.optimizers.gd import GradientDescent


@optbench.register_optimizer("boosted-gd", elementwise=True)
class BoostedGD(GradientDescent):
    """gd that steps 4x what it is told: a better default hidden inside."""

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] *= 4
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= 4


@optbench.register_optimizer("gd-twin", elementwise=True)
class TwinGD(GradientDescent):
    """An exact copy of gd."""


@optbench.register_optimizer("flaky-gd", elementwise=False)
class FlakyGD(GradientDescent):
    """gd that blows up on the runs whose first gradient's 4th decimal is odd: about half the seeds."""

    def step(self, closure=None):
        if not hasattr(self, "blows"):
            grads = [p.grad.sum() for g in self.param_groups for p in g["params"] if p.grad is not None]
            self.blows = int(abs(float(sum(grads))) * 1e4) % 2 == 1  # a coin the data flips
        scale = 1e8 if self.blows else 1.0
        for group in self.param_groups:
            group["lr"] *= scale
        try:
            return super().step(closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= scale


@optbench.register_optimizer("gd-same", elementwise=True)
class SameGD(GradientDescent):
    """Another exact copy of gd, for a baseline listed twice under two names."""
