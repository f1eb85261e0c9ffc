"""Fuzzed sweep TOML files and baseline files: whatever is in them, one line and exit 2, or a clean run;
never a traceback, never exit 70 (an internal error). The runs themselves are stubbed out: this is
about reading and checking files, which happens before any run."""

import json
import math
from unittest import mock

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import invoke

from optbench.quality.regression import SETTINGS, Measurement

NAMES = ["linreg", "classification", "gd", "sgd", "torch-sgd", "torch-adam", "torch.hub:load", "a:b", "sdg", ""]
WORDS = ["0-3", "1e-4:1:3", "0-99999999999", "1:0:3", "blobs", "cosine", "cpu", "cuda", "final", "time", "1,,2"]
scalars = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.sampled_from(NAMES + WORDS)
    | st.text(max_size=8)
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


PLAUSIBLE = {
    "problems": ["linreg", ["linreg", "classification"]],
    "optimizers": ["gd", ["gd", "torch-sgd"], ["sgd", "torch-adam"]],
    "seeds": ["0-1", [0, 1], 2, "3"],
    "epochs": [1, 2, 3],
    "batch_size": [5, 10],
    "eval_every": [1, 2],
    "device": ["cpu"],
    "schedule": ["constant", "cosine", "step"],
    "warmup_steps": [0, 1],
    "lr": ["0.01,0.1", 0.1, [0.05], "1e-3:1:3"],
    "tune_seeds": ["0-1", [3]],
    "eval_seeds": ["5-6", [9]],
    "select": ["final", "time"],
}
TABLES = {
    ("opt", "torch-sgd"): {"momentum": [0.9, [0, 0.9]], "nesterov": [False], "lr": [0.1]},
    ("opt", "torch-adam"): {"betas": ["0.9,0.99"], "lr": ["0.01,0.1"]},
    ("problem_opt", "classification"): {"shape": ["moons"], "model": ["mlp"], "n": [40, "40,60"]},
    ("problem_opt", "linreg"): {"n": [20, "20,30"], "noise": [0.5]},
}


@st.composite
def valid_files(draw):
    """A sweep file every check accepts: settings, and [opt.NAME]/[problem_opt.NAME] for the grid's names."""
    top = {key: draw(st.sampled_from(values)) for key, values in PLAUSIBLE.items() if key in ("problems", "optimizers")}
    for key in sorted(set(PLAUSIBLE) - {"problems", "optimizers"}):
        if draw(st.booleans()):
            top[key] = draw(st.sampled_from(PLAUSIBLE[key]))
    names = {*_as_list(top["problems"]), *_as_list(top["optimizers"])}
    sections: dict = {}
    for (section, name), table in TABLES.items():
        if name in names and draw(st.booleans()):
            chosen = {k: draw(st.sampled_from(v)) for k, v in table.items() if draw(st.booleans())}
            sections.setdefault(section, {})[name] = chosen
    return top, sections


def _as_list(value):
    return value if isinstance(value, list) else [value]


# Where junk goes: a top-level key, a table's name or one of its settings (known or not).
places = st.one_of(
    st.sampled_from(sorted(PLAUSIBLE)).map(lambda k: (k,)),
    st.tuples(
        st.sampled_from(["opt", "problem_opt"]),
        st.sampled_from(["sgdd", "torch-sgd", "linreg", "x"]),
        st.sampled_from(["momentum", "n", "lr", "betas", "typo"]),
    ),
)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def toml_text(top, sections):
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in top.items()]
    for section, named in sections.items():
        for name, table in named.items():
            lines.append(f"[{section}.{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def check_one_line(result):
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("optbench: error: "), result.output


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid=valid_files(), mutations=st.lists(st.tuples(places, junk), max_size=2))
def test_fuzzed_sweep_files(tmp_path_factory, valid, mutations):
    """A valid file with up to two values replaced by anything at all."""
    top, sections = valid
    for place, value in mutations:
        if len(place) == 1:
            top = {**top, place[0]: value}
        else:
            sections.setdefault(place[0], {}).setdefault(place[1], {})[place[2]] = value
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / "sweep.toml"
    config.write_text(toml_text(top, sections), encoding="utf-8")
    with mock.patch("optbench.studies.sweeps.run_jobs", return_value=pd.DataFrame()):
        result = invoke("sweep", "--config", config, "--out", folder / "s.parquet", "--max-runs", "50")
    check_one_line(result)


MATRIX = {**SETTINGS, "epochs": 2, "seeds": [0], "problems": ["linreg"], "optimizers": ["gd", "torch-sgd"]}
VALID = {
    "optbench_baseline": 1,
    "environment": {},
    "matrix": {"cells": [MATRIX]},
    "cells": {
        cell: {
            "final": 0.5,
            "metric": "suboptimality",
            "steps_to_target": 2.0,
            "seconds_to_target": 0.01,
            "status": "ok",
            "per_seed": [0.5],
        }
        for cell in ("linreg/gd", "linreg/torch-sgd")
    },
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.sampled_from(NAMES + WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
paths = st.sampled_from(
    [("optbench_baseline",), ("matrix",), ("matrix", "cells"), ("cells",), ("cells", "linreg/gd")]
    + [("matrix", "cells", 0, key) for key in [*SETTINGS, "problems", "optimizers", "lr", "opt", "problem_opt", "x"]]
    + [("cells", "linreg/gd", key) for key in ["final", "metric", "steps_to_target", "status", "per_seed", "x"]]
)


def put(data, path, value):
    """Set ``data[path] = value`` where the path still leads somewhere (earlier changes may have cut it)."""
    *steps, last = path
    for step in steps:
        if isinstance(data, dict) and isinstance(step, str):
            data = data.setdefault(step, {})
        elif isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return
    fits = isinstance(data, list) and isinstance(last, int) and last < len(data)
    if fits or (isinstance(data, dict) and isinstance(last, str)):
        data[last] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(paths, json_values), min_size=1, max_size=2))
def test_fuzzed_baseline_files(tmp_path_factory, changes):
    data = json.loads(json.dumps(VALID))
    for path, value in changes:
        put(data, path, value)
    baseline = tmp_path_factory.mktemp("fuzz") / "b.json"
    baseline.write_text(json.dumps(data))
    stub = Measurement(0.5, "suboptimality", 2.0, 0.01, "ok", [0.5])
    with mock.patch("optbench.quality.regression.measure", return_value=stub):
        check_one_line(invoke("check", "--baseline", baseline))
