"""Optimizers: torch.optim.Optimizer-shaped classes. Importing this package registers the built-ins."""

from optbench.registry import registering_from

with registering_from("built-in"):  # whichever import reaches this package first
    from optbench.optimizers import gd, torch_optim
    from optbench.optimizers.gd import GradientDescent

__all__ = ["GradientDescent", "gd", "torch_optim"]
