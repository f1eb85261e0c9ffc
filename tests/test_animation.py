"""Animations: frames, what they draw, the three formats, bad input."""

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from matplotlib.animation import FuncAnimation
from PIL import Image

import optbench
from optbench.cli import cli
from optbench.problems.linreg import LinearRegression
from optbench.reports import animate, save
from optbench.reports import animation as animation_module


def test_the_lesson_animation_draws_the_fitted_line():
    anim = animate("linreg", "gd", lr=0.1, epochs=20)
    assert isinstance(anim, FuncAnimation)  # a notebook shows it inline
    frames = list(anim._iter_gen())
    assert frames == list(range(21))  # step 0 and 20 epochs of one step
    anim._func(20)
    line = next(ln for ln in anim._fig.axes[0].get_lines() if ln.get_label() == "gd")
    p = LinearRegression(seed=0)  # the lesson's loop by hand: the last frame shows its line
    for _ in range(20):
        ((p.x @ p.a - p.y) ** 2).mean().backward()
        with torch.no_grad():
            p.a.sub_(0.1 * p.a.grad)
            p.a.grad.zero_()
    slope, intercept = p.a.tolist()
    u = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), slope * u + intercept, rtol=1e-6)
    final_loss = optbench.run("linreg", "gd", lr=0.1, epochs=20)["loss"].iloc[-1]
    assert f"step 20, loss {final_loss:.4g}" in anim._fig._suptitle.get_text()


def test_gif_frames_are_subsampled_to_max_frames(tmp_path):
    path = save(animate("linreg", "sgd", epochs=30, max_frames=12), tmp_path / "fit.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12  # 31 recorded points, 12 kept (the first and the last among them)


def test_a_race_draws_each_path_over_the_contour(tmp_path):
    anim = animate("linreg", ["gd", "torch-sgd", "torch-adam"], lr=0.1, epochs=15)
    path_ax, fit_ax = anim._fig.axes[:2]
    anim._func(15)
    paths = {ln.get_label(): ln for ln in path_ax.get_lines() if ln.get_label() in ("gd", "torch-sgd", "torch-adam")}
    assert set(paths) == {"gd", "torch-sgd", "torch-adam"}
    assert all(len(line.get_xdata()) == 16 for line in paths.values())  # the whole path up to step 15
    assert paths["gd"].get_xdata()[0] == -1.0 and paths["gd"].get_ydata()[0] == 1.0  # from the start (-1, 1)
    assert path_ax.collections  # the loss contour
    assert {ln.get_label() for ln in fit_ax.get_lines()} >= {"gd", "torch-sgd", "torch-adam"}
    save(anim, tmp_path / "race.html")
    assert "<script" in (tmp_path / "race.html").read_text()


def test_classification_regions(tmp_path):
    anim = animate(
        "classification", ["gd", "torch-adam"], lr=0.1, epochs=10, problem_options={"shape": "moons", "model": "mlp"}
    )
    first, second = anim._fig.axes[:2]
    anim._func(10)
    df = optbench.run(
        "classification", "torch-adam", lr=0.1, epochs=10, problem_options={"shape": "moons", "model": "mlp"}
    )
    assert f"test acc. {df['test_accuracy'].iloc[-1]:.1%}" in second.get_title()
    regions = first.images[0].get_array()
    assert regions.shape == (120, 120) and set(np.unique(regions)) <= {0, 1}
    save(anim, tmp_path / "regions.gif")
    with Image.open(tmp_path / "regions.gif") as gif:
        assert gif.n_frames == 11


def test_mp4_with_ffmpeg_and_a_clear_error_without(tmp_path, monkeypatch):
    if os.environ.get("OPTBENCH_REQUIRE_TOOLS") == "1":  # CI installs ffmpeg: the MP4 must be made there
        assert animation_module.shutil.which("ffmpeg"), "OPTBENCH_REQUIRE_TOOLS=1 but no ffmpeg on PATH"
    if animation_module.shutil.which("ffmpeg"):
        path = save(animate("linreg", "gd", epochs=5), tmp_path / "fit.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    monkeypatch.setattr(animation_module.shutil, "which", lambda name: None)
    result = CliRunner().invoke(cli, ["animate", "--epochs", "3", "--out", str(tmp_path / "no.mp4")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "optbench: error: writing .mp4 needs ffmpeg, which is not installed: install it (apt-get install ffmpeg, "
        "brew install ffmpeg or conda install ffmpeg) or write a .gif or .html instead"
    )


def test_cli_animate(tmp_path):
    out = tmp_path / "fit.gif"
    result = CliRunner().invoke(
        cli,
        [
            "animate",
            "--problem",
            "linreg",
            "--optimizer",
            "gd,torch-adam",
            "--lr",
            "0.1",
            "--epochs",
            "8",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "fit.png"], "expected a file ending in .gif, .mp4, .html"),
        (["--out", "/no/such/dir/fit.gif"], "folder '/no/such/dir' does not exist"),
        (["--optimizer", ",", "--out", "x.gif"], "name at least one optimizer"),
        (["--optimizer", "gd,sdg", "--out", "x.gif"], "unknown optimizer 'sdg' (did you mean 'sgd'?)"),
        (["--max-frames", "1", "--out", "x.gif"], "1 is not in the range x>=2"),
    ],
)
def test_bad_animate_input(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["animate", "--epochs", "2", *args])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert message in result.output
    assert not list(tmp_path.iterdir())
