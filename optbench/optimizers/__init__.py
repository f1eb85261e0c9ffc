"""Optimizers: torch.optim.Optimizer-shaped classes. The built-ins (``gd``, ``sgd`` and every
``torch-*``) are registered by import string in :mod:`optbench.registry.builtins`."""

from optbench.optimizers import gd
from optbench.optimizers.gd import GradientDescent

__all__ = ["GradientDescent", "gd"]
