"""Every torch.optim optimizer, registered as ``torch-<name>`` with torch's own defaults.

Their runs are full batch unless ``--batch-size`` says otherwise. ``SparseAdam`` (sparse gradients
only) and ``Muon`` (2-D parameters only) are left out: neither can run on the built-in problems.
"""

from __future__ import annotations

import torch

from optbench.registry import register_optimizer

TORCH_OPTIMIZERS = {
    "torch-sgd": ("SGD", "torch.optim.SGD: gradient descent with optional momentum, nesterov, weight decay"),
    "torch-adam": ("Adam", "torch.optim.Adam: adaptive moments (Kingma & Ba, 2014)"),
    "torch-adamw": ("AdamW", "torch.optim.AdamW: Adam with decoupled weight decay"),
    "torch-adamax": ("Adamax", "torch.optim.Adamax: Adam with the infinity norm"),
    "torch-nadam": ("NAdam", "torch.optim.NAdam: Adam with Nesterov momentum"),
    "torch-radam": ("RAdam", "torch.optim.RAdam: rectified Adam"),
    "torch-rmsprop": ("RMSprop", "torch.optim.RMSprop: scale by a running mean of squared gradients"),
    "torch-adagrad": ("Adagrad", "torch.optim.Adagrad: scale by accumulated squared gradients"),
    "torch-adadelta": ("Adadelta", "torch.optim.Adadelta: Adagrad with a running window"),
    "torch-rprop": ("Rprop", "torch.optim.Rprop: resilient backpropagation, sign-based steps"),
    "torch-asgd": ("ASGD", "torch.optim.ASGD: averaged stochastic gradient descent"),
    "torch-lbfgs": ("LBFGS", "torch.optim.LBFGS: limited-memory BFGS (one step = up to max_iter evaluations)"),
}

for _name, (_cls, _description) in TORCH_OPTIMIZERS.items():
    if hasattr(torch.optim, _cls):  # every one updates each element on its own, but LBFGS (dot products, line search)
        register_optimizer(_name, description=_description, elementwise=_cls != "LBFGS")(getattr(torch.optim, _cls))
