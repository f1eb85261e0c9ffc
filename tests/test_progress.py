"""The progress line of `optbench run`: shown on a terminal for long runs, never when piped."""

from optbench.cli.run import StepProgress
from optbench.runner import execute, prepare


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
