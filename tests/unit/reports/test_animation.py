"""Animations: frames, what they draw, the blitted frames against a full redraw, the three formats, bad input."""

import os

import numpy as np
import pytest
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.colors import LogNorm, to_hex
from matplotlib.text import Text
from PIL import Image
from support import invoke

import optbench
from optbench.errors import InvalidValueError
from optbench.problems.linreg import LinearRegression
from optbench.reports import animate, save, style
from optbench.reports import movie as movie_module
from optbench.studies import replay

RACE = ["gd", "torch-sgd", "torch-adam"]


@pytest.fixture(scope="module")
def lesson():
    return animate(replay.race("linreg", "gd", lr=0.1, epochs=20))


@pytest.fixture(scope="module")
def race():
    return animate(replay.race("linreg", RACE, lr=0.1, epochs=15))


@pytest.fixture(scope="module")
def regions():
    options = {"shape": "moons", "model": "mlp"}
    return animate(replay.race("classification", ["gd", "torch-adam"], lr=0.1, epochs=10, problem_options=options))


def _full_redraw(anim, k):
    """Frame k as matplotlib draws it without any shortcut: the whole figure."""
    anim._func(k)
    anim._fig.canvas.draw()
    return np.asarray(anim._fig.canvas.buffer_rgba())[..., :3].astype(int)


def test_the_lesson_animation_draws_the_fitted_line(lesson):
    assert isinstance(lesson, FuncAnimation)  # a notebook shows it inline
    assert list(lesson._iter_gen()) == list(range(21))  # step 0 and 20 epochs of one step
    lesson._func(20)
    line = next(ln for ln in lesson._fig.axes[0].get_lines() if ln.get_label() == "gd")
    p = LinearRegression(seed=0)  # the lesson's loop by hand: the last frame shows its line
    for _ in range(20):
        ((p.x @ p.a - p.y) ** 2).mean().backward()
        with torch.no_grad():
            p.a.sub_(0.1 * p.a.grad)
            p.a.grad.zero_()
    slope, intercept = p.a.tolist()
    u = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), slope * u + intercept, rtol=1e-6)
    assert to_hex(line.get_color()) == style("gd").color
    final_loss = optbench.run("linreg", "gd", lr=0.1, epochs=20)["loss"].iloc[-1]
    assert lesson._fig._suptitle.get_text() == f"gd (lr 0.1): step 20, loss {final_loss:.4g}"  # what was run


@pytest.mark.parametrize("which", ["lesson", "race", "regions"])
def test_blitted_frames_are_the_full_redraw(request, which):
    """The fast path (still parts drawn once, moving artists and Pillow text per frame) draws the
    picture matplotlib draws from scratch: the same pixels outside the moving texts, the same ink in them."""
    anim = request.getfixturevalue(which)
    frames = list(anim.frames())
    assert len(frames) == len(anim.frame_numbers)
    texts = [a for a in anim.moving if isinstance(a, Text)]
    for i in (0, len(frames) // 2, -1):
        fast = np.asarray(frames[i]).astype(int)
        slow = _full_redraw(anim, anim.frame_numbers[i])
        assert fast.shape == slow.shape
        in_text = np.zeros(fast.shape[:2], bool)
        for text in texts:  # Pillow places glyphs to the pixel, Agg to a fraction of one
            box = text.get_window_extent().padded(3)
            rows = slice(max(0, int(fast.shape[0] - box.y1)), int(fast.shape[0] - box.y0) + 1)
            in_text[rows, max(0, int(box.x0)) : int(box.x1) + 1] = True
            ink_fast, ink_slow = (255 - fast[in_text]).sum(), (255 - slow[in_text]).sum()
            assert ink_fast == pytest.approx(ink_slow, rel=0.25), text.get_text()
        differ = np.abs(fast - slow).max(axis=-1) > 40
        assert differ[~in_text].mean() < 0.0005, f"{which} frame {i}: {differ[~in_text].mean():.3%} differ"
    assert np.abs(np.asarray(frames[0]).astype(int) - np.asarray(frames[-1]).astype(int)).max() > 100  # it moves


def test_gif_frames_are_subsampled_to_max_frames(tmp_path):
    path = save(animate(replay.race("linreg", "sgd", epochs=30), max_frames=12), tmp_path / "fit.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12  # 31 recorded points, 12 kept (the first and the last among them)
        assert gif.info["duration"] == 80  # 12 frames per second, in the GIF's hundredths of a second


def test_a_race_draws_each_path_over_the_contour_with_a_colour_bar(race):
    path_ax, fit_ax = race._fig.axes[:2]
    race._func(15)
    paths = {ln.get_label(): ln for ln in path_ax.get_lines() if ln.get_label() in RACE}
    assert set(paths) == set(RACE)
    assert all(len(line.get_xdata()) == 16 for line in paths.values())  # the whole path up to step 15
    assert paths["gd"].get_xdata()[0] == -1.0 and paths["gd"].get_ydata()[0] == 1.0  # from the start (-1, 1)
    assert {name: to_hex(line.get_color()) for name, line in paths.items()} == {n: style(n).color for n in RACE}
    assert paths["gd"].get_linestyle() != paths["torch-sgd"].get_linestyle()  # gd's path shows under torch-sgd's
    assert {ln.get_label() for ln in fit_ax.get_lines()} >= set(RACE)  # and each fitted line beside
    assert path_ax.collections  # the loss contour ...
    bar = race._fig.axes[2]
    assert bar.get_ylabel() == "mean squared error (log scale)"  # ... and its colour bar
    assert [t.get_text() for t in bar.get_yticklabels()] == ["0.1", "1"]  # plain numbers, not 1.28269x10^0
    title = race._fig._suptitle.get_text()
    assert "\n" not in title and title.startswith("epoch 15 of 15; loss: gd ")  # one readable line
    assert all(f"{name} " in title for name in RACE)
    legend = [t.get_text() for t in race._fig.legends[0].get_texts()]
    assert legend == ["gd (lr 0.1)", "torch-sgd (lr 0.1) (same path as gd)", "torch-adam (lr 0.1)"]


def test_the_gif_keeps_each_optimizer_colour(race, tmp_path):
    """256 colours for a whole GIF: the palette starts with the moving artists' own colours, so an
    optimizer's line is its colour in the GIF too, not the nearest grey of the contour."""
    with Image.open(save(race, tmp_path / "race.gif")) as gif:
        gif.seek(gif.n_frames - 1)
        pixels = np.asarray(gif.convert("RGB")).astype(int)
    for name in RACE:
        rgb = np.array([int(style(name).color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=-1) < 24).sum() > 150, name


def test_classification_regions_have_a_class_legend(regions, tmp_path):
    first, second = regions._fig.axes[:2]
    regions._func(10)
    df = optbench.run(
        "classification", "torch-adam", lr=0.1, epochs=10, problem_options={"shape": "moons", "model": "mlp"}
    )
    assert f"test acc. {df['test_accuracy'].iloc[-1]:.1%}" in second.get_title()
    assert "\n" not in second.get_title()
    region = first.images[0].get_array()
    assert region.shape == (120, 120) and set(np.unique(region)) <= {0, 1}
    legend = regions._fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["class 0", "class 1"]
    assert legend.get_title().get_text() == "predicted region (background), training points (dots)"
    save(regions, tmp_path / "regions.gif")
    with Image.open(tmp_path / "regions.gif") as gif:
        assert gif.n_frames == 11


def test_the_html_player_is_offline_and_small(tmp_path):
    """The lesson's 100 frames as a page that works without a network: no CDN (matplotlib's own
    player loads Font Awesome from one), under 3 MB."""
    anim = animate(replay.race("linreg", "gd", lr=0.1, epochs=100))
    path = save(anim, tmp_path / "fit.html")
    html = path.read_text()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert path.stat().st_size < 3_000_000
    assert html.count("data:image/png;base64,") == 100 + 1  # every frame, and the first once more in <img>
    assert ">play</button>" not in html and ">pause</button>" in html and 'type="range"' in html
    inline = anim._repr_html_()  # what a notebook shows: the same player, not matplotlib's
    assert inline.startswith('<div class="optbench-player"') and "https://" not in inline


def test_mp4_with_ffmpeg(tmp_path):
    if not movie_module.shutil.which("ffmpeg"):
        assert os.environ.get("OPTBENCH_REQUIRE_TOOLS") != "1", "OPTBENCH_REQUIRE_TOOLS=1 but no ffmpeg on PATH"
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): the MP4 is not made here")
    path = save(animate(replay.race("linreg", "gd", epochs=5)), tmp_path / "fit.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(movie_module.shutil, "which", lambda name: None)
    result = invoke("animate", "--epochs", "3", "--out", tmp_path / "no.mp4")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "optbench: error: writing .mp4 needs ffmpeg, which is not installed: install it (apt-get install ffmpeg, "
        "brew install ffmpeg or conda install ffmpeg) or write a .gif or .html instead"
    )


def test_cli_animate(tmp_path):
    out = tmp_path / "fit.gif"
    result = invoke(
        "animate", "--problem", "linreg", "--optimizer", "gd,torch-adam", "--lr", "0.1", "--epochs", "8", "--out", out
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
    result = invoke("animate", "--epochs", "2", *args)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert message in result.output
    assert not list(tmp_path.iterdir())


LANDSCAPES = {"rosenbrock": True, "beale": True, "himmelblau": False, "rastrigin": False}  # log-spaced levels?


def _by_hand(problem_name, optimizer_cls, lr, steps):
    """The point's trajectory, step by step, with the torch.optim class itself: what the frames must show."""
    problem = optbench.get_problem(problem_name).target(seed=0)
    xy = problem.params["xy"]
    opt = optimizer_cls([xy], lr=lr)
    points = [xy.detach().double().tolist()]
    for _ in range(steps):
        opt.zero_grad()
        problem.loss().backward()
        opt.step()
        points.append(xy.detach().double().tolist())
    return np.array(points)


@pytest.mark.parametrize("problem", list(LANDSCAPES))
def test_a_test_function_race_draws_each_path_over_its_contours(problem):
    epochs, lr = 40, 2e-3
    anim = animate(replay.race(problem, ["gd", "torch-adam"], lr=lr, epochs=epochs), max_frames=10)
    ax = anim._fig.axes[0]
    expected = {
        "gd": _by_hand(problem, torch.optim.SGD, lr, epochs),
        "torch-adam": _by_hand(problem, torch.optim.Adam, lr, epochs),
    }
    for k in (anim.frame_numbers[len(anim.frame_numbers) // 2], anim.frame_numbers[-1]):  # a record index per frame
        anim._func(k)
        lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label() in expected}
        for name, points in expected.items():
            drawn = np.column_stack([lines[name].get_xdata(), lines[name].get_ydata()])
            np.testing.assert_allclose(
                drawn, points[: k + 1], rtol=1e-5, atol=1e-7, err_msg=f"{problem} {name} frame {k}"
            )
            assert to_hex(lines[name].get_color()) == style(name).color
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    minimizers = np.array([m[:2] for m in optbench.get_problem(problem).target().minimizers])
    np.testing.assert_allclose(np.column_stack([stars[0].get_xdata(), stars[0].get_ydata()]), minimizers)
    assert (ax.get_xlim(), ax.get_ylim()) == optbench.get_problem(problem).target.bounds
    contour = ax.collections[0]
    assert isinstance(contour.norm, LogNorm) == LANDSCAPES[problem]
    title = anim._fig._suptitle.get_text()
    assert "\n" not in title and title.startswith(f"step {epochs} of {epochs}; f: gd ")
    legend = [t.get_text() for t in anim._fig.legends[0].get_texts()]
    assert legend == ["gd (lr 0.002)", "torch-adam (lr 0.002)", "global minimum"]  # each one's lr, named


def test_a_race_takes_one_learning_rate_per_optimizer(tmp_path):
    """A fair race: each optimizer at its own rate (one shared lr made Adam look broken on Rosenbrock)."""
    out = tmp_path / "fair.gif"
    args = ["animate", "--problem", "rosenbrock", "--optimizer", "gd,torch-adam", "--epochs", "50", "--out", out]
    result = invoke(*args[:-2], "--lr", "0.002,0.05", "--max-frames", "5", "--out", out)
    assert result.exit_code == 0, result.output
    anim = animate(replay.race("rosenbrock", ["gd", "torch-adam"], lr=[0.002, 0.05], epochs=50), max_frames=5)
    save(anim, tmp_path / "again.gif")  # every frame drawn: the title is the last one's
    legend = [t.get_text() for t in anim._fig.legends[0].get_texts()]
    assert legend == ["gd (lr 0.002)", "torch-adam (lr 0.05)", "global minimum"]
    adam = optbench.run("rosenbrock", "torch-adam", lr=0.05, epochs=50)["loss"].iloc[-1]
    assert f"torch-adam {adam:.3g}" in anim._fig._suptitle.get_text()  # the run at its own rate
    wrong = invoke(*args[:-2], "--lr", "0.002,0.05,0.1", "--out", out)
    assert wrong.exit_code == 2
    assert wrong.output.strip() == (
        "optbench: error: --lr '0.002,0.05,0.1' gives 3 learning rates for 2 optimizers; give one for all, "
        "or one per optimizer in --optimizer's order"
    )
    bad = invoke(*args[:-2], "--lr", "0.002,x", "--out", out)
    assert bad.exit_code == 2 and "--lr 'x' is not a number" in bad.output


def test_a_test_function_race_saves_every_frame(tmp_path):
    """300 steps of three optimizers on Rosenbrock, 100 frames (its time is gated in
    benchmarks/test_animation_speed.py)."""
    anim = animate(replay.race("rosenbrock", ["gd", "torch-sgd", "torch-adam"], lr=1e-3, epochs=300))
    path = save(anim, tmp_path / "rosenbrock.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 100
    legend = [t.get_text() for t in anim._fig.legends[0].get_texts()]
    assert legend[1] == "torch-sgd (lr 0.001) (same path as gd)"


def test_only_two_dimensional_landscapes_are_drawn():
    with pytest.raises(InvalidValueError, match="'rastrigin' has 3 coordinates; its contours are drawn in 2-D"):
        replay.race("rastrigin", "gd", epochs=2, problem_options={"dim": 3})
    with pytest.raises(InvalidValueError, match="'ridge' cannot be animated"):
        replay.race("ridge", "gd", epochs=2)


def test_animations_take_the_run_flags_and_train_on_the_cpu():
    anim = animate(replay.race("rosenbrock", "gd", lr=1e-3, epochs=4, schedule="cosine", warmup_steps=2))
    assert len(anim.frame_numbers) == 5
    with pytest.raises(InvalidValueError, match="animations train on the CPU"):
        replay.race("linreg", "gd", epochs=2, device="cuda")


BENCH_SUITE = """
description = "rosenbrock with jitter: the race's rates from a bench"
search = "lr"  # the lr grid alone, at a constant lr: the rates the race replays
schedule = "constant"
lr = "0.001,0.01,0.1"
tune_seeds = "0"
eval_seeds = "10-16"

[[problems]]
problem = "rosenbrock"
epochs = 40
target = 1.0
options = { jitter = 0.1 }
"""


def test_a_race_at_the_rates_a_bench_chose_captioned_with_what_ran(tmp_path):
    """bench -> animate --lr-from -> report --animation: each optimizer at its tuned rate, on the
    bench's problem options, and the page's caption says what was run (not the file name alone)."""
    import pandas as pd

    (tmp_path / "suite.toml").write_text(BENCH_SUITE)
    bench = invoke(
        *("bench", "--optimizer", "torch-adam", "--baselines", "gd", "--suite", tmp_path / "suite.toml"),
        *("--out", tmp_path / "b", "--no-progress", "--no-report"),
    )
    assert bench.exit_code == 0, bench.output
    chosen = pd.read_csv(tmp_path / "b" / "leaderboard.csv").set_index("optimizer")["lr"]
    out = tmp_path / "race.gif"
    args = ("animate", "--problem", "rosenbrock", "--optimizer", "gd,torch-adam", "--epochs", "40", "--max-frames", "4")
    result = invoke(*args, "--lr-from", tmp_path / "b", "--out", out)
    assert result.exit_code == 0, result.output
    said = movie_module.description(out)
    assert said == (  # the bench's first evaluation seed: the runs it evaluated, replayed
        f"rosenbrock jitter=0.1: gd (lr {chosen['gd']:g}), torch-adam (lr {chosen['torch-adam']:g}); "
        "seed 10, 40 epochs (40 steps)"
    )
    # the run drawn is the bench's problem at that rate: its last loss in the title
    adam = optbench.run(
        "rosenbrock", "torch-adam", lr=chosen["torch-adam"], epochs=40, seed=10, problem_options={"jitter": 0.1}
    )
    specs = replay.plan(
        "rosenbrock",
        ["gd", "torch-adam"],
        lr=[chosen["gd"], chosen["torch-adam"]],
        epochs=40,
        seed=10,
        problem_options={"jitter": "0.1"},
    )
    anim = animate(replay.traces(specs), max_frames=4)
    save(anim, tmp_path / "again.gif")
    assert f"torch-adam {adam['loss'].iloc[-1]:.3g}" in anim._fig._suptitle.get_text()
    report = invoke("report", tmp_path / "b" / "results.parquet", "--out", tmp_path / "r", "--animation", out)
    assert report.exit_code == 0, report.output
    assert f"<figcaption>{said} (race.gif)</figcaption>" in (tmp_path / "r" / "index.html").read_text()
    missing = invoke(*args, "--optimizer", "gd,lion", "--lr-from", tmp_path / "b", "--out", out)
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        f"optbench: error: --lr-from {str(tmp_path / 'b')!r} has no tuned setting for 'lion' on 'rosenbrock'; "
        "it has: gd, torch-adam"
    )
    both = invoke(*args, "--lr", "0.1", "--lr-from", tmp_path / "b", "--out", out)
    assert both.exit_code == 2 and "--lr and --lr-from both give learning rates; give one of them" in both.output


def test_the_legend_and_title_stay_in_the_frame_and_the_file_says_what_ran(tmp_path):
    """Four long names on the 648 px landscape: the legend takes as many columns as fit and the
    title wraps, both inside the frame (a row of four was cut at both edges). The file's comment says
    each run's length as run: SGD-momentum at lr 0.05 diverges within a few steps of its 60 epochs."""
    names = ["torch-sgd-momentum", "torch-adam", "torch-adamw", "torch-nadam"]
    anim = animate(replay.race("rosenbrock", names, lr=0.05, epochs=60), max_frames=5)
    path = save(anim, tmp_path / "four.gif")
    frame = anim._fig.bbox
    for artist in (anim._fig.legends[0], anim._fig._suptitle):
        box = artist.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, artist
    assert "\n" in anim._fig._suptitle.get_text()  # too long for one line here
    sgd = optbench.run("rosenbrock", "torch-sgd-momentum", lr=0.05, epochs=60).iloc[-1]
    assert sgd["status"] == "diverged" and sgd["step"] < 60
    assert movie_module.description(path) == (
        "rosenbrock: " + ", ".join(f"{n} (lr 0.05)" for n in names) + "; seed 0, "
        f"torch-sgd-momentum diverged at step {sgd['step']} (epoch {sgd['epoch']:g} of 60); "
        "torch-adam 60 epochs (60 steps); torch-adamw 60 epochs (60 steps); torch-nadam 60 epochs (60 steps)"
    )
