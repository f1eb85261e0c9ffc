"""The ``optbench`` group, its error handling and the options its commands share.

Only click and torch-free modules are imported at the top, so ``optbench --help`` is instant;
torch, pandas and the registries load inside the commands. The library raises typed exceptions
(:mod:`optbench.errors`); :class:`OptbenchGroup` turns them into one line and an exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from optbench import DOCS_URL, __version__
from optbench.errors import EXIT_USAGE, OptbenchError
from optbench.errors import EXIT_WRITE as EXIT_WRITE  # 74: results could not be written (re-exported)
from optbench.private_apis import one_arena, run_exit_handlers

# 0 ok, 1 some runs errored or a check failed, 2 bad input, 70 an internal error, 74 a write failed
# after the work, 130 interrupted (Ctrl-C).
EXIT_OK, EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 70, 130


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
            given = sys.argv[1:] if args is None else list(args)
            bad = next((a for a in given if isinstance(a, str) and "\x00" in a), None)
            if bad is not None:  # no path, name or number holds one; os calls would raise on it
                raise click.UsageError(f"an argument holds a NUL character: {bad!r}")
            _warn_if_scaled()
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            code = EXIT_USAGE
        except click.ClickException as exc:
            code = _fail(exc.format_message(), exc.exit_code)
        except OptbenchError as exc:
            code = _fail(str(exc), exc.exit_code)
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
    from optbench.settings.options import EPOCHS_SCALE, scaled_epochs

    scale = os.environ.get(EPOCHS_SCALE, "").strip()
    if scale:
        hundred = scaled_epochs(100)  # first: a bad value is the only line
        _warn(f"{EPOCHS_SCALE}={scale}: every run trains that share of its epochs (100 become {hundred})")


def _fail(message: str, code: int) -> int:
    click.echo(f"optbench: error: {one_line(message)}", err=True)
    return code


def one_line(message: str) -> str:
    r"""``message`` as one printable line, whatever a bad value in it held: each character that is not
    printable (all that ``str.splitlines`` splits on: \n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029;
    any other control; a lone surrogate from an undecodable file name) is shown as Python escapes it.

    >>> print(one_line("n = '\f' is not a number;\u2028valid: 1, 2"))
    n = '\x0c' is not a number;\u2028valid: 1, 2
    """
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


def checked(check: Callable[..., Any], label: str, **bounds: Any) -> Callable[..., Any]:
    """A click callback running one of :mod:`optbench.settings.validate`'s checks on a flag's text, so a flag
    and the same key in a TOML file or baseline get the same check and the same message."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else check(value, label, **bounds)

    return callback


def whole_number(value: Any, label: str, minimum: int = 1) -> int:
    from optbench.settings.validate import whole

    return whole(value, label, minimum=minimum)


def seed_number(value: Any, label: str) -> int:
    from optbench.settings.validate import seed

    return seed(value, label)


def whole_option(name: str, minimum: int = 1, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An integer flag checked by :func:`optbench.settings.validate.whole` (``--epochs``, ``--jobs``, ...)."""
    return click.option(name, callback=checked(whole_number, name, minimum=minimum), metavar="N", **kwargs)


max_epochs_option = click.option(
    "--max-epochs",
    callback=checked(whole_number, "--max-epochs"),
    default="100000",
    show_default=True,
    metavar="N",
    help="Refuse runs of more epochs than this (a guard against a typo that would run for days).",
)
allow_import_paths_option = click.option(
    "--allow-import-paths",
    is_flag=True,
    help="Let names in the file be import paths (package.module:Name), which imports those modules.",
)


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """A flag for every run setting (:data:`optbench.settings.declared.SETTINGS`), checked as the
    same key in a file is: ``--epochs``, ``--batch-size``, ``--schedule``, ``--warmup-steps``, ..."""
    from optbench.settings.declared import SETTINGS

    for setting in reversed(SETTINGS):
        func = click.option(
            setting.flag,
            setting.name,
            callback=_checked_setting(setting),
            default=None if setting.default is None else str(setting.default),
            show_default=setting.default is not None,
            metavar=setting.metavar,
            help=setting.help,
        )(func)
    return func


def _checked_setting(setting: Any) -> Callable[..., Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else setting.check(value, setting.flag)

    return callback


def pop_settings(params: dict[str, Any], max_epochs: int | None = None) -> dict[str, Any]:
    """Take the run settings' flags out of ``params`` (each checked by its flag's callback already;
    ``--epochs`` against ``max_epochs`` when given)."""
    from optbench.settings.declared import NAMES
    from optbench.settings.validate import epochs

    values = {name: params.pop(name) for name in NAMES}
    if max_epochs is not None:
        values["epochs"] = epochs(values["epochs"], "--epochs", max_epochs)
    return values


# Options shared by every command that runs something: defined once, applied with @run_options.
_RUN_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--problem", default="linreg", show_default=True, help="Problem name (see `optbench list`)."),
    click.option("--optimizer", default="gd", show_default=True, help="Optimizer name (see `optbench list`)."),
    click.option("--lr", default=None, help="Learning rate, a positive number [default: the optimizer's]."),
    max_epochs_option,
    click.option(
        "--seed",
        callback=checked(seed_number, "--seed"),
        default="0",
        show_default=True,
        metavar="N",
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
]


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return memory_option(threads_option(plugin_option(setting_options(func))))


def run_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Take the @run_options flags (but --problem and --optimizer) out of ``params`` as
    :func:`optbench.core.runner.prepare` keywords."""
    from optbench.settings.options import parse_assignments

    return {
        "lr": params.pop("lr"),
        "seed": params.pop("seed"),
        "problem_options": parse_assignments(params.pop("problem_opts"), "--problem-opt"),
        "hyperparameters": parse_assignments(params.pop("opts"), "--opt"),
        **pop_settings(params, params.pop("max_epochs")),
    }


def _load_plugin_files(ctx: click.Context, param: click.Parameter, paths: tuple[str, ...]) -> None:
    from optbench.registry.plugins import load_file

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


MAX_THREADS = 4096


def _set_threads(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--threads N`` is ``OPTBENCH_THREADS=N`` for this command (and the processes it starts), put back
    as it was when the command ends (:mod:`optbench.core.threads` reads it)."""
    if value is None:
        return
    from optbench.settings.validate import whole

    count = whole(value, "--threads", minimum=1, maximum=MAX_THREADS, example="2")
    name, before = "OPTBENCH_THREADS", os.environ.get("OPTBENCH_THREADS")
    os.environ[name] = str(count)
    ctx.call_on_close(lambda: os.environ.pop(name, None) if before is None else os.environ.update({name: before}))


threads_option = click.option(
    "--threads",
    metavar="N",
    expose_value=False,
    callback=_set_threads,
    help="torch's intra-op threads for training [default: 1 for small work, every core for large tensors; "
    "OPTBENCH_THREADS]. Several cores for a sweep: --jobs.",
)


def _set_memory(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--max-memory GIB`` is ``OPTBENCH_MAX_MEMORY=GIB`` for this command and the processes it starts
    (:func:`optbench.settings.validate.memory` reads it), put back when the command ends."""
    if value is None:
        return
    from optbench.settings.validate import MAX_MEMORY, memory_gib

    memory_gib(value, "--max-memory")
    before = os.environ.get(MAX_MEMORY)
    os.environ[MAX_MEMORY] = value.strip()
    ctx.call_on_close(
        lambda: os.environ.pop(MAX_MEMORY, None) if before is None else os.environ.update({MAX_MEMORY: before})
    )


memory_option = click.option(
    "--max-memory",
    metavar="GIB",
    expose_value=False,
    callback=_set_memory,
    help="Refuse, before building it, a run whose problem options are estimated to need more memory than this "
    "[default: half of this machine's memory; OPTBENCH_MAX_MEMORY].",
)


def _warn(message: str) -> None:
    click.echo(f"optbench: warning: {one_line(message)}", err=True)


@click.group(
    cls=OptbenchGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"Documentation: {DOCS_URL} (and docs/ in the source).",
)
@click.version_option(version=__version__, prog_name="optbench")  # the one version source
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
    # pyarrow's default pool (mimalloc) keeps what a table read or write freed; the system allocator
    # hands it back, so a sweep's peak memory is its largest table, not the sum of them. Only for
    # this process (and its workers), and only where the user chose no pool.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    one_arena()
    code = cli.main(standalone_mode=False)
    exit_now(code if isinstance(code, int) else EXIT_OK)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after what a normal exit would do, minus the module teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``optbench list | head -1``)
            stream.flush()
    run_exit_handlers()  # worker threads, then the atexit callbacks
    os._exit(code)
