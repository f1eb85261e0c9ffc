"""Frames drawn fast, and the three files they become: GIF, MP4 and an offline HTML player.

matplotlib's writers redraw the whole figure for every frame (axes, ticks, every label, the contour)
and Pillow then picks a new palette per frame, which made the lesson's animations take many seconds.
An :class:`Animation` knows which artists move. It draws the figure once without them, keeps that
image, and per frame pastes it back and draws only the moving artists (blitting), one-line texts
with Pillow; the GIF and the HTML player share one palette. (Timings: benchmarks/README.md.)
"""

from __future__ import annotations

import base64
import errno
import functools
import io
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.animation import FuncAnimation
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image, ImageDraw, ImageFont

from optbench.errors import OptbenchError
from optbench.results.files import ANIMATION_SUFFIXES, animation_file, atomic_write

FORMATS = ANIMATION_SUFFIXES


class Animation(FuncAnimation):
    """A :class:`~matplotlib.animation.FuncAnimation` that knows its ``moving`` artists.

    ``frames()`` renders by blitting; ``to_jshtml()`` (what a notebook shows, also via ``_repr_html_``)
    is :func:`player`: offline, with no CDN for icons as matplotlib's own has.
    """

    def __init__(
        self, fig: Figure, draw: Callable[[int], Any], frames: Sequence[int], moving: Sequence[Artist], interval_ms: int
    ) -> None:
        self.frame_numbers = list(frames)
        self.moving = list(moving)
        self.description = ""  # what was run, in words: saved in the file, a report's caption
        super().__init__(fig, draw, frames=self.frame_numbers, interval=interval_ms, blit=False, cache_frame_data=False)

    @contextmanager
    def _blitting(self) -> Iterator[Callable[[int], Image.Image]]:
        fig = self._fig
        canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
        canvas.mpl_disconnect(self._first_draw_id)  # no timer to start: nothing is shown on a screen
        self._draw_was_started = True  # ... and matplotlib need not warn that it never was
        if fig.get_layout_engine() is not None:  # lay out once with every artist in place, then keep it:
            fig.get_layout_engine().execute(fig)  # the still image and every frame share one geometry
            fig.set_layout_engine("none")
        for artist in self.moving:
            artist.set_animated(True)  # left out of a full draw
        try:
            canvas.draw()
            still = canvas.copy_from_bbox(fig.bbox)
            size = canvas.get_width_height()

            def render(k: int) -> Image.Image:
                canvas.restore_region(still)
                self._func(k)
                by_pillow = [a for a in self.moving if isinstance(a, Text) and _pillow_can_draw(a)]
                for artist in self.moving:
                    if artist not in by_pillow:
                        fig.draw_artist(artist)
                frame = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
                for text in by_pillow:  # over everything else: titles, labels
                    _draw_text(frame, text)
                return frame

            yield render
        finally:
            for artist in self.moving:
                artist.set_animated(False)

    def frames(self) -> Iterator[Image.Image]:
        """Every frame as an RGB image."""
        with self._blitting() as render:
            for k in self.frame_numbers:
                yield render(k)

    def paletted(self) -> Iterator[Image.Image]:
        """Every frame as a 256-colour image, all sharing one palette: the exact colours of the moving
        artists (an optimizer's colour is its name's, in a GIF too), then the first, middle and last
        frames' most common colours."""
        exact = sorted({to_hex(c) for artist in self.moving for c in _colors(artist)})
        with self._blitting() as render:
            numbers = self.frame_numbers
            samples = [render(k) for k in (numbers[0], numbers[len(numbers) // 2], numbers[-1])]
            mosaic = Image.new("RGB", (samples[0].width, 3 * samples[0].height))
            for i, sample in enumerate(samples):
                mosaic.paste(sample, (0, i * sample.height))
            common = mosaic.quantize(256 - len(exact), method=Image.Quantize.MEDIANCUT).getpalette() or []
            palette = Image.new("P", (1, 1))
            palette.putpalette([round(255 * v) for c in exact for v in to_rgb(c)] + common[: 3 * (256 - len(exact))])
            for k in numbers:
                yield render(k).quantize(palette=palette, dither=Image.Dither.NONE)

    def to_jshtml(self, fps: float | None = None, embed_frames: bool = True, default_mode: str | None = None) -> str:
        return player(self, fps=fps or 1000 / self._interval)

    def _repr_html_(self) -> str:
        return self.to_jshtml()


def _colors(artist: Artist) -> list[Any]:
    if isinstance(artist, Line2D):
        return [artist.get_color(), artist.get_markerfacecolor()]
    return [artist.get_color()] if isinstance(artist, Text) else []


def _pillow_can_draw(text: Text) -> bool:
    return text.get_rotation() % 360 == 0 and "\n" not in text.get_text() and "$" not in text.get_text()


@functools.cache
def _font(path: str, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, pixels)


def text_width(text: Text, line: str) -> float:
    """The width in pixels of ``line`` in ``text``'s font and size, as Pillow draws a frame's text."""
    fig = text.get_figure(root=True)
    return _font(font_manager.findfont(text.get_fontproperties()), round(text.get_fontsize() * fig.dpi / 72)).getlength(
        line
    )


def _draw_text(frame: Image.Image, text: Text) -> None:
    """Draw a one-line Text with Pillow where Agg would: Agg lays out every new string anew, most of a
    frame's time; Pillow draws it with the same font, size and colour in a fraction of that."""
    if not text.get_visible() or not text.get_text():
        return
    fig = text.get_figure(root=True)
    x, y = text.get_transform().transform(text.get_unitless_position())
    font = _font(font_manager.findfont(text.get_fontproperties()), round(text.get_fontsize() * fig.dpi / 72))
    anchor = {"left": "l", "center": "m", "right": "r"}[text.get_horizontalalignment()] + {
        "top": "a",
        "center": "m",
        "center_baseline": "m",
        "baseline": "s",
        "bottom": "d",
    }[text.get_verticalalignment()]
    color = tuple(round(255 * c) for c in to_rgba(text.get_color(), text.get_alpha()))
    ImageDraw.Draw(frame).text((x, frame.height - y), text.get_text(), font=font, fill=color[:3], anchor=anchor)


def description(path: str | os.PathLike[str]) -> str:
    """What an animation file says was run (saved by :func:`save`: a GIF's comment, an MP4's comment
    tag, read with ffprobe), or "" where it says nothing (another program's file, no ffprobe)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            with Image.open(path) as image:
                comment = image.info.get("comment", b"")
            return comment.decode(errors="replace") if isinstance(comment, bytes) else str(comment)
        probe = shutil.which("ffprobe")
        if probe is None:
            return ""
        command = [probe, "-v", "error", "-show_entries", "format_tags=comment", "-of", "default=nw=1:nk=1", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""


def check_output(path: str | os.PathLike[str]) -> Path:
    """Fail before any work when an animation could not be written to ``path`` (see :mod:`optbench.results.files`)."""
    return animation_file(path)


def save(animation: Animation, path: str | os.PathLike[str], fps: int = 12) -> Path:
    """Write a .gif (Pillow), .mp4 (H.264 by ffmpeg) or .html (a self-contained, offline player)."""
    path = check_output(path)
    suffix = path.suffix.lower()

    def write(tmp: Path) -> None:  # into a temporary file: a full disk leaves no half file, exit 74
        if suffix == ".gif":
            first, *rest = animation.paletted()
            first.save(
                tmp,
                "GIF",
                save_all=True,
                append_images=rest,
                duration=round(1000 / fps),
                loop=0,
                comment=animation.description.encode(),
            )
        elif suffix == ".mp4":
            _mp4(animation, tmp, fps, shown=path)
        else:
            tmp.write_text(player(animation, fps, standalone=True), encoding="utf-8")

    return atomic_write(path, write)


def _mp4(animation: Animation, path: Path, fps: int, shown: Path) -> None:
    frames = animation.frames()
    first = next(frames)
    width, height = first.size
    command = [
        shutil.which("ffmpeg") or "ffmpeg",
        *("-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"),
        *("-s", f"{width}x{height}", "-r", str(fps), "-i", "-"),
        *("-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
        *("-metadata", f"comment={animation.description}"),
        *("-f", "mp4", str(path)),  # a temporary name: the container said, not guessed from it
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as ffmpeg:
        assert ffmpeg.stdin is not None
        try:
            for frame in (first, *frames):
                ffmpeg.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped: its message follows
        _, errors = ffmpeg.communicate()
    text = errors.decode(errors="replace").strip()
    if "No space left on device" in text:  # ffmpeg exits 0 when its last write fails: read what it said
        raise OSError(errno.ENOSPC, "No space left on device")  # atomic_write: one line, exit 74
    if ffmpeg.returncode or "Error writing" in text or "Error closing" in text:
        raise OptbenchError(f"ffmpeg could not write {str(shown)!r}: {text}")


PLAYER = """<div class="optbench-player" id="{id}" style="display:inline-block;font:14px system-ui,sans-serif">
<img src="{first}" width="{width}" height="{height}" alt="animation, frame 1 of {n}"
 style="display:block;max-width:100%;height:auto">
<div style="display:flex;gap:.3rem;align-items:center;flex-wrap:wrap;margin-top:.3rem">
<button type="button" data-do="first" title="first frame">first</button>
<button type="button" data-do="back" title="previous frame">back</button>
<button type="button" data-do="play" title="play or pause" style="min-width:4.5em">pause</button>
<button type="button" data-do="step" title="next frame">next</button>
<button type="button" data-do="last" title="last frame">last</button>
<input type="range" min="0" max="{last}" value="0" aria-label="frame" style="flex:1;min-width:8rem">
<output style="min-width:5.5em;text-align:right">1 / {n}</output>
<label>speed <select><option value="0.5">0.5x</option><option value="1" selected>1x</option>
<option value="2">2x</option></select></label>
</div>
<script>(function () {{
  var root = document.getElementById("{id}"), frames = {frames}, fps = {fps};
  var img = root.querySelector("img"), slider = root.querySelector("input"), out = root.querySelector("output");
  var play = root.querySelector("[data-do=play]"), speed = root.querySelector("select"), k = 0, timer = null;
  frames.forEach(function (src) {{ new Image().src = src; }});
  function show(i) {{
    k = (i + frames.length) % frames.length; img.src = frames[k]; slider.value = k;
    out.textContent = (k + 1) + " / " + frames.length; img.alt = "animation, frame " + (k + 1) + " of " + frames.length;
  }}
  function stop() {{ clearInterval(timer); timer = null; play.textContent = "play"; }}
  function start() {{
    stop(); play.textContent = "pause";
    timer = setInterval(function () {{ show(k + 1); }}, 1000 / (fps * parseFloat(speed.value)));
  }}
  var moves = {{first: function () {{ return 0; }}, back: function () {{ return k - 1; }},
               step: function () {{ return k + 1; }}, last: function () {{ return frames.length - 1; }}}};
  root.querySelectorAll("button").forEach(function (b) {{
    b.addEventListener("click", function () {{
      var what = b.getAttribute("data-do");
      if (what === "play") {{ timer ? stop() : start(); }} else {{ stop(); show(moves[what]()); }}
    }});
  }});
  slider.addEventListener("input", function () {{ stop(); show(parseInt(slider.value, 10)); }});
  speed.addEventListener("change", function () {{ if (timer) start(); }});
  start();
}})();</script>
</div>"""


def player(animation: Animation, fps: float, standalone: bool = False) -> str:
    """An HTML player: every frame an embedded PNG, plain-text buttons, a slider; no network, no CDN."""
    uris = []
    for image in animation.paletted():
        buffer = io.BytesIO()
        image.save(buffer, format="png", optimize=False)
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    width, height = image.size
    body = PLAYER.format(
        id="optbench-" + uuid.uuid4().hex[:12],
        first=uris[0],
        frames="[" + ",".join(f'"{u}"' for u in uris) + "]",
        fps=f"{fps:g}",
        n=len(uris),
        last=len(uris) - 1,
        width=width,
        height=height,
    )
    if not standalone:
        return body
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>optbench animation</title></head>'
        f'<body style="margin:1rem">{body}</body></html>\n'
    )
