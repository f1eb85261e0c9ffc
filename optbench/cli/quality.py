"""`baseline` and `check`: quality regression checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from optbench.cli import preflight
from optbench.cli.app import EXIT_FAILED, EXIT_OK, cli, plugin_option
from optbench.options import validate_device_name
from optbench.paths import writable_file
from optbench.registry import OPTIMIZERS, PROBLEMS


def _known_names(matrix: dict[str, Any]) -> None:
    """Every problem and optimizer a matrix names exists (checked before torch loads)."""
    from optbench.regression import expand

    cells = expand(matrix)
    preflight.known(PROBLEMS, sorted({c.problem for c in cells}))
    preflight.known(OPTIMIZERS, sorted({c.optimizer for c in cells}))


def _report_file(path: str, flag: str) -> None:
    """A report CI will collect: its folder is made if need be (as pytest does for --junit-xml)."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"folder {str(folder)!r} cannot be made for {path!r}: {exc.strerror}") from None
    writable_file(path, flag)


@cli.command()
@click.option("--config", type=click.Path(dir_okay=False), required=True, help="The matrix, a TOML file.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the baseline (.json).")
@plugin_option
def baseline(config: str, out: str) -> None:
    """Run a matrix of problems x optimizers x settings x seeds and store a quality baseline."""

    from optbench.regression import load_matrix, make_baseline, write_json

    matrix = load_matrix(config)
    _known_names(matrix)
    if not Path(out).parent.is_dir():
        raise click.BadParameter(f"folder {str(Path(out).parent)!r} does not exist", param_hint="'--out'")
    data = make_baseline(matrix)
    write_json(data, out)
    click.echo(f"baseline of {len(data['cells'])} cells written to {out}")


@cli.command()
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False),
    required=True,
    help="A file written by `optbench baseline`.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also require the baseline to have been made from this matrix.",
)
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the verdicts as JSON.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@plugin_option
def check(baseline_path: str, config: str | None, junit_xml: str | None, json_path: str | None, device: str) -> int:
    """Rerun a baseline's matrix; exit 1 if a cell got worse, now diverges or reaches its target later.

    The folders of --junit-xml and --json are created if they do not exist (as pytest does).
    """

    from optbench.regression import (
        BaselineError,
        format_table,
        load_baseline,
        load_matrix,
        run_check,
        verdicts_json,
        write_json,
    )
    from optbench.regression import (
        junit_xml as to_junit,
    )

    validate_device_name(device)
    stored = load_baseline(baseline_path)  # all of this before torch loads
    if config is not None and load_matrix(config) != stored["matrix"]:
        raise BaselineError(
            f"baseline {baseline_path!r} was made from another matrix than {config!r}; "
            "rerun `optbench baseline` to update it"
        )
    _known_names(stored["matrix"])
    for flag, path in (("--junit-xml", junit_xml), ("--json", json_path)):
        if path is not None:
            _report_file(path, flag)

    from optbench.runner import validate_device

    verdicts = run_check(stored, device=validate_device(device))
    click.echo(format_table(verdicts))
    if junit_xml:
        Path(junit_xml).write_text(to_junit(verdicts))
    if json_path:
        write_json(verdicts_json(verdicts), json_path)
    return EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK
