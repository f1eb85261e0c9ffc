"""The files a user hands to optbench (sweep, suite and matrix TOML, baseline JSON): none of them runs code
unless the command line says ``--allow-import-paths``, and each is bounded in size and nesting before it is
parsed. Every refusal is one line, exit 2."""

import json

import pytest
from support import invoke

from optbench.settings import inputs

SIDE_EFFECT = "optbench_test_side_effect"  # a module whose import writes a marker


def one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optbench: error: "), result.output
    return lines[0].removeprefix("optbench: error: ")


# --- no file runs code


def hubconf(tmp_path):
    """A folder whose hubconf.py writes a marker: what ``torch.hub.load(folder, "x", source="local")`` runs."""
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "hubconf.py").write_text(f"import pathlib\npathlib.Path({str(tmp_path / 'ran')!r}).write_text('ran')\n")
    return "torch.hub:load", {"repo_or_dir": str(folder), "model": "x", "source": "local"}


def side_effect(tmp_path, monkeypatch):
    """An importable module (on sys.path and PYTHONPATH) that writes a marker when imported."""
    (tmp_path / f"{SIDE_EFFECT}.py").write_text(
        f"import pathlib\npathlib.Path({str(tmp_path / 'ran')!r}).write_text('ran')\nclass Thing:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return f"{SIDE_EFFECT}:Thing", {}


def inline(options):
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + " }"


def suite_file(tmp_path, problem, options):
    path = tmp_path / "s.toml"
    path.write_text(
        f'lr = "0.1"\ntune_seeds = "0"\neval_seeds = "100-105"\n'
        f'[[problems]]\nproblem = "{problem}"\nepochs = 2\noptions = {inline(options)}\n'
    )
    return ["bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", path, "--out", tmp_path / "b"]


def sweep_file(tmp_path, problem, options):
    path = tmp_path / "s.toml"
    table = f'\n[problem_opt."{problem}"]\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    path.write_text(f'problems = "{problem}"\noptimizers = "gd"\nepochs = 2\n' + (table if options else ""))
    return ["sweep", "--config", path, "--out", tmp_path / "r.parquet"]


def matrix_text(problem, options):
    opts = f"problem_opt = {inline(options)}\n" if options else ""
    return f'epochs = 2\nseeds = [0]\n[[cells]]\nproblems = "{problem}"\noptimizers = "gd"\n{opts}'


def matrix_file(tmp_path, problem, options):
    path = tmp_path / "m.toml"
    path.write_text(matrix_text(problem, options))
    return ["baseline", "--config", path, "--out", tmp_path / "b.json"]


def baseline_file(tmp_path, problem, options):
    cell = {"problems": problem, "optimizers": "gd", "problem_opt": options}
    data = {"optbench_baseline": 1, "matrix": {"epochs": 2, "seeds": [0], "cells": [cell]}, "cells": {}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    return ["check", "--baseline", path]


FILES = {"suite": suite_file, "sweep": sweep_file, "matrix": matrix_file, "baseline": baseline_file}


@pytest.mark.parametrize("attempt", [hubconf, side_effect], ids=["torch.hub", "import"])
@pytest.mark.parametrize("kind", FILES)
def test_no_file_runs_code(tmp_path, monkeypatch, kind, attempt):
    problem, options = attempt(tmp_path) if attempt is hubconf else attempt(tmp_path, monkeypatch)
    message = one_line_error(invoke(*FILES[kind](tmp_path, problem, options)))
    assert f"problem {problem!r} is an import path; a file may name only registered problems" in message
    assert "--allow-import-paths" in message
    assert not (tmp_path / "ran").exists()


def test_a_sweep_file_names_optimizers_by_registered_names_only(tmp_path, monkeypatch):
    optimizer, _ = side_effect(tmp_path, monkeypatch)
    path = tmp_path / "s.toml"
    path.write_text(f'problems = "linreg"\noptimizers = "{optimizer}"\n')
    message = one_line_error(invoke("sweep", "--config", path, "--out", tmp_path / "r.parquet"))
    assert f"optimizer {optimizer!r} is an import path" in message and not (tmp_path / "ran").exists()


def test_allow_import_paths_lets_a_suite_import(tmp_path, monkeypatch):
    """The flag is what lifts the refusal: with it, the suite's import path is imported (and then refused,
    as it is no problem class)."""
    problem, options = side_effect(tmp_path, monkeypatch)
    result = invoke(*suite_file(tmp_path, problem, options), "--allow-import-paths", "--no-report")
    assert result.exit_code == 2 and (tmp_path / "ran").exists(), result.output


def test_a_registered_problem_in_a_suite_is_fine(tmp_path):
    from optbench.studies.bench import load_suite

    args = suite_file(tmp_path, "linreg", {"n": 20})
    assert [e.problem for e in load_suite(str(args[6])).entries] == ["linreg"]
    with pytest.raises(Exception, match="unknown problem 'linrg' \\(did you mean 'linreg'\\?\\)"):
        load_suite(str(suite_file(tmp_path, "linrg", {})[6]))


# --- bounded before parsing

DEEP = 5000  # far past Python's recursion limit: tomllib and json would raise RecursionError


def deep_texts():
    arrays = "x = " + "[" * DEEP + "]" * DEEP + "\n"
    tables = "x = " + "{ a = " * DEEP + "1" + " }" * DEEP + "\n"
    dotted = "x" + ".a" * DEEP + " = 1\n"  # nests tables without a bracket: measured once parsed
    return {"arrays": arrays, "inline tables": tables, "dotted keys": dotted}


def toml_command(kind, tmp_path, text):
    path = tmp_path / "f.toml"
    path.write_text(text)
    return {
        "sweep": ["sweep", "--config", path, "--out", tmp_path / "r.parquet"],
        "suite": ["bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", path, "--out", tmp_path / "b"],
        "matrix": ["baseline", "--config", path, "--out", tmp_path / "b.json"],
    }[kind]


@pytest.mark.parametrize("shape", deep_texts())
@pytest.mark.parametrize("kind", ["sweep", "suite", "matrix"])
def test_deeply_nested_toml_is_one_line(tmp_path, kind, shape):
    args = toml_command(kind, tmp_path, deep_texts()[shape])
    message = one_line_error(invoke(*args))
    assert f"'{tmp_path / 'f.toml'}' nests deeper than the limit of {inputs.MAX_DEPTH} levels" in message


@pytest.mark.parametrize("kind", ["sweep", "suite", "matrix"])
def test_a_huge_toml_file_is_refused_before_parsing(tmp_path, kind):
    args = toml_command(kind, tmp_path, "# padding\n" * (inputs.MAX_BYTES // 10 + 1))
    message = one_line_error(invoke(*args))
    assert f"is larger than the limit of {inputs.MAX_BYTES:,} bytes" in message


@pytest.mark.parametrize(
    "text", ["[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP, " " * (inputs.MAX_BYTES + 1)]
)
def test_a_baseline_is_bounded_too(tmp_path, text):
    path = tmp_path / "b.json"
    path.write_text(text)
    message = one_line_error(invoke("check", "--baseline", path))
    assert f"baseline '{path}'" in message and "limit" in message


def test_a_baseline_with_an_unconvertible_integer_is_corrupt(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"x": ' + "9" * 5000 + "}")
    assert f"baseline '{path}' is corrupt" in one_line_error(invoke("check", "--baseline", path))


@pytest.mark.parametrize(
    "text",
    [
        'a = "' + "[" * 100 + '"\n',  # brackets in strings and comments do not nest
        "a = '" + "{" * 100 + "'\n",
        'a = """\n' + "[" * 100 + '\n"""\n',
        "a = '''\n" + "{" * 100 + "\n'''\n",
        "# " + "[" * 100 + "\n",
        'a = "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n',  # an escaped quote does not end the string
        "a = " + "[" * inputs.MAX_DEPTH + "]" * inputs.MAX_DEPTH + "\n",  # at the limit: fine
        "[t]\n" + "[[u]]\nx = 1\n" * 100,  # headers open and close
    ],
)
def test_brackets_that_do_not_nest_are_not_counted(tmp_path, text):
    path = tmp_path / "ok.toml"
    path.write_text(text)
    assert isinstance(inputs.read_toml(path, "--config"), dict)


def test_one_past_the_depth_limit_is_refused(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * (inputs.MAX_DEPTH + 1) + "]" * (inputs.MAX_DEPTH + 1) + "\n")
    with pytest.raises(inputs.InvalidValueError, match="nests deeper than the limit of 32 levels"):
        inputs.read_toml(path, "--config")


def test_quotes_that_end_a_multiline_string_do_not_hide_nesting(tmp_path):
    """TOML lets a multi-line string's content end in one or two quotes (``\"\"\"x\"\"\"\"``): the scan
    must end the string where tomllib does, or the nesting after it would go unseen."""
    path = tmp_path / "q.toml"
    for text in ('a = """x""""\n', "a = '''x'''''\n"):
        deep = text + "b = " + "[" * DEEP + "]" * DEEP + "\n"
        with pytest.raises(inputs.InvalidValueError, match="nests deeper than the limit"):
            inputs._check_depth(deep, inputs._TOML_TOKENS, path, "--config")  # the scan itself sees it
        path.write_text(text)
        assert inputs.read_toml(path, "--config")["a"].startswith("x")


@pytest.mark.parametrize("suffix", ["toml", "json"])
def test_nesting_the_scan_misses_is_still_one_line(tmp_path, monkeypatch, suffix):
    """The parser's RecursionError is the last line of defence: it gets the same message."""
    monkeypatch.setattr(inputs, "_check_depth", lambda *args: None)
    path = tmp_path / f"f.{suffix}"
    path.write_text(("x = " if suffix == "toml" else "") + "[" * DEEP + "]" * DEEP + "\n")
    read = inputs.read_toml if suffix == "toml" else inputs.read_json
    with pytest.raises(inputs.InvalidValueError, match="nests deeper than the limit of 32 levels"):
        read(path, "--config")
