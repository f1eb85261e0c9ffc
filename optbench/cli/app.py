"""The ``optbench`` group, its error handling and the options its commands share.

Only click and torch-free modules are imported at the top, so ``optbench --help`` is instant;
torch, pandas and the registries load inside the commands. The library raises typed exceptions
(:mod:`optbench.errors`); :class:`OptbenchGroup` turns them into one line and an exit code.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import click

from optbench.errors import OptbenchError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


class OptbenchGroup(click.Group):
    """A group whose errors are one line on stderr and an exit code, never a traceback."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            _warn_if_scaled()
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = EXIT_USAGE
        except click.ClickException as exc:
            code = _fail(exc.format_message(), exc.exit_code)
        except OptbenchError as exc:
            code = _fail(str(exc), EXIT_USAGE)
        except click.Abort:
            code = _fail("aborted", 130)
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("OPTBENCH_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            code = _fail(
                f"internal error: {type(exc).__name__}: {first} (OPTBENCH_DEBUG=1 shows the traceback)", EXIT_INTERNAL
            )
        if standalone_mode:
            sys.exit(code)
        return code


def _warn_if_scaled() -> None:
    """Say so when OPTBENCH_EPOCHS_SCALE shortens every run (a bad value is one line, exit 2)."""
    from optbench.options import EPOCHS_SCALE, scaled_epochs

    scale = os.environ.get(EPOCHS_SCALE, "").strip()
    if scale:
        hundred = scaled_epochs(100)  # first: a bad value is the only line
        _warn(f"{EPOCHS_SCALE}={scale}: every run trains that share of its epochs (100 become {hundred})")


def _fail(message: str, code: int) -> int:
    click.echo(f"optbench: error: {message}", err=True)
    return code


# Where and how runs train: `run`, `sweep`, `tune` and `check` share these (@core_options).
_CORE_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
    click.option(
        "--schedule",
        default="constant",
        show_default=True,
        help="Learning-rate schedule: constant, cosine, linear or step (torch.optim.lr_scheduler).",
    ),
    click.option(
        "--warmup-steps",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Linear learning-rate warm-up over this many steps.",
    ),
]


def core_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_CORE_OPTIONS):
        func = option(func)
    return func


# Options shared by every command that runs something: defined once, applied with @run_options.
_RUN_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--problem", default="linreg", show_default=True, help="Problem name (see `optbench list`)."),
    click.option("--optimizer", default="gd", show_default=True, help="Optimizer name (see `optbench list`)."),
    click.option("--lr", default=None, help="Learning rate, a positive number [default: the optimizer's]."),
    click.option(
        "--epochs", type=click.IntRange(min=1), default=100, show_default=True, help="Passes over the training set."
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=None,
        help="Examples per step [default: the optimizer's; full batch unless it declares one].",
    ),
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed for data, initialisation and shuffling.",
    ),
    click.option(
        "--opt",
        "opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="Optimizer hyperparameter, e.g. --opt momentum=0.9 (repeatable).",
    ),
    click.option(
        "--problem-opt",
        "problem_opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="Problem option, e.g. --problem-opt n=1000 (repeatable).",
    ),
    click.option(
        "--eval-every",
        type=click.IntRange(min=1),
        default=None,
        help="Also record every K steps (step 0 and epoch ends always are).",
    ),
]


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return plugin_option(core_options(func))


def run_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Take the @run_options flags (but --problem and --optimizer) out of ``params`` as
    :func:`optbench.runner.prepare` keywords."""
    from optbench.options import parse_assignments

    return {
        "lr": params.pop("lr"),
        "epochs": params.pop("epochs"),
        "seed": params.pop("seed"),
        "batch_size": params.pop("batch_size"),
        "eval_every": params.pop("eval_every"),
        "problem_options": parse_assignments(params.pop("problem_opts"), "--problem-opt"),
        "hyperparameters": parse_assignments(params.pop("opts"), "--opt"),
        "device": params.pop("device"),
        "schedule": params.pop("schedule"),
        "warmup_steps": params.pop("warmup_steps"),
    }


def _load_plugin_files(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> None:
    from optbench.plugins import load_file

    for path in paths:
        load_file(path)


plugin_option = click.option(
    "--plugin",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    expose_value=False,
    is_eager=True,  # names from the file must exist before --optimizer/--problem are looked up
    callback=_load_plugin_files,
    help="A Python file whose @register_optimizer/@register_problem add names (repeatable).",
)


def _warn(message: str) -> None:
    click.echo(f"optbench: warning: {message}", err=True)


@click.group(cls=OptbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optbench")
def cli() -> None:
    """Compare optimizers on problems people understand.

    \b
    Examples:
      optbench list
      optbench run --problem linreg --optimizer sgd
      optbench run --problem classification --optimizer torch-adam --lr 0.01 --out adam.parquet
    """


def main() -> NoReturn:
    """The ``optbench`` console script: run the command, then leave at once.

    A process that imported torch spends up to a second tearing its modules down when the
    interpreter exits; nothing the command did needs that. So once the command has returned (every
    file it wrote closed), this does what a normal exit does that matters: flush stdout and stderr,
    wait for worker threads and run the ``atexit`` callbacks (joblib's and Dask's shutdowns,
    temporary folders' clean-up), then ends the process with :func:`os._exit`. Only the console
    script exits this way: ``cli`` (what CliRunner and Python callers use) returns or raises
    ``SystemExit`` as click does. An error with ``OPTBENCH_DEBUG=1`` propagates as usual.
    """
    code = cli.main(standalone_mode=False)
    exit_now(code if isinstance(code, int) else EXIT_OK)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after what a normal exit would do, minus the module teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``optbench list | head -1``)
            stream.flush()
    shutdown_threads = getattr(threading, "_shutdown", None)  # what the interpreter calls at exit
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()
    os._exit(code)
