"""The progress line of `optbench run`: shown on a terminal for long runs, never when piped."""

from support import invoke

from optbench.cli.run import StepProgress
from optbench.core.runner import execute, prepare


def test_the_progress_line_shows_steps_loss_and_eta(capsys, monkeypatch):
    monkeypatch.setattr(StepProgress, "DELAY_S", 0.0)
    monkeypatch.setattr(StepProgress, "REFRESH_S", 0.0)
    with StepProgress(enabled=True) as progress:
        table = execute(prepare("linreg", "gd", epochs=30), progress=progress)
    err = capsys.readouterr().err
    assert "30/30" in err and "step" in err  # steps done of all, tqdm's rate and ETA around them
    assert f"loss {table['loss'].iloc[-1]:.4g}" in err


def test_no_progress_line_when_piped_or_short(capsys):
    with StepProgress(enabled=False) as progress:  # stderr is not a terminal
        execute(prepare("linreg", "gd", epochs=30), progress=progress)
    with StepProgress(enabled=True) as progress:  # a run shorter than DELAY_S
        execute(prepare("linreg", "gd", epochs=30), progress=progress)
    assert capsys.readouterr().err == ""


def test_progress_sees_every_recorded_point_of_a_stacked_group():
    seen = []
    specs = [prepare("linreg", "gd", epochs=4, seed=s) for s in range(3)]
    execute(specs, progress=lambda step, steps, losses: seen.append((step, steps, tuple(losses.shape))))
    assert seen == [(1, 4, (3,)), (2, 4, (3,)), (3, 4, (3,)), (4, 4, (3,))]


def test_a_resumed_sweep_says_what_was_new_resumed_and_retried(tmp_path):
    out = tmp_path / "s.parquet"
    first = invoke("sweep", "--lr", "0.1,0.01", "--seeds", "0-2", "--epochs", "3", "--out", out)
    assert "6 runs (6 ok, 0 diverged, 0 errors; 6 new, 0 resumed from OUT, 0 retried)" in first.output
    again = invoke("sweep", "--lr", "0.1,0.01", "--seeds", "0-3", "--epochs", "3", "--out", out)
    assert "8 runs (8 ok, 0 diverged, 0 errors; 2 new, 6 resumed from OUT, 0 retried)" in again.output


def test_tune_says_when_a_choice_sits_on_the_edge_of_its_grid(tmp_path):
    from optbench.studies.tuning import mark_edges

    planned = [
        {"problem": "linreg", "problem_options": {}, "optimizer": "gd", "hyperparameters": {"lr": lr}}
        for lr in (0.01, 0.1, 1.0)
    ]
    inner = mark_edges([{"job": planned[1]}], planned)[0]
    top = mark_edges([{"job": planned[2]}], planned)[0]
    assert inner["edges"] == {} and top["edges"] == {"lr": 1.0}
    result = invoke(
        "tune",
        "--optimizer",
        "gd",
        "--lr",
        "1e-3:1e-2:3",
        "--epochs",
        "5",
        "--search",
        "lr",
        "--out",
        tmp_path / "t.parquet",
    )
    assert "lr=0.01  (median final:" in result.output  # gd wants a far larger lr than this grid has
    assert "[lr=0.01 is on the edge of the grid: widen it]" in result.output
