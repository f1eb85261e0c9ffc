"""`animate --lr-from BENCH`: the runs a bench evaluated its chosen settings with, replayed exactly
(every tuned value, the schedule and its warm-up, the budget, the problem's options), run as a user runs
them: `optbench bench` on a tiny suite, then `optbench animate --lr-from` on its folder."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image
from support import invoke

from optbench.errors import InvalidValueError
from optbench.reports.movie import description
from optbench.studies import replay

SUITE = """
description = "SGD-momentum and AdamW tuned over their spaces, under a cosine schedule with warm-up"
tune_seeds = "0"
eval_seeds = "10-15"
search = "halton"
trials = 3
max_trials = 6
studies = 1
speedup = false
schedule = "cosine"
warmup_steps = 3

[[problems]]
problem = "linreg"
epochs = 12
options = { noise = 0.5 }
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replay")
    (folder / "suite.toml").write_text(SUITE)
    result = invoke(
        *("bench", "--optimizer", "torch-adamw", "--baselines", "torch-sgd-momentum"),
        *("--suite", folder / "suite.toml", "--out", folder / "b", "--no-progress", "--no-report", "--jobs", "1"),
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(folder / "b" / "results.parquet")
    return folder, table[table["phase"] == "eval"]


def _last(runs: pd.DataFrame, optimizer: str, seed: int) -> pd.Series:
    mine = runs[(runs["optimizer"] == optimizer) & (runs["seed"] == seed)]
    return mine.iloc[-1]


def test_the_animation_ends_where_the_bench_run_ended(bench, tmp_path):
    """Each optimizer's animated run is the bench's evaluation run at that seed, bit for bit: its final
    loss, its tuned momentum/betas/weight decay, the cosine schedule with its 3 warm-up steps, 12 epochs."""
    folder, runs = bench
    names = ["torch-sgd-momentum", "torch-adamw"]
    for seed in (None, 13):  # the first evaluation seed by default; any evaluated one with --seed
        out = tmp_path / f"tuned-{seed}.gif"
        args = ["animate", "--problem", "linreg", "--optimizer", ",".join(names), "--lr-from", folder / "b"]
        result = invoke(*args, *([] if seed is None else ["--seed", seed]), "--out", out)
        assert result.exit_code == 0, result.output
        said = description(out)
        shown = 10 if seed is None else seed
        assert f"; seed {shown}, cosine schedule after 3 warm-up steps, 12 epochs (12 steps)" in said, said
        specs = replay.chosen(folder / "b", "linreg", names, seed=seed)
        for trace in replay.traces(specs):
            bench_run = _last(runs, trace["name"], shown)
            assert trace["seed"] == shown
            assert trace["records"][-1]["loss"] == bench_run["loss"], trace["name"]  # exactly, not approximately
            assert trace["records"][-1]["step"] == bench_run["step"] == 12
    sgd = _last(runs, "torch-sgd-momentum", 10)
    spec = replay.chosen(folder / "b", "linreg", ["torch-sgd-momentum"])[0]
    assert spec.hyperparameters["momentum"] == sgd["momentum"] != 0.9  # the tuned value, not the default
    assert (spec.schedule, spec.warmup_steps, spec.epochs) == ("cosine", 3, 12)
    assert spec.problem_options["noise"] == 0.5
    adamw = replay.chosen(folder / "b", "linreg", ["torch-adamw"])[0].hyperparameters
    assert ",".join(map(str, adamw["betas"])) == _last(runs, "torch-adamw", 10)["betas"]
    assert adamw["weight_decay"] == _last(runs, "torch-adamw", 10)["weight_decay"]
    said = description(tmp_path / "tuned-None.gif")  # the legend and the caption name every tuned value
    assert f"torch-sgd-momentum (lr {sgd['lr']:g}, momentum {sgd['momentum']:.3g})" in said, said
    with Image.open(tmp_path / "tuned-None.gif") as gif:
        assert gif.n_frames == 13  # step 0 and 12 epoch ends
    # the epochs stored are those run: OPTBENCH_EPOCHS_SCALE (the README's blocks run under it) scales nothing twice
    scaled = invoke(*args, "--out", tmp_path / "scaled.gif", env={"OPTBENCH_EPOCHS_SCALE": "0.5"})
    assert scaled.exit_code == 0, scaled.output
    assert description(tmp_path / "scaled.gif") == description(tmp_path / "tuned-None.gif")


def test_a_flag_that_contradicts_the_bench_is_one_line(bench, tmp_path):
    folder, _ = bench
    args = ["animate", "--problem", "linreg", "--optimizer", "torch-adamw", "--lr-from", folder / "b"]
    same = invoke(*args, "--epochs", "12", "--schedule", "cosine", "--out", tmp_path / "same.gif")
    assert same.exit_code == 0, same.output  # what the bench ran: nothing contradicts
    cases = {
        ("--epochs", "300"): "--epochs 300 differs from the 12 that --lr-from",
        ("--schedule", "constant"): "--schedule constant differs from the cosine that --lr-from",
        ("--opt", "momentum=0.9"): "--opt and --lr-from both give hyperparameters",
        ("--lr", "0.1"): "--lr and --lr-from both give learning rates",
    }
    for flag, message in cases.items():
        result = invoke(*args, *flag, "--out", tmp_path / "x.gif")
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output
    missing = invoke(*args[:4], "gd", *args[5:], "--out", tmp_path / "x.gif")
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        f"optbench: error: --lr-from {str(folder / 'b')!r} has no tuned setting for 'gd' on 'linreg'; "
        "it has: torch-adamw, torch-sgd-momentum"
    )
    assert not (tmp_path / "x.gif").exists()


def test_a_run_whose_settings_cannot_be_rebuilt_is_refused(bench, tmp_path):
    """The rebuilt spec is checked against the run key stored beside it: a cell changed behind
    optbench's back (here the momentum) is refused, not replayed as something else."""
    folder, _ = bench
    table = pd.read_parquet(folder / "b" / "results.parquet")
    table.loc[table["optimizer"] == "torch-sgd-momentum", "momentum"] = 0.5
    table.to_parquet(tmp_path / "edited.parquet")
    with pytest.raises(InvalidValueError, match="cannot be rebuilt exactly"):
        replay.chosen(tmp_path / "edited.parquet", "linreg", ["torch-sgd-momentum"])


def test_a_run_a_gpu_trained_is_replayed_on_the_cpu(bench, tmp_path):
    """A bench on cuda stores device=cuda, in its cells and its run keys: the replay rebuilds that run
    (its key matches) and trains it on the CPU, where an animation draws."""
    import dataclasses

    from optbench.results import schema

    folder, _ = bench
    table = pd.read_parquet(folder / "b" / "results.parquet")
    first = replay.chosen(folder / "b", "linreg", ["torch-sgd-momentum"])[0]
    on_gpu = dataclasses.replace(first, settings={**first.settings, "device": "cuda"})
    mine = (table["optimizer"] == "torch-sgd-momentum") & (table["phase"] == "eval")
    table.loc[mine, "device"] = "cuda"
    table.loc[mine, "run_key"] = table.loc[mine, "seed"].map(lambda s: schema.seed_keys(on_gpu, [s], "eval")[0])
    table.to_parquet(tmp_path / "gpu.parquet")
    spec = replay.chosen(tmp_path / "gpu.parquet", "linreg", ["torch-sgd-momentum"])[0]
    assert spec.device == "cpu" and spec.hyperparameters == first.hyperparameters and spec.settings == first.settings
