"""Run real plugin populations through optbench: every optimizer class of pytorch-optimizer and heavyball.

    pip install pytorch-optimizer heavyball && python benchmarks/plugin_population.py [--epochs 50] [--seeds 3]
        [--library pytorch_optimizer,heavyball] [--only NAME,NAME]

For each class (by import path, ``pytorch_optimizer:Name``, ``heavyball:Name``) and each of its
library's two problems (``linreg``, and ``classification``: softmax for pytorch-optimizer, the MLP for
heavyball, whose preconditioners want matrices), a sweep over a few seeds is run twice: stacked (the
default) and one by one (``stack=False``, as ``--no-vectorize``), 50 epochs by default, long enough
for a late drift (D-Adaptation's step size moves after about 32 steps) to show. A class is run the
way it is meant to be used: a wrapper (its base in the parameters' place, as Lookahead takes it, or
by a keyword: the SAM family's ``base_optimizer``, heavyball's ``wrapped_optimizer``) around its
library's Adam, ``pytorch_optimizer:Lookahead(torch-adam)``, ``heavyball:SAMWrapper(heavyball:AdamW)``;
any other by its name. heavyball's classes get ``compile_step=False`` and its module-wide compilation
off, ``heavyball.utils:compile_mode=None`` (a module switch), both as ``--opt`` gives them: torch's CPU
compiler fails on several of them.

Printed, one line per class: ``clean`` (every run ``ok``, on both problems, both ways), ``stacks`` (some
stacked run shared its batch), ``same`` (the stacked sweep's statuses and recorded losses equal its
runs alone, to 1e-4 relative) and ``falls`` (every run's last loss below its first); then the counts.
Exit status 1 when a stacked sweep differs from its runs alone. Not part of the test suite (it needs
the packages, and minutes).
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import warnings
from dataclasses import dataclass, field

LIBRARIES = {  # problems (name, options) and what a wrapper wraps, per library
    "pytorch_optimizer": ([("linreg", {}), ("classification", {})], "torch-adam", {}),
    "heavyball": (
        [("linreg", {}), ("classification", {"model": "mlp"})],
        "heavyball:AdamW",
        {"compile_step": False, "heavyball.utils:compile_mode": None},  # what --opt ...=false, --opt ...=none give
    ),
}


def classes(library: str) -> dict[str, str]:
    """Every optimizer class a library offers, name -> import path."""
    import importlib

    import torch

    module = importlib.import_module(library)
    found = []
    if library == "pytorch_optimizer":  # its list of supported optimizers, and the wrappers it exports beside them
        for name in module.get_supported_optimizers():
            try:
                found.append(module.load_optimizer(name))
            except Exception:
                continue
    names = getattr(module, "__all__", dir(module))
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            found.append(obj)
    out = {}
    for cls in found:
        if getattr(module, cls.__name__, None) is cls:
            out[cls.__name__] = f"{library}:{cls.__name__}"
        else:
            out[cls.__name__] = f"{cls.__module__}:{cls.__qualname__}"
    return dict(sorted(out.items()))


def required(path: str, problem: str, epochs: int) -> dict:
    """Values for settings a class requires (it has no default): what its documentation asks for."""
    from optbench.registry import OPTIMIZERS, REQUIRED

    rows = {"linreg": 100, "classification": 300}[problem]
    known = {"num_data": rows, "num_iterations": epochs, "total_steps": epochs, "num_training_steps": epochs}
    wanted = [k for k, v in OPTIMIZERS.get(path).hyperparameters().items() if v is REQUIRED]
    return {k: known[k] for k in wanted if k in known}


def addressed(path: str, switches: dict) -> dict:
    """``switches`` as the optimizer's own settings: a composite's under each component that takes them;
    a module switch (``MODULE:NAME``) as it is, where the module is of the optimizer's own package."""
    from optbench.registry import OPTIMIZERS
    from optbench.registry import switches as module_switches

    entry = OPTIMIZERS.get(path)
    names = entry.hyperparameters()
    mine = {k: v for key, v in switches.items() for k in names if k == key or k.endswith("." + key)}
    return mine | {k: v for k, v in switches.items() if module_switches.takes(entry, k)}


def as_used(path: str, base: str) -> str:
    """A wrapper around ``base``; any other class by its import path."""
    from optbench.registry import OPTIMIZERS
    from optbench.registry.composite import wrapper_keyword

    entry = OPTIMIZERS.get(path)
    try:
        first = next(iter(inspect.signature(entry.target).parameters))
    except (StopIteration, TypeError, ValueError):
        return path
    return f"{path}({base})" if first == "optimizer" or wrapper_keyword(entry) else path


def compare(stacked, alone) -> str:
    """'' when the two tables agree, else the first difference in words."""
    keys = ["seed", "step"]
    a, b = stacked.sort_values(keys, ignore_index=True), alone.sort_values(keys, ignore_index=True)
    if len(a) != len(b):
        return f"{len(a)} rows stacked, {len(b)} alone"
    if (a["status"] != b["status"]).any():
        i = int((a["status"] != b["status"]).to_numpy().argmax())
        return f"status {a['status'][i]} stacked, {b['status'][i]} alone (seed {a['seed'][i]})"
    for x, y, step, seed in zip(a["loss"], b["loss"], a["step"], a["seed"], strict=True):
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        if not abs(x - y) <= 1e-4 * max(abs(y), 1e-12):
            return f"loss {x:.6g} stacked, {y:.6g} alone at step {step} of seed {seed}"
    return ""


def falls(table) -> bool:
    """Every run's last loss below its first."""
    return all(run["loss"].iloc[-1] < run["loss"].iloc[0] for _, run in table.groupby("seed"))


@dataclass
class Verdict:
    clean: bool = True
    stacks: bool = False
    same: bool = True
    falls: bool = True
    ran: bool = True  # both sweeps ran on every problem (else `same` and `falls` say nothing)
    notes: list[str] = field(default_factory=list)


def judge(path: str, library: str, seeds: int, epochs: int) -> Verdict:
    from optbench.core.runner import execute, prepare

    problems, _, switches = LIBRARIES[library]
    verdict = Verdict()
    for problem, options in problems:
        try:
            settings = addressed(path, switches) | required(path, problem, epochs)
            specs = [
                prepare(problem, path, seed=s, epochs=epochs, problem_options=options, hyperparameters=settings)
                for s in range(seeds)
            ]
            stacked, alone = execute(specs), execute(specs, stack=False)
        except Exception as exc:
            verdict.clean = verdict.ran = verdict.falls = False
            verdict.notes.append(f"{problem}: {str(exc).splitlines()[0][:150]}")
            break
        verdict.stacks |= bool((stacked["batch_runs"] > 1).any())
        difference = compare(stacked, alone)
        if difference:
            verdict.same = False
            verdict.notes.append(f"{problem}: DIFFERS: {difference}")
        if not (stacked["status"].eq("ok").all() and alone["status"].eq("ok").all()):
            verdict.clean = False
            bad = stacked if not stacked["status"].eq("ok").all() else alone
            verdict.notes.append(f"{problem}: {bad.loc[bad['status'] != 'ok', 'message'].iloc[0][:150]}")
        verdict.falls &= falls(alone[alone["status"] == "ok"]) if (alone["status"] == "ok").any() else False
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--library", default=",".join(LIBRARIES), help="comma-separated: " + ", ".join(LIBRARIES))
    parser.add_argument("--only", default="", help="comma-separated class names (default: every class)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    differ = 0
    for library in args.library.split(","):
        found = {n: p for n, p in classes(library).items() if not only or n in only}
        counts = dict.fromkeys(("clean", "stacks", "same", "falls"), 0)
        print(f"{library}: {len(found)} classes, {args.seeds} seeds, {args.epochs} epochs", flush=True)
        print(f"{'class':<26} clean stacks same  falls  notes", flush=True)
        for name, path in found.items():
            used = as_used(path, LIBRARIES[library][1])
            verdict = judge(used, library, args.seeds, args.epochs)
            for key in counts:
                counts[key] += getattr(verdict, key) and verdict.ran
            differ += not verdict.same
            shown = "" if used == path else f"as {used.replace(library + ':', '')}; "
            flags = "  ".join(
                f"{'-' if not verdict.ran and k != 'clean' else 'yes' if getattr(verdict, k) else 'no':<4}"
                for k in counts
            )
            print(f"{name:<26} {flags}  {shown}{'; '.join(verdict.notes)}", flush=True)
        print(
            f"{library}: {len(found)} classes; {counts['clean']} clean, {counts['stacks']} stack, "
            f"{counts['same']} stacked == alone ({differ} differ), {counts['falls']} lower the loss\n",
            flush=True,
        )
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
