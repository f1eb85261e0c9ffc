"""`run`, `list`, `describe`, `test-plugin`: one run and the registries."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from optbench.cli import preflight
from optbench.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    _warn,
    cli,
    max_epochs_option,
    plugin_option,
    run_options,
    run_settings,
    whole_option,
)
from optbench.results.files import results_file


@cli.command()
@run_options
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Save the table (.parquet or .csv).")
@click.option("--force", is_flag=True, help="Replace an existing --out file (refused without it).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def run(**params: Any) -> int:
    """Run one optimizer on one problem and print a summary."""
    out, quiet, force = params.pop("out"), params.pop("quiet"), params.pop("force")
    preflight.run_options(params, [params["optimizer"]])  # before torch loads: a typo costs nothing
    if out is not None:
        results_file(out)
        if not force and os.path.lexists(out):
            raise click.UsageError(
                f"--out {out!r} exists already; add --force to replace it, or choose another file "
                "(`optbench sweep --out` adds to a results file instead)"
            )

    from optbench.core.runner import execute, prepare
    from optbench.results.io import check_writable, save_results, summarize

    spec = prepare(params.pop("problem"), params.pop("optimizer"), **run_settings(params))
    if out is not None:
        check_writable(out)  # a real temporary file there, before the work
    with StepProgress(enabled=not quiet and sys.stderr.isatty()) as progress:
        df = execute(spec, progress=progress)
    if out is not None:
        save_results(df, out)
    if not quiet:
        click.echo(summarize(df))
        if out is not None:
            click.echo(f"  saved        {out} ({len(df)} rows)")
    return EXIT_FAILED if (df["status"] == "error").any() else EXIT_OK


class StepProgress:
    """A progress line on stderr (steps, loss, ETA) for a run that lasts more than a couple of seconds.

    Silent when stderr is not a terminal. The loss is copied from the device only when the line is
    redrawn (at most 5 times a second), so the progress line costs the loop nothing.
    """

    DELAY_S, REFRESH_S = 2.0, 0.2

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.start, self.drawn = enabled, None, time.perf_counter(), 0.0

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, step: int, steps: int, losses: Any) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.start < self.DELAY_S or now - self.drawn < self.REFRESH_S:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True)
        self.drawn = now
        self.bar.n = step
        self.bar.set_postfix_str(f"loss {float(losses.max()):.4g}", refresh=False)
        self.bar.refresh()


@cli.command("list")
@click.argument("pattern", required=False)
@plugin_option
def list_(pattern: str | None) -> None:
    """List problems and optimizers, optionally filtered by a glob PATTERN such as 'torch-*'.

    Plugins are imported to show their descriptions; one that cannot be is reported on stderr.
    """
    from optbench.errors import PluginError
    from optbench.registry import OPTIMIZERS, PROBLEMS

    for title, registry in (("Problems", PROBLEMS), ("Optimizers", OPTIMIZERS)):
        names = registry.names(pattern)
        if not names:
            continue
        click.echo(f"{title}:")
        width = max(len(n) for n in names)
        for name in names:
            try:
                click.echo(f"  {name:<{width}}  {registry.get(name).description}")
            except PluginError:
                click.echo(f"  {name:<{width}}  [cannot be loaded: see the warning below]")
        for message in registry.broken.values():
            _warn(message)
    if pattern and not (PROBLEMS.names(pattern) or OPTIMIZERS.names(pattern)):
        raise click.UsageError(f"no problem or optimizer matches {pattern!r}; try `optbench list` for all names")


@cli.command()
@click.argument("name")
@plugin_option
def describe(name: str) -> None:
    """Describe a problem or optimizer: settings, defaults, batch size and where it comes from."""
    preflight.known_anywhere(name)  # before torch loads

    from optbench.errors import PluginError, UnknownNameError
    from optbench.optimizers.protocol import gradient_protocol, stacking
    from optbench.registry import OPTIMIZERS, PROBLEMS, REQUIRED
    from optbench.registry.entries import is_composite

    found, errors = [], []
    for registry in (OPTIMIZERS,) if is_composite(name) else (PROBLEMS, OPTIMIZERS):
        try:
            found.append(registry.get(name))
        except PluginError as exc:  # e.g. an import path that is an optimizer, not a problem
            errors.append(exc)
        except UnknownNameError:
            continue
    if not found:
        if errors:
            raise errors[-1]
        raise UnknownNameError("problem or optimizer", name, PROBLEMS.names() + OPTIMIZERS.names())
    for entry in found:
        click.echo(f"{entry.name} ({entry.kind})")
        click.echo(f"  {entry.description}")
        click.echo(f"  source      {entry.source}")
        if entry.kind == "problem" and entry.batch_size:
            click.echo(f"  batch size  {entry.batch_size} (default, after the optimizer's; --batch-size changes it)")
        if entry.kind == "optimizer":
            click.echo(f"  batch size  {entry.batch_size or 'full batch'} (default; --batch-size changes it)")
            click.echo(f"  gradients   {gradient_protocol(entry.target)}")
            click.echo(f"  stacking    {stacking(entry)}")
            click.echo(f"  parameters  {_roles(entry)}")
            click.echo(f"  space       {_space(entry.name)}")
        settings = entry.hyperparameters()
        annotations = entry.annotations()
        title = "hyperparameters" if entry.kind == "optimizer" else "options"
        click.echo(f"  {title}:" if settings else f"  {title}: none")
        rows = [
            (key, annotations.get(key) or ("" if default is None else type(default).__name__), default)
            for key, default in settings.items()
        ]
        key_width = max((len(r[0]) for r in rows), default=0)
        type_width = max((len(r[1]) for r in rows), default=0)
        for key, kind, default in rows:
            shown = "(required)" if default is REQUIRED else _shown(default)
            click.echo(f"    {key:<{key_width}}  {kind:<{type_width}}  {shown}")


def _space(name: str) -> str:
    """What a bench tunes for an optimizer and where that comes from (lr over a suite's range)."""
    from optbench.errors import OptbenchError
    from optbench.studies import spaces

    placeholder = spaces.LR_LIMITS  # stands for the suite's lr range (its widest allowed), which no declaration spells
    try:
        dims, source = spaces.resolve(name, None, placeholder)
    except OptbenchError as exc:
        return f"none usable: {exc}"
    shown = ", ".join(f"{d.name} (the suite's lr range)" if (d.low, d.high) == placeholder else str(d) for d in dims)
    shown = shown or "nothing to tune"
    return f"{shown}; from {source}"


def _roles(entry: Any) -> str:
    from optbench.registry.composite import CompositeEntry, roles_text

    if isinstance(entry, CompositeEntry):
        return roles_text(entry)
    return f"{' and '.join(entry.roles)} only" if entry.roles else "every role"


@cli.command("test-plugin")
@click.argument("name")
@click.option("--lr", default=None, help="Learning rate for the checks [default: the optimizer's].")
@whole_option("--epochs", default="100", show_default=True, help="Budget of the lowers-the-loss checks.")
@max_epochs_option
@click.option("--opt", "opts", multiple=True, metavar="KEY=VALUE", help="Optimizer hyperparameter (repeatable).")
@plugin_option
def test_plugin(name: str, lr: str | None, epochs: int, max_epochs: int, opts: tuple[str, ...]) -> int:
    """Run the conformance suite on optimizer NAME (a name or an import path)."""
    from optbench.registry import OPTIMIZERS
    from optbench.settings import validate
    from optbench.settings.options import parse_assignments, validate_lr

    OPTIMIZERS.require_known([name])  # the name and the numbers before torch loads
    settings = {
        "lr": None if lr is None else validate_lr(lr),
        "epochs": validate.epochs(epochs, "--epochs", max_epochs),
        "hyperparameters": parse_assignments(opts, "--opt"),
    }

    from optbench.quality.conformance import check_optimizer, format_checks

    entry = OPTIMIZERS.get(name)
    checks = check_optimizer(entry.name, **settings, raise_on_failure=False)
    click.echo(f"{entry.name} ({entry.source})")
    click.echo(format_checks(checks))
    failed = sum(not c.passed for c in checks)
    click.echo(f"{len(checks) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _shown(value: Any) -> str:
    """A default as ``describe`` prints it: plain values by repr, a function or class by its name,
    never a memory address (``<function f at 0x7f..>`` changes every process)."""
    from optbench.results.schema import stable_text

    if value is None or isinstance(value, bool | int | float | str | tuple | list):
        return repr(value)
    return stable_text(value)
