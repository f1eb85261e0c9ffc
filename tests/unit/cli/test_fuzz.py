"""Fuzzed sweep TOML files and baseline files: whatever is in them, one line and exit 2, or a clean run;
never a traceback, never exit 70 (an internal error). The runs themselves are stubbed out: this is
about reading and checking files, which happens before any run."""

import functools
import json
import math
import os
import shutil
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from support import answers_in_a_fresh_process, invoke

import optbench
from optbench.errors import InvalidValueError
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
        lines = [line for line in result.output.strip().splitlines() if not line.startswith("optbench: warning: ")]
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


def mutated(valid, changes):
    """A deep copy of ``valid`` with each (path, value) of ``changes`` put in (see :func:`put`)."""
    data = json.loads(json.dumps(valid))
    for path, value in changes:
        put(data, path, value)
    return data


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
    data = mutated(VALID, changes)
    baseline = tmp_path_factory.mktemp("fuzz") / "b.json"
    baseline.write_text(json.dumps(data))
    stub = Measurement(0.5, "suboptimality", 2.0, 0.01, "ok", [0.5])
    with mock.patch("optbench.quality.regression.measure", return_value=stub):
        check_one_line(invoke("check", "--baseline", baseline))


# --- every option of every command, with real runs (each trimmed to one epoch by OPTBENCH_EPOCHS_SCALE)

HOSTILE = [
    "",
    "-1",
    "0",
    "1e400",
    "nan",
    "inf",
    "99999999999999999999",
    "1_0",
    "\u0660.\u0661",
    "0x10",
    " ",
    ",",
    "-0",
    "🙂",
]
TINY_SUITE = 'lr = "0.05,0.1"\ntune_seeds = "0"\neval_seeds = "10-17"\n[[problems]]\nproblem = "linreg"\nepochs = 2\n'
FILE_OUTS = ["{f}/o.parquet", "{f}/o.csv", "{f}/o.xlsx", "{f}", "{f}/no/such/o.parquet", "{f}/fifo.parquet"]
FOLDER_OUTS = ["{f}/out", "{f}", "{f}/o.parquet", "{f}/no/such/deeper", "{f}/fifo.parquet"]
VALUES = {
    "--problem": ["linreg", "quadratic", "classification", "sdg", "torch.hub:load", "this:s", "linreg,quadratic"],
    "--optimizer": ["gd", "sgd", "torch-adam", "gd,torch-sgd", "this:s", "torch.optim:SGD", "sdg"],
    "--baselines": ["gd", "gd,torch-sgd", "sdg", "torch-adam"],
    "--lr": ["0.1", "0.01,0.1", "1e-3:1:3", "5", "1e-3:1:0"],
    "--seeds": ["0-1", "0", "3,4", "1-0", "0-99999999999"],
    "--tune-seeds": ["0", "0-1", "x"],
    "--eval-seeds": ["5", "5-6", "0-1"],
    "--epochs": ["1", "2", "100001"],
    "--batch-size": ["5", "1000", "10"],
    "--eval-every": ["1", "3"],
    "--schedule": ["cosine", "step", "linear", "cosin"],
    "--warmup-steps": ["1", "5"],
    "--device": ["cpu", "cuda", "cuda:3", "tpu"],
    "--opt": ["momentum=0.9", "lr=1", "betas=0.9,0.99", "=", "momentum", "x=1", "momentum=abc"],
    "--problem-opt": ["n=20", "shape=moons", "n=-1", "n=10000000000000", "noise=0.5", "shape=x"],
    "--config": ["{f}/sweep.toml", "{f}/bad.toml", "{f}/none.toml"],
    "--suite": ["{f}/suite.toml", "{f}/bad.toml", "quik", "{f}/none.toml"],
    "--jobs": ["1", "2"],
    "--executor": ["local", "dask", "x"],
    "--scheduler": ["tcp://127.0.0.1:1", "x"],
    "--max-runs": ["1", "10"],
    "--max-epochs": ["1", "10"],
    "--threads": ["1", "2", "5000"],
    "--fps": ["1", "12", "1000"],
    "--max-frames": ["2", "5"],
    "--target": ["0.5", "abs:0.1", "x", "2"],
    "--animation": ["{f}/none.gif", "{f}/sweep.toml"],
    "--junit-xml": ["{f}/j.xml", "{f}"],
    "--json": ["{f}/j.json", "{f}"],
    "--baseline": ["{f}/none.json", "{f}/sweep.toml"],
    "--plugin": ["{f}/plugin.py", "{f}/empty.py", "{f}/none.py"],
    "--select": ["final", "time", "x"],
}
# What a command needs to get going (an option fuzzed over it replaces it), and how often to try it.
BASE = {
    "run": ([], 14),
    "sweep": (["--out", "{f}/o.parquet"], 14),
    "tune": (["--out", "{f}/o.parquet", "--tune-seeds", "0", "--eval-seeds", "5"], 10),
    "bench": (["--optimizer", "torch-adam", "--baselines", "gd", "--suite", "{f}/suite.toml", "--out", "{f}/out"], 8),
    "animate": (["--out", "{f}/a.gif", "--max-frames", "3"], 8),
    "report": (["{f}/stored.parquet", "--out", "{f}/rep"], 5),
    "check": (["--baseline", "{f}/none.json"], 6),
    "baseline": (["--config", "{f}/matrix.toml", "--out", "{f}/b.json"], 6),
    "describe": (["gd"], 6),
    "list": ([], 4),
    "test-plugin": (["gd", "--epochs", "2"], 6),
}
MATRIX_TOML = 'epochs = 2\nseeds = [0]\n[[cells]]\nproblems = ["linreg"]\noptimizers = ["gd"]\n'
PLUGIN = (
    "import optbench\nfrom optbench.optimizers.gd import GradientDescent\n"
    "optbench.register_optimizer('fuzz-gd', override=True)(GradientDescent)\n"
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A small store of runs, copied into OUT before each command: what the command must not lose."""
    path = tmp_path_factory.mktemp("stored") / "stored.parquet"
    assert (
        invoke("sweep", "--optimizer", "gd,torch-sgd", "--seeds", "0-1", "--epochs", "2", "--out", path).exit_code == 0
    )
    return path


def _folder(stored, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmd")
    shutil.copy(stored, folder / "o.parquet")
    shutil.copy(stored, folder / "stored.parquet")
    os.mkfifo(folder / "fifo.parquet")
    (folder / "sweep.toml").write_text('problems = "linreg"\noptimizers = ["gd"]\nepochs = 2\n')
    (folder / "bad.toml").write_text("problems = [[[[\n")
    (folder / "suite.toml").write_text(TINY_SUITE)
    (folder / "matrix.toml").write_text(MATRIX_TOML)
    (folder / "plugin.py").write_text(PLUGIN)
    (folder / "empty.py").write_text("X = 1\n")
    return folder


@pytest.mark.parametrize("command", sorted(BASE))
def test_every_option_of_every_command(command, stored, tmp_path_factory, monkeypatch):
    """Up to four of a command's options, each a plausible or a hostile value, over its base arguments:
    exit 0, 1 or 2 (2: one line), never 70, never a traceback, and every run stored in OUT still there."""
    import click

    from optbench.cli import cli

    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # put back after the test
    monkeypatch.setenv("OPTBENCH_EPOCHS_SCALE", "0.01")  # every run one or two epochs: the fuzz, not the training
    options = [p for p in cli.commands[command].params if isinstance(p, click.Option)]
    base, examples = BASE[command]
    kept = set(optbench.load_results(stored)["run_key"])

    @settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data):
        folder = _folder(stored, tmp_path_factory)
        os.chdir(folder)  # a relative path among the values lands here, not in the checkout
        chosen = data.draw(st.lists(st.sampled_from(options), max_size=4, unique_by=lambda p: p.opts[0]))
        args = list(base)
        for option in chosen:
            name = option.opts[0]
            if option.is_flag:
                args.append(name)
                continue
            value = data.draw(
                st.sampled_from(VALUES.get(name, []) + HOSTILE) if name in VALUES else st.sampled_from([*HOSTILE, "1"])
            )
            if name in args and not option.multiple:
                where = args.index(name)
                args[where + 1] = value
            else:
                args += [name, value]
        if command == "bench" and "--no-report" not in args:
            args.append("--no-report")  # the page is the report's test: seconds per example otherwise
        args = [a.replace("{f}", str(folder)) for a in args]
        result = invoke(command, *args)
        assert "internal error" not in result.output, (args, result.output)
        check_one_line(result)
        out = folder / "o.parquet"
        if out.is_file() and not (command == "run" and "--force" in args):
            assert kept <= set(optbench.load_results(out)["run_key"]), args  # nothing stored was lost

    one()


# --- suite and matrix files: a valid one with up to two values replaced by anything (runs stubbed)

SUITE = {
    "lr": "0.05,0.1",
    "tune_seeds": "0",
    "eval_seeds": "10-17",
    "problems": [{"problem": "linreg", "epochs": 2, "target": 0.5, "options": {"n": 20}}],
}
MATRIX_FILE = {"epochs": 2, "seeds": [0], "cells": [{"problems": ["linreg"], "optimizers": ["gd"], "lr": [0.1]}]}
suite_places = st.sampled_from(
    [("lr",), ("tune_seeds",), ("eval_seeds",), ("description",), ("problems",), ("x",)]
    + [("problems", 0, key) for key in ["problem", "epochs", "target", "options", "batch_size", "schedule"]]
    + [("problems", 0, key) for key in ["warmup_steps", "eval_every", "device", "x"]]
    + [("problems", 0, "options", key) for key in ["n", "noise", "x"]]
)
matrix_places = st.sampled_from(
    [(key,) for key in [*SETTINGS, "cells", "x"]]
    + [("cells", 0, key) for key in [*SETTINGS, "problems", "optimizers", "lr", "opt", "problem_opt", "x"]]
)


def toml_document(data, prefix=""):
    """TOML for nested dicts with arrays of tables (``problems``, ``cells``) and inline tables."""
    plain = {k: v for k, v in data.items() if not _tables(v)}
    lines = [f"{json.dumps(k)} = {_inline(v)}" for k, v in plain.items()]
    for key, tables in data.items():
        if _tables(tables):
            for table in tables:
                lines.append(f"[[{json.dumps(key)}]]")
                lines += [f"{json.dumps(k)} = {_inline(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _tables(value):
    return isinstance(value, list) and value and all(isinstance(v, dict) for v in value)


def _inline(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return toml_value(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(suite_places, junk), min_size=1, max_size=2))
def test_fuzzed_suite_files(tmp_path_factory, changes):
    data = mutated(SUITE, changes)
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "s.toml").write_text(toml_document(data), encoding="utf-8")
    empty = (pd.DataFrame(), pd.DataFrame())
    with (
        mock.patch("optbench.studies.bench.bench", return_value=empty),
        mock.patch("optbench.studies.bench.to_markdown"),
    ):
        result = invoke("bench", "--optimizer", "torch-adam", "--suite", folder / "s.toml", "--out", folder / "b")
    check_one_line(result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(matrix_places, junk), min_size=1, max_size=2))
def test_fuzzed_matrix_files(tmp_path_factory, changes):
    data = mutated(MATRIX_FILE, changes)
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "m.toml").write_text(toml_document(data), encoding="utf-8")
    stub = Measurement(0.5, "suboptimality", 2.0, 0.01, "ok", [0.5])
    with mock.patch("optbench.quality.regression.measure", return_value=stub):
        result = invoke("baseline", "--config", folder / "m.toml", "--out", folder / "b.json")
    check_one_line(result)


# --- sizes, nested names and suite spaces: refused in one line before any work, never exit 70

LM_SIZES = ["n_train", "n_val", "block_size", "n_layer", "n_head", "n_embd", "vocab", "order"]
sizes = st.builds(lambda m, e: min(m * 10**e, 10**12), st.integers(1, 9), st.integers(0, 12))  # 1 to 1e12
LIMIT_GIB = "0.25"  # the same limit on every machine (the default is half of this one's memory)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(options=st.dictionaries(st.sampled_from(LM_SIZES), sizes, min_size=1, max_size=2))
def test_fuzzed_lm_sizes_are_refused_before_anything_is_built(options):
    """lm's size options up to 1e12: a run that fits is built and runs; one that does not is refused in one
    line naming its options and the estimate, before the problem's constructor runs, in seconds (a build
    would allocate terabytes); and every option at 1e9 or more is such a refusal."""
    import time

    from optbench.problems.lm import LanguageModel

    built, original = [], LanguageModel.__init__

    @functools.wraps(original)  # the same signature: the options are read from it
    def spy(self, *args, **kwargs):
        built.append(kwargs)
        original(self, *args, **kwargs)

    flags = [w for k, v in options.items() for w in ("--problem-opt", f"{k}={v}")]
    with (
        mock.patch.object(LanguageModel, "__init__", spy),
        mock.patch.dict(os.environ, {"OPTBENCH_MAX_MEMORY": LIMIT_GIB}),
    ):
        start = time.perf_counter()
        result = invoke("run", "--problem", "lm", "--optimizer", "torch-adam", "--epochs", "1", *flags)
        elapsed = time.perf_counter() - start
    assert "internal error" not in result.output, result.output
    check_one_line(result)
    refused = "would need about" in result.output
    if max(options.values()) >= 10**9:
        assert refused, (options, result.output)
    if refused:
        shown = " ".join(f"{k}={v}" for k, v in options.items())
        assert f"--problem-opt {shown}: problem 'lm' would need about" in result.output, result.output
        assert "pass --max-memory" in result.output and built == [] and elapsed < 5, (options, elapsed)
    if result.exit_code == 0:
        assert built, options


# Every built-in problem's size options; each at 1e9 or more needs more than LIMIT_GIB whatever the others are.
BIG_OPTIONS = {
    "lm": LM_SIZES,
    "linreg": ["n"],
    "quadratic": ["dim", "n"],
    "classification": ["n"],
    "matrix-factorization": ["rows", "cols", "true_rank", "rank"],
    "rastrigin": ["dim"],
    "digits-mlp": ["hidden"],
    "digits-cnn": ["channels"],
}
huge = st.builds(lambda m, e: min(m * 10**e, 10**12), st.integers(1, 9), st.integers(9, 12))  # 1e9 to 1e12
SURFACES = ["run", "animate", "sweep", "sweep file", "tune", "tune file", "bench suite"]
oversized = st.tuples(
    st.sampled_from(SURFACES),
    st.sampled_from(sorted(BIG_OPTIONS)).flatmap(
        lambda p: st.tuples(st.just(p), st.dictionaries(st.sampled_from(BIG_OPTIONS[p]), huge, min_size=1, max_size=2))
    ),
    st.sampled_from(["gd", "sgd", "torch-adam", "torch-muon+torch-adamw", "sgd+torch-adam"]),
    st.sampled_from([None, 1, 64]),
)


# each example is a new process answering 8 requests; a failure prints them all, so no slow shrinking
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(cases=st.lists(oversized, min_size=8, max_size=8))
def test_fuzzed_oversized_requests_are_refused_before_torch_loads(tmp_path_factory, cases):
    """A built-in problem's options at 1e9 to 1e12, from flags, sweep and tune files and suite files, with any
    optimizer and batch size: refused in one line, exit 2, naming the problem and the estimate, before torch
    (or pandas) is imported, so in a fraction of a second whatever the machine (issue 35)."""
    folder = tmp_path_factory.mktemp("oversized")
    commands = [_oversized(i, *case, folder) for i, case in enumerate(cases)]
    answers = answers_in_a_fresh_process(commands, folder, env={"OPTBENCH_MAX_MEMORY": LIMIT_GIB})
    wrong = []
    for case, answer in zip(cases, answers, strict=True):
        lines = answer["stderr"].strip().splitlines()
        problem = case[1][0]
        if not (
            answer["code"] == 2
            and len(lines) == 1
            and f"problem {problem!r} would need about" in lines[0]
            and answer["imported"] == []
        ):
            wrong.append((case, answer["code"], lines[:2], answer["imported"]))
    assert not wrong, "\n".join(map(str, wrong))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{i}.toml" for i in range(len(cases)) if "file" in cases[i][0] or "suite" in cases[i][0]
    )


def _oversized(i, surface, request, optimizer, batch_size, folder):
    """The command line of one oversized request (a file it reads is written to ``folder``)."""
    problem, options = request
    flags = [w for k, v in options.items() for w in ("--problem-opt", f"{k}={v}")]
    batch = [] if batch_size is None else ["--batch-size", str(batch_size)]
    path = folder / f"{i}.toml"
    if surface in ("run", "animate"):
        out = ["--out", folder / "a.gif"] if surface == "animate" else []
        return [surface, "--problem", problem, "--optimizer", optimizer, "--epochs", "1", *flags, *batch, *out]
    if surface in ("sweep", "tune"):
        return [surface, "--problem", problem, "--optimizer", optimizer, *flags, *batch, "--out", folder / "s.parquet"]
    if surface == "bench suite":
        size = "" if batch_size is None else f"batch_size = {batch_size}\n"
        shown = ", ".join(f"{k} = {v}" for k, v in options.items())
        path.write_text(f'[[problems]]\nproblem = "{problem}"\nepochs = 1\n{size}options = {{ {shown} }}\n')
        return ["bench", "--optimizer", "torch-nadam", "--suite", path, "--out", folder / "b"]
    size = "" if batch_size is None else f"batch_size = {batch_size}\n"
    table = "".join(f"{k} = [{v}]\n" for k, v in options.items())
    path.write_text(f'problems = ["{problem}"]\noptimizers = ["{optimizer}"]\n{size}[problem_opt.{problem}]\n{table}')
    return [surface.split()[0], "--config", path, "--out", folder / "s.parquet"]


WRAPPERS = ["torch-adam", "pytorch_optimizer:Lookahead", "x", "torch-sgd "]
INNER = ["torch-sgd", "torch-muon+torch-adamw", "torch-adam + torch-sgd", "", "+"]
PLACES = ["run", "describe", "sweep file", "sweep file table", "baseline file", "suite baselines", "suite spaces"]


@st.composite
def nested_names(draw):
    depth = draw(st.integers(1, 12) | st.sampled_from([500, 10_000]) | st.integers(13, 10_000))
    outer, inner = draw(st.sampled_from(WRAPPERS)), draw(st.sampled_from(INNER))
    return depth, f"{outer}(" * depth + inner + ")" * draw(st.sampled_from([depth, depth - 1, depth + 1]))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(nested=nested_names(), place=st.sampled_from(PLACES))
def test_fuzzed_nested_names_from_flags_and_files(tmp_path_factory, nested, place):
    """A wrapper nested up to 10,000 deep, as a flag or in any file that names optimizers: one line, exit 2
    where it is deeper than composite names may nest; never a RecursionError (exit 70)."""
    depth, name = nested
    folder = tmp_path_factory.mktemp("names")
    stub = Measurement(0.5, "suboptimality", 2.0, 0.01, "ok", [0.5])
    with (
        mock.patch("optbench.studies.sweeps.run_jobs", return_value=pd.DataFrame()),
        mock.patch("optbench.quality.regression.measure", return_value=stub),
        mock.patch("optbench.studies.search.search", side_effect=InvalidValueError(STUB)),
    ):
        result = _name_in(place, name, folder)
    out = result.output[:300]
    assert "internal error" not in result.output, (place, depth, out)
    check_one_line(result)
    assert len(result.output) < 1000, (place, out)  # a message never repeats a huge name
    if depth > 8:
        assert result.exit_code == 2, out
        assert "a name may have at most" in out or "may nest at most 8" in out, out


STUB = "stub: the runs would start here"


def _name_in(place, name, folder):
    if place == "run":
        return invoke("run", "--optimizer", name, "--epochs", "1")
    if place == "describe":
        return invoke("describe", name)
    if place.startswith("sweep"):
        table = f"[opt.{json.dumps(name)}]\nlr = [0.1]\n" if place.endswith("table") else ""
        optimizers = "gd" if table else name
        (folder / "s.toml").write_text(f'problems = "linreg"\noptimizers = [{json.dumps(optimizers)}]\n{table}')
        return invoke("sweep", "--config", folder / "s.toml", "--out", folder / "s.parquet")
    if place == "baseline file":
        data = mutated(VALID, [(("matrix", "cells", 0, "optimizers"), [name])])
        (folder / "b.json").write_text(json.dumps(data))
        return invoke("check", "--baseline", folder / "b.json")
    extra = (
        f"baselines = [{json.dumps(name)}]\n"
        if place == "suite baselines"
        else f'[spaces.{json.dumps(name)}]\nlr = "log:1e-3:1"\n'
    )
    top, tables = (extra, "") if place == "suite baselines" else ("", extra)
    (folder / "suite.toml").write_text(top + TINY_SUITE + tables)
    return invoke("bench", "--optimizer", "torch-adam", "--suite", folder / "suite.toml", "--out", folder / "b")


NUMBERS = [0, -1, 1e-9, 1e-4, 0.5, 0.9, 1, 1e4, 1e30, 1e31, 1e308, "inf", "-inf", "nan", -1e308]
ranges = (
    st.sampled_from(["log:1e-4:1", "0.1:0.2", "log1m:0.8:0.99", "log:1e-3:1e-3"])
    | st.builds(
        lambda scale, low, high: f"{scale}{low}:{high}",
        st.sampled_from(["", "log:", "log1m:", "lin:"]),
        st.sampled_from(NUMBERS),
        st.sampled_from(NUMBERS),
    )
    | scalars
)
DIMS = ["lr", "eps", "momentum", "betas.0", "betas.5", "foo", "weight_decay", "torch-adamw.weight_decay", "lr.0"]
SPACE_NAMES = ["torch-adam", "torch-sgd", "torch-adamm", "torch-muon + torch-adamw", "gd", "x(y)"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    space=st.dictionaries(
        st.sampled_from(SPACE_NAMES), st.dictionaries(st.sampled_from(DIMS), ranges, max_size=3), max_size=2
    ),
    lr_alone=st.booleans(),
    baselines=st.sampled_from(["torch-sgd", "torch-muon+torch-adamw"]),
)
@example(space={"torch-adam": {"lr.0": "log:1e-4:1"}}, lr_alone=False, baselines="torch-sgd")  # found: exit 70
def test_fuzzed_suite_spaces(tmp_path_factory, space, lr_alone, baselines):
    """Suite spaces of every kind, up to the runs (stubbed): a refusal is one line naming the suite file and
    its spaces; the runs start only where every space belongs to an optimizer of the bench and search uses it."""
    folder = tmp_path_factory.mktemp("spaces")
    path = folder / "suite.toml"
    tables = "".join(
        f"[spaces.{json.dumps(name)}]\n" + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in dims.items())
        for name, dims in space.items()
    )
    path.write_text(('search = "lr"\n' if lr_alone else "") + TINY_SUITE + tables, encoding="utf-8")
    with (
        mock.patch("optbench.studies.search.search", side_effect=InvalidValueError(STUB)),
        mock.patch("optbench.studies.tuning.tune", side_effect=InvalidValueError(STUB)),
    ):
        args = ["--optimizer", "torch-adam", "--baselines", baselines, "--suite", path, "--out", folder / "b"]
        result = invoke("bench", *args)
    assert "internal error" not in result.output, result.output
    check_one_line(result)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    if STUB in line:  # the runs would start: every space is one the bench uses
        canonical = {"torch-muon + torch-adamw": "torch-muon+torch-adamw"}
        assert not space or not lr_alone, line
        assert {canonical.get(n, n) for n in space} <= {"torch-adam", baselines}, line
    else:
        assert f"suite {str(path)!r}" in line and "spaces" in line, line
