"""The problem contract: what the training core needs from a problem.

A problem is a class registered with :func:`optbench.register_problem`. The core builds it as
``ProblemClass(seed=seed, **options)``; its keyword-only arguments with defaults are its options
(settable with ``--problem-opt KEY=VALUE``). Data must be a pure function of the seed: draw them
from a ``torch.Generator`` seeded with it.

**The functional form** (what :class:`Problem` subclasses provide; it makes runs *batchable*: K runs
of one problem, one per seed, are evaluated together with ``torch.func.vmap``):

- ``params``: ``dict[str, Tensor]``, the tensors to optimize, initialised from the seed.
- ``data``: ``dict[str, Tensor]``, everything else the loss reads that depends on the seed
  (training and test data). Two seeds of the same options must give tensors of the same shapes.
- ``loss_fn(params, data, idx=None)``: the mean training loss over rows ``idx`` (a 1-D LongTensor)
  or over all ``n_train`` rows when ``idx`` is None. It must read per-seed values *only* from its
  arguments (never ``self.x``), change none of them in place, and use no data-dependent Python
  control flow (no ``.item()``), so that ``vmap`` can map it over stacked parameters and data.
  Structure shared by every seed (an ``nn.Module`` skeleton, a constant) may live on ``self``:
  problems built on a module call it with ``torch.func.functional_call(module, params, x)``.
- ``metrics_fn(params, data)``: optional extra numbers as 0-d tensors (e.g. ``test_accuracy``),
  recorded at every point, under the same rules.
- ``stacked_loss_fn(params, data, idx=None)`` and ``stacked_metrics_fn(params, data)``: optional,
  the same over K runs at once (every tensor with a leading run axis, ``idx`` of shape (K, b)),
  returning (K,) losses and metrics. Where given, stacked runs use them instead of ``vmap``: a
  problem with many small operations (a transformer) is faster written batched than vmapped.
- ``records_run_by_run`` (optional, bool): stacked runs compute the loss over all rows and the
  metrics one run at a time (a loop over the runs' slices, the numbers each run computes alone)
  instead of ``vmap``. For problems whose vmapped full-data evaluation is slower than that loop:
  the digits networks' (a vmapped convolution over every image took 3x the loop on the CPU, and
  recording it was a third of a CNN evaluation run's time).
- ``n_train`` (int): the number of training rows; batches index ``range(n_train)``.
- ``optimum`` (float or None): f*, the minimum of the full training loss (of the expected loss, for a
  problem that ``draw``s fresh data), where it is known.
- ``draw`` (optional, a callable or None): a problem trained on *fresh data* (as language models are
  pretrained: one pass over a stream) offers ``draw(seed, step, size)``, the training entries of
  ``data`` for optimizer step ``step`` (``size`` rows each), a pure function of (seed, step), so a
  run stacked equals it alone and a rerun is exact. The core then replaces those entries before
  every step and trains on all of their rows (``idx`` None); the loss it records at a point is the
  loss on the next step's batch at the parameters there (data the run has not trained on, so an
  unbiased estimate of the expected loss, which ``optimum`` then bounds). An epoch is ``n_train``
  rows drawn.
- ``tokens_per_example`` (optional, int): what one training row holds in tokens (a language model's
  predicted positions); the table then has a ``tokens`` column, the rows trained on so far x that,
  and a bench counts budgets in tokens too.
- ``provenance`` (optional): ``dict[str, str]``, facts about the data that the options do not fix
  (a hash of a text that differs between Python versions), recorded as columns ``data_<key>``.
- ``roles`` (optional): ``dict[str, str]``, a parameter's name -> its role, for optimizers that take
  some parameters only (Muon: the hidden weight matrices) and hybrids (``torch-muon+torch-adamw``):
  ``matrix`` (a hidden layer's 2-D weights), ``embedding`` (an input layer: token and position
  embeddings), ``head`` (the output layer) or ``vector`` (biases, norm gains, scalars). A parameter
  it does not label is a ``matrix`` if it is 2-D, else a ``vector`` (torch's own rule for Muon).

The core moves ``params`` and ``data`` to the run's device (``--device``), so a problem builds them
on the CPU. From the functional form :class:`Problem` derives the object form below.

**The object form** (all a problem *must* offer; one that offers only this runs one run at a time,
on the CPU): ``n_train``, ``parameters()`` (the leaf tensors to optimize, ``requires_grad=True``),
``loss(idx=None)``, optional ``optimum`` and ``metrics()``.

**Its cost** (optional, every built-in declares it): a classmethod ``cost(**options)`` returning a
:class:`Cost` from the options alone, before anything is built (``optbench.core.spec.prepare``
refuses a run whose estimate exceeds the memory limit: :mod:`optbench.settings.validate`). It may
return None, or raise, for options it cannot read: the constructor then says what is wrong. The
built-ins' are torch-free functions (:mod:`optbench.problems.costs`) that their registry entries
name too, so a command refuses an oversized request before it imports torch.

The core checks, before it batches, that the vmapped loss of each seed equals that seed's own
``loss()``; a problem whose ``loss_fn`` reads per-seed state from ``self`` fails that check and its
runs go one by one (still correct, just not batched).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from optbench.problems.costs import Cost

Tensor = torch.Tensor
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(name: str) -> torch.dtype:
    from optbench.errors import InvalidValueError

    try:
        return DTYPES[name]
    except KeyError:
        raise InvalidValueError(f"dtype {name!r} is not supported; valid: {', '.join(DTYPES)}") from None


class Problem:
    """Base class: subclasses set ``params``, ``data`` and ``n_train`` and define ``loss_fn``.

    >>> class Mean(Problem):
    ...     def __init__(self, seed=0, *, n=4):
    ...         self.data = {"y": torch.arange(float(n))}
    ...         self.params = {"m": torch.zeros((), requires_grad=True)}
    ...         self.n_train, self.optimum = n, float(torch.arange(float(n)).var(unbiased=False))
    ...
    ...     def loss_fn(self, params, data, idx=None):
    ...         y = data["y"] if idx is None else data["y"][idx]
    ...         return ((y - params["m"]) ** 2).mean()
    >>> Mean().loss().item()
    3.5
    """

    n_train: int
    optimum: float | None = None
    draw = None  # or draw(seed, step, size) -> the training entries of data for that step: fresh data
    tokens_per_example: int | None = None
    params: dict[str, Tensor]
    data: dict[str, Tensor]

    @classmethod
    def cost(cls, **options: object) -> Cost | None:
        """What these options cost (:class:`Cost`); None: not declared (nothing is refused for its size)."""
        return None

    def loss_fn(self, params: dict[str, Tensor], data: dict[str, Tensor], idx: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def metrics_fn(self, params: dict[str, Tensor], data: dict[str, Tensor]) -> dict[str, Tensor]:
        return {}

    # The object form, derived from the functional one.
    def parameters(self) -> Iterator[Tensor]:
        return iter(self.params.values())

    def loss(self, idx: Tensor | None = None) -> Tensor:
        return self.loss_fn(self.params, self.data, idx)

    def metrics(self) -> dict[str, Tensor]:
        return self.metrics_fn(self.params, self.data)


ROLES = ("matrix", "embedding", "head", "vector")


def parameter_roles(problem: object, name: str = "problem") -> list[str]:
    """The role of each of ``problem.parameters()``, in order: its ``roles`` label, else by shape
    (2-D: ``matrix``; else ``vector``). A label that is not a role is one line naming it."""
    from optbench.errors import PluginError

    labels = getattr(problem, "roles", None) or {}
    names = list(problem.params) if is_functional(problem) else []
    leaves = list(problem.parameters())
    if names and len(names) != len(leaves):
        names = []
    unknown = sorted(set(labels) - set(names)) if names else []
    if unknown:
        raise PluginError(
            f"problem {name!r} labels {unknown[0]!r} with a role, but it has no parameter of that name; "
            f"its parameters: {', '.join(names)}"
        )
    bad = {k: v for k, v in labels.items() if v not in ROLES}
    if bad:
        key, value = next(iter(bad.items()))
        raise PluginError(f"problem {name!r} labels {key} with role {value!r}; valid roles: {', '.join(ROLES)}")
    by_shape = ["matrix" if p.dim() == 2 else "vector" for p in leaves]
    return [labels.get(k, shaped) for k, shaped in zip(names, by_shape, strict=True)] if names else by_shape


def is_functional(problem: object) -> bool:
    """True when ``problem`` offers the functional form (and so can be batched and moved to a device)."""
    return (
        callable(getattr(problem, "loss_fn", None))
        and isinstance(getattr(problem, "params", None), dict)
        and isinstance(getattr(problem, "data", None), dict)
        and type(problem).loss_fn is not Problem.loss_fn
    )
