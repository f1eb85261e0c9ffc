"""The CLI through click's CliRunner: summaries, every bad input, no tracebacks."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ROOT, answers_in_a_fresh_process, invoke

import optbench
from optbench.cli import EXIT_INTERNAL, cli


def test_run_with_defaults_prints_a_summary():
    result = invoke("run", "--problem", "linreg", "--optimizer", "sgd")
    assert result.exit_code == 0, result.output
    df = optbench.run("linreg", "sgd")
    assert f"final loss   {df['loss'].iloc[-1]:.6g}" in result.output
    assert f"optimum f*   {df['optimum'].iloc[0]:.6g}" in result.output
    assert "gap" in result.output and "1000 steps" in result.output


def test_run_classification_reports_test_accuracy():
    result = invoke("run", "--problem", "classification", "--optimizer", "gd")
    assert result.exit_code == 0
    assert "test acc.    99.0%" in result.output
    assert "optimum" not in result.output


def test_run_passes_every_flag_through(tmp_path):
    out = tmp_path / "r.parquet"
    args = [
        "run",
        "--problem",
        "classification",
        "--optimizer",
        "torch-sgd",
        "--lr",
        "0.05",
        "--epochs",
        "3",
        "--batch-size",
        "50",
        "--seed",
        "4",
        "--opt",
        "momentum=0.9",
        "--opt",
        "nesterov=true",
        "--problem-opt",
        "shape=moons",
        "--problem-opt",
        "model=mlp",
        "--eval-every",
        "2",
        "--out",
        str(out),
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    df = optbench.load_results(out)
    expected = optbench.run(
        "classification",
        "torch-sgd",
        lr=0.05,
        epochs=3,
        batch_size=50,
        seed=4,
        momentum=0.9,
        nesterov=True,
        eval_every=2,
        problem_options={"shape": "moons", "model": "mlp"},
    )
    pd.testing.assert_frame_equal(df.drop(columns="time_s"), expected.drop(columns="time_s"))
    assert df["step"].tolist() == list(range(0, 19, 2))  # 300 training examples: 6 steps per epoch


def test_csv_output(tmp_path):
    out = tmp_path / "r.csv"
    assert invoke("run", "--epochs", "5", "--out", str(out), "--quiet").exit_code == 0
    assert optbench.load_results(out)["step"].tolist() == [0, 1, 2, 3, 4, 5]


def test_run_out_onto_an_existing_file_is_refused_without_force(tmp_path):
    out = tmp_path / "r.csv"
    assert invoke("run", "--epochs", "5", "--out", out, "-q").exit_code == 0
    before = out.read_bytes()
    refused = invoke("run", "--epochs", "7", "--out", out, "-q")
    assert refused.exit_code == 2
    assert f"--out {str(out)!r} exists already; add --force to replace it" in refused.output
    assert out.read_bytes() == before  # the earlier results, untouched
    assert invoke("run", "--epochs", "7", "--out", out, "-q", "--force").exit_code == 0
    assert optbench.load_results(out)["step"].max() == 7


def test_a_divergent_run_is_a_result():
    result = invoke("run", "--lr", "5", "--epochs", "200")
    assert result.exit_code == 0
    assert "status       diverged: loss became inf" in result.output


def test_list_shows_names_and_descriptions():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ["linreg", "classification", "gd", "sgd", "torch-sgd", "torch-lbfgs"]:
        assert f"  {name} " in result.output
    assert "fast.ai lesson 2" in result.output
    only_torch = invoke("list", "torch-*").output
    assert "torch-adam" in only_torch and "  gd " not in only_torch and "Problems" not in only_torch


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--problem", "linreg2"],
            "unknown problem 'linreg2' (did you mean 'linreg'?); valid problems: beale, classification, ",
        ),
        (["run", "--optimizer", "sdg"], "unknown optimizer 'sdg' (did you mean 'sgd'?); valid optimizers: gd, "),
        (
            ["run", "--optimizer", "gd", "--opt", "momentum=0.9"],
            "optimizer 'gd' takes no setting 'momentum'; valid settings: lr",
        ),
        (
            ["run", "--optimizer", "torch-sgd", "--opt", "momentun=0.9"],
            "takes no setting 'momentun' (did you mean 'momentum'?)",
        ),
        (["run", "--lr", "abc"], "--lr 'abc' is not a number; expected a positive number"),
        (["run", "--lr", "0"], "--lr 0 is out of range; expected a positive finite number"),
        (["run", "--lr", "-0.1"], "--lr -0.1 is out of range"),
        (["run", "--out", "\x00"], "an argument holds a NUL character"),
        (["run", "--epochs", "0"], "--epochs 0 is out of range; expected a whole number >= 1"),
        (["run", "--epochs", "-3"], "--epochs -3 is out of range; expected a whole number >= 1"),
        (["run", "--epochs", "abc"], "--epochs 'abc' is not a whole number; expected e.g. 10"),
        (["run", "--epochs", "10000000"], "--epochs 10000000 is above the limit of 100000 epochs per run"),
        (["run", "--batch-size", "0"], "--batch-size 0 is out of range; expected a whole number >= 1"),
        (["run", "--seed", "18446744073709551616"], "--seed 18446744073709551616 is out of range"),
        (["run", "--lr", "0.1", "--opt", "lr=0.2"], "--lr 0.1 and --opt lr=0.2 both set the learning rate"),
        (["run", "--optimizer", "torch-sgd", "--opt", "momentum=0.9", "--opt", "momentum=0.5"], "given twice"),
        (
            ["run", "--batch-size", "101"],
            "--batch-size 101 is larger than the 100 training examples of 'linreg'; expected 1 to 100",
        ),
        (["run", "--opt", "momentum"], "--opt 'momentum' is malformed: expected KEY=VALUE"),
        (["run", "--opt", "=3"], "--opt '=3' is malformed"),
        (["run", "--problem-opt", "n"], "--problem-opt 'n' is malformed"),
        (["run", "--optimizer", "torch-sgd", "--opt", "momentum=fast"], "--opt momentum=fast: expected a number"),
        (
            ["run", "--optimizer", "torch-sgd", "--opt", "nesterov=maybe"],
            "--opt nesterov=maybe: expected true or false",
        ),
        (["run", "--problem-opt", "n=ten"], "--problem-opt n=ten: expected an integer"),
        (["run", "--problem", "classification", "--problem-opt", "shape=circle"], "shape='circle' is not valid"),
        (["run", "--optimizer", "torch-sgd", "--opt", "momentum=-1"], "rejected its settings: Invalid momentum value"),
        (
            ["run", "--out", "/no/such/dir/r.parquet"],
            "--out '/no/such/dir/r.parquet': folder '/no/such/dir' does not exist",
        ),
        (["run", "--out", "r.xlsx"], "--out 'r.xlsx': expected a file ending in .parquet or .csv"),
        (["list", "adam*"], "no problem or optimizer matches 'adam*'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("optbench: error: ")
    assert message in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_out_path_that_is_a_directory(tmp_path):
    target = tmp_path / "taken.parquet"
    target.mkdir()
    result = invoke("run", "--out", str(target))
    assert result.exit_code == 2 and "is a directory" in result.output


@pytest.mark.parametrize("command", [[], *([name] for name in sorted(cli.commands))])
def test_every_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output
    if command == ["run"]:
        for flag in [
            "--problem",
            "--optimizer",
            "--lr",
            "--epochs",
            "--batch-size",
            "--seed",
            "--opt",
            "--problem-opt",
            "--out",
            "--eval-every",
            "--plugin",
            "--device",
            "--schedule",
            "--warmup-steps",
        ]:
            assert flag in result.output


def test_every_command_is_listed():
    assert set(cli.commands) == {
        "run",
        "list",
        "describe",
        "test-plugin",
        "baseline",
        "check",
        "report",
        "animate",
        "sweep",
        "tune",
        "bench",
    }


def test_help_does_not_import_torch():
    code = (
        "import sys; from optbench.cli import cli; cli(['--help'], standalone_mode=False); print(sorted(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'torch'" not in out and "'pandas'" not in out
    assert "Usage: " in out


# Every kind of bad input, answered before torch (or pandas, seaborn, a plugin) is imported.
BEFORE_TORCH = [
    (
        ["run", "--optimizer", "sdg"],
        "unknown optimizer 'sdg' (did you mean 'sgd'?); valid optimizers: gd, lion, sgd, ",
    ),  # lion: a plugin, named, not imported
    (["run", "--problem", "linreg2"], "unknown problem 'linreg2' (did you mean 'linreg'?); valid problems: beale, "),
    (["run", "--lr", "0"], "--lr 0 is out of range; expected a positive finite number"),
    (["run", "--lr", "abc"], "--lr 'abc' is not a number"),
    (["run", "--epochs", "0"], "--epochs 0 is out of range; expected a whole number >= 1"),
    (["run", "--device", "gpu"], "--device 'gpu' is not valid; valid: cpu, cuda, cuda:N"),
    (["run", "--device", "cuda:one"], "--device 'cuda:one' is not valid"),
    (["run", "--schedule", "cosin"], "--schedule 'cosin' is not valid (did you mean 'cosine'?)"),
    (
        ["run", "--out", "/no/such/dir/r.parquet"],
        "--out '/no/such/dir/r.parquet': folder '/no/such/dir' does not exist",
    ),
    (["run", "--out", "r.xlsx"], "--out 'r.xlsx': expected a file ending in .parquet or .csv"),
    (["run", "--opt", "momentum"], "--opt 'momentum' is malformed"),
    (["sweep", "--optimizer", "gd,sdg", "--out", "s.parquet"], "unknown optimizer 'sdg' (did you mean 'sgd'?)"),
    (["sweep", "--seeds", "3-1", "--out", "s.parquet"], "--seeds '3-1': the range runs backwards"),
    (["sweep", "--seeds", "-1", "--out", "s.parquet"], "--seeds -1 is out of range; expected a whole number 0 to"),
    (["sweep", "--lr", "0.1,0", "--out", "s.parquet"], "--lr 0 is out of range"),
    (["sweep", "--epochs", "-2", "--out", "s.parquet"], "--epochs -2 is out of range; expected a whole number >= 1"),
    (["sweep", "--out", "s.txt"], "--out 's.txt': expected a file ending in .parquet or .csv"),
    (["sweep", "--config", "missing.toml", "--out", "s.parquet"], "--config 'missing.toml' does not exist"),
    (
        ["tune", "--problem", "rosenbrok", "--out", "t.parquet"],
        "unknown problem 'rosenbrok' (did you mean 'rosenbrock'?)",
    ),
    (["bench", "--optimizer", "lino", "--out", "b"], "unknown optimizer 'lino' (did you mean 'lion'?)"),
    (["bench", "--optimizer", "lion", "--baselines", "gd,adam", "--out", "b"], "unknown optimizer 'adam'"),
    (["bench", "--optimizer", "lion", "--suite", "quik", "--out", "b"], "--suite 'quik' is not a suite (did you mean"),
    (["bench", "--optimizer", "lion", "--suite", "mine.toml", "--out", "b"], "--suite 'mine.toml' does not exist"),
    (["bench", "--optimizer", "lion", "--device", "gpu:0", "--out", "b"], "--device 'gpu:0' is not valid"),
    (["animate", "--optimizer", "gd,sdg", "--out", "a.gif"], "unknown optimizer 'sdg' (did you mean 'sgd'?)"),
    (["animate", "--optimizer", ",", "--out", "a.gif"], "--optimizer: name at least one optimizer"),
    (["animate", "--out", "a.png"], "--out 'a.png': expected a file ending in .gif, .mp4, .html"),
    (["animate", "--out", "/no/such/dir/a.gif"], "folder '/no/such/dir' does not exist"),
    (["animate", "--lr", "-1", "--out", "a.gif"], "--lr -1 is out of range"),
    (["report", "missing.parquet", "--out", "report"], "results 'missing.parquet' do not exist"),
    (["list", "adam*"], "no problem or optimizer matches 'adam*'"),
    (["run", "--optimizer", "gd", "--opt", "momentum=0.9"], "--opt momentum: optimizer 'gd' takes no setting"),
    (["animate", "--optimizer", "torch-sgd,torch-adam", "--opt", "momentun=0.9", "--out", "a.gif"], "(did you mean"),
    (["describe", "sdg"], "unknown problem or optimizer 'sdg' (did you mean 'sgd'?)"),
    (["test-plugin", "lino"], "unknown optimizer 'lino' (did you mean 'lion'?)"),
    (["test-plugin", "gd", "--lr", "0"], "--lr 0 is out of range"),
    (["sweep", "--config", "{bad_names_toml}", "--out", "s.parquet"], "unknown problem 'lineg' (did you mean"),
    (["tune", "--config", "{bad_names_toml}", "--out", "t.parquet"], "unknown problem 'lineg'"),
    (["baseline", "--config", "{bad_matrix_toml}", "--out", "b.json"], "unknown optimizer 'torch-adamm'"),
    (["check", "--baseline", "{baseline}", "--config", "{bad_matrix_toml}"], "unknown optimizer 'torch-adamm'"),
    (["check", "--baseline", "{baseline}", "--device", "gpu"], "--device 'gpu' is not valid"),
    (["check", "--baseline", "missing.json"], "baseline 'missing.json' does not exist"),
    # oversized requests: what a built-in problem's options cost is known before torch loads (issue 35)
    (
        ["run", "--problem", "lm", "--optimizer", "torch-adam", "--epochs", "1", "--problem-opt", "n_train=100000000"],
        "--problem-opt n_train=100000000: problem 'lm' would need about",
    ),
    (
        ["run", "--problem", "lm", "--optimizer", "torch-adam", "--problem-opt", "block_size=1000000"],
        "--problem-opt block_size=1000000: problem 'lm' would need about",
    ),
    (
        ["run", "--problem", "lm", "--problem-opt", "n_train=1000000000000", "--problem-opt", "dtype=float64"],
        "--problem-opt n_train=1000000000000 dtype=float64: problem 'lm' would need about",
    ),
    (
        ["run", "--problem", "quadratic", "--optimizer", "sgd", "--problem-opt", "dim=1000000000"],
        "problem 'quadratic' would need about",
    ),
    (
        ["animate", "--problem", "matrix-factorization", "--problem-opt", "rows=1000000000", "--out", "a.gif"],
        "--problem-opt rows=1000000000: problem 'matrix-factorization' would need about",
    ),
    (
        ["sweep", "--problem", "lm,linreg", "--problem-opt", "n=10,10000000000000", "--out", "s.parquet"],
        "--problem-opt n=10000000000000: problem 'linreg' would need about",
    ),
    (
        ["sweep", "--config", "{big_sweep_toml}", "--out", "s.parquet"],
        "big_sweep.toml: problem_opt block_size=1000000: problem 'lm' would need about",
    ),
    (
        ["tune", "--problem", "classification", "--problem-opt", "n=1000000000000", "--out", "t.parquet"],
        "--problem-opt n=1000000000000: problem 'classification' would need about",
    ),
    (["tune", "--config", "{big_sweep_toml}", "--out", "t.parquet"], "problem 'lm' would need about"),
    (
        ["bench", "--optimizer", "torch-nadam", "--suite", "{big_suite_toml}", "--out", "b"],
        "big_suite.toml': problems[1]: options n_val=1000000000000: problem 'lm' would need about",
    ),
    (
        ["baseline", "--config", "{big_matrix_toml}", "--out", "b.json"],
        "big_matrix.toml: problem_opt n_train=1000000000000: problem 'lm' would need about",
    ),
]


def test_bad_input_is_answered_before_torch_is_imported(tmp_path):
    """One process answers every case in turn: after each, none of the heavy modules is loaded yet (the
    first case that loads one is the one named; every later case would show it too). Bad names, values
    and paths, and oversized requests: a built-in problem's options too big for the memory limit."""
    (tmp_path / "bad_names.toml").write_text('problems = ["lineg"]\noptimizers = ["gd"]\n')
    (tmp_path / "bad_matrix.toml").write_text('[[cells]]\nproblems = ["linreg"]\noptimizers = ["torch-adamm"]\n')
    (tmp_path / "big_sweep.toml").write_text(
        'problems = ["lm"]\noptimizers = ["torch-adam"]\n[problem_opt.lm]\nblock_size = [16, 1000000]\n'
    )
    (tmp_path / "big_suite.toml").write_text(
        '[[problems]]\nproblem = "linreg"\nepochs = 1\n'
        '[[problems]]\nproblem = "lm"\nepochs = 1\noptions = { n_val = 1000000000000 }\n'
    )
    (tmp_path / "big_matrix.toml").write_text(
        '[[cells]]\nproblems = ["lm"]\noptimizers = ["torch-adam"]\nproblem_opt = { n_train = 1000000000000 }\n'
    )
    paths = {
        "big_matrix_toml": str(tmp_path / "big_matrix.toml"),
        "bad_names_toml": str(tmp_path / "bad_names.toml"),
        "bad_matrix_toml": str(tmp_path / "bad_matrix.toml"),
        "big_sweep_toml": str(tmp_path / "big_sweep.toml"),
        "big_suite_toml": str(tmp_path / "big_suite.toml"),
        "baseline": str(ROOT / "benchmarks" / "baseline.json"),
    }
    cases = [[arg.format(**paths) for arg in args] for args, _ in BEFORE_TORCH]
    answers = answers_in_a_fresh_process(cases, tmp_path)
    wrong = []
    for (args, message), answer in zip(BEFORE_TORCH, answers, strict=True):
        lines = answer["stderr"].strip().splitlines()
        if not (
            answer["code"] == 2
            and len(lines) == 1
            and lines[0].startswith("optbench: error: ")
            and message.format(**paths) in lines[0]
            and answer["imported"] == []
        ):
            wrong.append((args, answer["code"], lines[:2], answer["imported"]))
    assert not wrong, "\n".join(map(str, wrong))
    assert not [p.name for p in tmp_path.iterdir() if not p.name.endswith(".toml")]  # nothing written


def test_the_console_script_exits_at_once_with_everything_done(tmp_path):
    """`optbench` ends with os._exit (no torch teardown): its output, its files, its exit code and the
    atexit callbacks of what it imported are all there."""
    exe = str(Path(sys.executable).with_name("optbench"))
    (tmp_path / "at_exit.py").write_text(  # a plugin file registers something (else it is refused)
        "import atexit, pathlib, optbench\nfrom optbench.optimizers.gd import GradientDescent\n"
        "optbench.register_optimizer('gd-at-exit')(GradientDescent)\n"
        "atexit.register(pathlib.Path('ran').write_text, 'yes')\n"
    )
    args = [exe, "run", "--plugin", "at_exit.py", "--epochs", "3", "--out", "r.csv"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "final loss" in done.stdout and done.stdout.endswith("(4 rows)\n")  # flushed into the pipe
    assert len(optbench.load_results(tmp_path / "r.csv")) == 4
    assert (tmp_path / "ran").read_text() == "yes"
    bad = subprocess.run([exe, "run", "--optimizer", "gd", "--opt", "lr=fast"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1  # an error after torch loaded


def test_epochs_scale_shortens_every_run_and_says_so(tmp_path):
    out = tmp_path / "r.csv"
    scaled = invoke("run", "--epochs", "40", "--quiet", "--out", out, env={"OPTBENCH_EPOCHS_SCALE": "0.1"})
    assert scaled.exit_code == 0, scaled.output
    assert optbench.load_results(out)["step"].tolist() == [0, 1, 2, 3, 4]  # 40 epochs x 0.1
    assert scaled.stderr.strip() == (
        "optbench: warning: OPTBENCH_EPOCHS_SCALE=0.1: every run trains that share of its epochs (100 become 10)"
    )
    bad = invoke("run", "--epochs", "2", env={"OPTBENCH_EPOCHS_SCALE": "0"})
    assert bad.exit_code == 2 and bad.output.strip() == (
        "optbench: error: OPTBENCH_EPOCHS_SCALE='0' is not valid; expected a number > 0 such as 0.1"
    )


# A property: whatever the arguments, the CLI answers with an exit code, never a traceback.
_flags = st.sampled_from(
    [
        "--problem",
        "--optimizer",
        "--lr",
        "--epochs",
        "--batch-size",
        "--seed",
        "--opt",
        "--problem-opt",
        "--eval-every",
        "--out",
    ]
)
_values = st.one_of(
    st.sampled_from(
        [
            "linreg",
            "classification",
            "gd",
            "sgd",
            "torch-lbfgs",
            "torch-adam",
            "0",
            "-1",
            "1",
            "2",
            "1e-3",
            "nan",
            "inf",
            "1e309",
            "lr=0",
            "momentum=0.9",
            "n=3",
            "n=0",
            "shape=spirals",
            "model=mlp",
            "classes=1",
            "noise=-1",
            "betas=0.5",
            "dtype=float16",
            "a=1",
            "x.parquet",
            "/dev/null/x.csv",
            "=",
            "",
            "a=b=c",
            "test_fraction=1",
        ]
    ),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_flags, _values), max_size=4))
def test_no_argument_combination_gives_a_traceback(tmp_path_factory, pairs):
    args = ["run", "--epochs", "2"]
    for flag, value in pairs:
        args += [flag, value]
    with contextlib.chdir(tmp_path_factory.getbasetemp()):  # relative --out paths land here
        result = invoke(*args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert result.exit_code != EXIT_INTERNAL


def test_the_console_script_keeps_memory_down_unless_told_otherwise(monkeypatch):
    """pyarrow on the system allocator and glibc on one arena: mimalloc kept what a table read freed,
    and a thread's own arena does not reuse the main one's (benchmarks/README.md)."""
    import ctypes

    from optbench.cli import app

    seen, arenas = [], []

    class Libc:
        def __init__(self, name):
            self.mallopt = lambda option, value: arenas.append((option, value)) or 1
            self.malloc_trim = lambda pad: 1

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    monkeypatch.setattr(app.cli, "main", lambda **_: seen.append(os.environ.get("ARROW_DEFAULT_MEMORY_POOL")) or 0)
    monkeypatch.setattr(app, "exit_now", lambda code: None)
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    app.main()
    assert arenas == [(-8, 1)]  # one malloc arena (M_ARENA_MAX): the parts writer's thread shares it
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    app.main()
    assert seen == ["system", "jemalloc"] and arenas == [(-8, 1)]  # the user's choices stand


LINE_BREAKS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]  # str.splitlines'
CONTROLS = ["\t", "\x00", "\x1b", "\x7f", "\x9b", "\udc80"]  # not line breaks, still not printable


def test_the_line_breaks_are_all_that_splitlines_splits_on():
    """The list below is complete: every code point that splits a line is in it."""
    assert [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1] == sorted(LINE_BREAKS)


@pytest.mark.parametrize("char", LINE_BREAKS + CONTROLS, ids=ascii)
def test_an_error_holding_any_break_or_control_is_one_line(capsys, char):
    from optbench.cli.app import _fail

    assert _fail(f"n={char}: expected an integer", 2) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"optbench: error: n={ascii(char)[1:-1]}: expected an integer"], ascii(err)


@pytest.mark.parametrize("char", LINE_BREAKS, ids=ascii)
def test_a_suite_option_holding_a_line_break_is_one_line(tmp_path, char):
    """From the file to the terminal: TOML spells each as \\uXXXX; the message shows it escaped."""
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'lr = "0.05,0.1"\ntune_seeds = "0"\neval_seeds = "10-17"\n[[problems]]\nproblem = "linreg"\nepochs = 2\n'
        f'options = {{ n = "\\u{ord(char):04x}" }}\n',
        encoding="utf-8",
    )
    args = ["--optimizer", "torch-adam", "--baselines", "torch-sgd", "--suite", suite, "--out", tmp_path]
    result = invoke("bench", *args)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"optbench: error: suite {str(suite)!r}: problems[0]: options n={ascii(char)[1:-1]}: "
        "expected an integer in plain digits, e.g. 100"
    ], ascii(result.output)
