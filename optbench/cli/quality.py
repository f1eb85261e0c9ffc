"""`baseline` and `check`: quality regression checks."""

from __future__ import annotations

from pathlib import Path

import click

from optbench.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    allow_import_paths_option,
    cli,
    max_epochs_option,
    memory_option,
    plugin_option,
)


@cli.command()
@click.option("--config", type=click.Path(dir_okay=False), required=True, help="The matrix, a TOML file.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Where to write the baseline (.json).")
@allow_import_paths_option
@max_epochs_option
@memory_option
@plugin_option
def baseline(config: str, out: str, allow_import_paths: bool, max_epochs: int) -> None:
    """Run a matrix of problems x optimizers x settings x seeds and store a quality baseline."""

    from optbench.cli import preflight
    from optbench.quality.matrix import load_matrix
    from optbench.results.files import check_writable

    check_writable(out)
    matrix = load_matrix(config, allow_import_paths=allow_import_paths, max_epochs=max_epochs)
    preflight.matrix_sizes(matrix, config)  # a built-in problem's size, before torch loads
    from optbench.quality.regression import make_baseline, write_json

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
@allow_import_paths_option
@max_epochs_option
@memory_option
@plugin_option
def check(
    baseline_path: str,
    config: str | None,
    junit_xml: str | None,
    json_path: str | None,
    device: str,
    allow_import_paths: bool,
    max_epochs: int,
) -> int:
    """Rerun a baseline's matrix; exit 1 if a cell got worse, now diverges or reaches its target later."""

    from optbench.quality.regression import (
        BaselineError,
        format_table,
        load_baseline,
        load_matrix,
        run_check,
        verdicts_json,
        write_json,
    )
    from optbench.quality.regression import (
        junit_xml as to_junit,
    )
    from optbench.results.files import check_writable, write_text
    from optbench.settings.options import validate_device_name

    validate_device_name(device)  # its spelling now; whether the GPU exists once torch is loaded
    checks = {"allow_import_paths": allow_import_paths, "max_epochs": max_epochs}
    stored = load_baseline(baseline_path, **checks)
    if config is not None and load_matrix(config, **checks) != stored["matrix"]:
        raise BaselineError(
            f"baseline {baseline_path!r} was made from another matrix than {config!r}; "
            "rerun `optbench baseline` to update it"
        )
    for flag, path in (("--junit-xml", junit_xml), ("--json", json_path)):
        if path is not None:
            _make_folder(path)  # as pytest does for --junit-xml: CI collects reports from a fresh folder
            check_writable(path, flag=flag)  # before the work: a bad path costs nothing
    from optbench.cli import preflight

    preflight.matrix_sizes(stored["matrix"], baseline_path)  # before torch loads (the device check loads it)
    from optbench.core.spec import validate_device

    verdicts = run_check(stored, device=validate_device(device))
    click.echo(format_table(verdicts))
    if junit_xml:
        write_text(junit_xml, to_junit(verdicts))
    if json_path:
        write_json(verdicts_json(verdicts), json_path)
    return EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK


def _make_folder(path: str) -> None:
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"folder {str(folder)!r} cannot be made for {path!r}: {exc.strerror}") from None
