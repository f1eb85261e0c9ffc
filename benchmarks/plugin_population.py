"""Run a real plugin population through optbench: every optimizer class of pytorch-optimizer.

    pip install pytorch-optimizer && python benchmarks/plugin_population.py [--epochs 5] [--seeds 3]

For each class (by import path ``pytorch_optimizer:Name``) and each of ``linreg`` and
``classification``, a sweep over a few seeds is run twice: stacked (the default) and one by one
(``--no-vectorize``). A class is run the way it is meant to be used: a wrapper (its first argument
an ``optimizer``, or a ``base_optimizer`` class, as Lookahead and the SAM family take) around
torch-adam, ``pytorch_optimizer:Lookahead(torch-adam)``; any other by its name. Printed: how many
classes run cleanly (every run ``ok`` on both problems), how many stack, and every class whose
stacked sweep disagrees with its runs alone in a status or in a recorded loss beyond 1e-4 relative.
Not part of the test suite (it needs the package, and minutes).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings


def classes() -> dict[str, str]:
    """Every optimizer class the package offers: its list of supported optimizers, and the
    Optimizer subclasses it exports beside them (the wrappers: Lookahead, OrthoGrad, the SAM family)."""
    import inspect

    import pytorch_optimizer
    import torch

    found = []
    for name in pytorch_optimizer.get_supported_optimizers():
        try:
            found.append(pytorch_optimizer.load_optimizer(name))
        except Exception:
            continue
    for name in dir(pytorch_optimizer):
        obj = getattr(pytorch_optimizer, name)
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            found.append(obj)
    out = {}
    for cls in found:
        if getattr(pytorch_optimizer, cls.__name__, None) is cls:
            out[cls.__name__] = f"pytorch_optimizer:{cls.__name__}"
        else:
            out[cls.__name__] = f"{cls.__module__}:{cls.__qualname__}"
    return dict(sorted(out.items()))


def required(path: str, problem: str, epochs: int) -> dict[str, list]:
    """Values for settings a class requires (it has no default): what its documentation asks for."""
    from optbench.registry import OPTIMIZERS, REQUIRED

    rows = {"linreg": 100, "classification": 300}[problem]
    known = {"num_data": rows, "num_iterations": epochs, "total_steps": epochs, "num_training_steps": epochs}
    wanted = [k for k, v in OPTIMIZERS.get(path).hyperparameters().items() if v is REQUIRED]
    return {k: [known[k]] for k in wanted if k in known}


def as_used(path: str) -> str:
    """A wrapper around torch-adam (``Lookahead(torch-adam)``); any other class by its import path."""
    import inspect

    from optbench.registry import OPTIMIZERS

    entry = OPTIMIZERS.get(path)
    try:
        first = next(iter(inspect.signature(entry.target).parameters))
    except (StopIteration, TypeError, ValueError):
        return path
    return f"{path}(torch-adam)" if first == "optimizer" or "base_optimizer" in entry.hyperparameters() else path


def compare(stacked, alone) -> str:
    """'' when the two tables agree, else the first difference in words."""
    keys = ["seed", "step"]
    a, b = stacked.sort_values(keys, ignore_index=True), alone.sort_values(keys, ignore_index=True)
    if len(a) != len(b):
        return f"{len(a)} rows stacked, {len(b)} alone"
    if (a["status"] != b["status"]).any():
        i = int((a["status"] != b["status"]).to_numpy().argmax())
        return f"status {a['status'][i]} stacked, {b['status'][i]} alone (seed {a['seed'][i]})"
    for x, y, step in zip(a["loss"], b["loss"], a["step"], strict=True):
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        if not abs(x - y) <= 1e-4 * max(abs(y), 1e-12):
            return f"loss {x:.6g} stacked, {y:.6g} alone at step {step}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import optbench

    found = classes()
    clean, stacked_any, disagree, failing = [], [], [], {}
    for name, path in found.items():
        path = as_used(path)
        ok = True
        for problem in ("linreg", "classification"):
            try:
                kwargs = dict(problems=problem, optimizers=[path], seeds=range(args.seeds), epochs=args.epochs)
                kwargs["opt"] = required(path, problem, args.epochs)
                stacked = optbench.sweep(**kwargs)
                alone = optbench.sweep(**kwargs, vectorize=False)
            except Exception as exc:
                failing[name] = str(exc).splitlines()[0][:160]
                ok = False
                break
            if (stacked["batch_runs"] > 1).any():
                stacked_any.append(name)
            difference = compare(stacked, alone)
            if difference:
                disagree.append(f"{name} on {problem}: {difference}")
            if not stacked["status"].eq("ok").all():
                ok = False
                failing.setdefault(name, stacked.loc[stacked["status"] != "ok", "message"].iloc[0][:160])
        if ok:
            clean.append(name)
        shown = "" if path.endswith(name) else f" as {path.partition(':')[2]}"
        print(f"{name:<24} {'ok' if ok else 'not clean: ' + failing.get(name, '')}{shown}", flush=True)
    print()
    print(f"{len(found)} classes; {len(clean)} run cleanly on linreg and classification")
    print(f"{len(set(stacked_any))} stack; {len(disagree)} stacked sweeps disagree with their runs alone")
    for line in disagree:
        print(f"  DISAGREES: {line}")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
