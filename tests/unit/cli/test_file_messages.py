"""Every message about a file names the file and the key; every message about a path says what is wrong with
it; a composite name in a file means the same optimizer however it is spaced."""

import pandas as pd
import pytest
from support import invoke

from optbench.settings.config import load_grid_file

SUITE = 'lr = "0.05,0.1"\ntune_seeds = "0"\neval_seeds = "10-17"\n{top}\n[[problems]]\nproblem = "linreg"\nepochs = 2\n'


@pytest.mark.parametrize(
    ("top", "tables", "expected"),
    [
        ("", '[spaces.torch-adam]\nfoo = "0.1:0.2"\n', "[spaces.torch-adam] foo: optimizer 'torch-adam' takes no"),
        ("", '[spaces.torch-adamm]\nlr = "log:1e-3:1"\n', "[spaces.torch-adamm] is not one of this bench's"),
        ("", '[spaces.torch-adam]\nlr = "0:1e308"\n', "spaces.torch-adam: lr = '0:1e308' is out of range"),
        ("", '[spaces.torch-adam]\neps = "-1e31:1"\n', "its ends must lie within +-1e+30"),
        ('search = "lr"', '[spaces.torch-adam]\nlr = "log:1e-3:1"\n', '[spaces.torch-adam] is not used: search = "lr"'),
        ('trials = "8"', "", "trials '8' is not a whole number"),
        ("", "options = { bogus = 1 }\n", "problems[0]: options bogus: problem 'linreg' takes no setting 'bogus'"),
    ],
)
def test_a_suite_message_names_the_file_and_the_key(tmp_path, top, tables, expected):
    path = tmp_path / "mine.toml"
    path.write_text(SUITE.format(top=top) + tables)
    result = invoke(
        "bench", "--optimizer", "torch-nadam", "--baselines", "torch-adam", "--suite", path, "--out", tmp_path
    )
    assert result.exit_code == 2, result.output
    assert f"optbench: error: suite {str(path)!r}" in result.output and expected in result.output, result.output


def test_lr_from_names_the_file_the_column_and_what_is_wrong_with_a_path(tmp_path):
    tuned = tmp_path / "t.parquet"
    args = ["--optimizer", "gd,torch-adam", "--lr", "0.01,0.1", "--epochs", "2", "--tune-seeds", "0"]
    assert invoke("tune", *args, "--eval-seeds", "5", "--out", tuned).exit_code == 0
    table = pd.read_parquet(tuned)
    table.loc[table["optimizer"] == "gd", "lr"] = float("inf")
    table.to_parquet(tmp_path / "inf.parquet")
    cases = {
        tmp_path / "inf.parquet": f"--lr-from {str(tmp_path / 'inf.parquet')!r}: column lr of 'gd' on 'linreg' inf "
        "is out of range",
        tmp_path / "none.parquet": "does not exist; expected a tune results file or a bench folder",
        tmp_path: "is a folder without results.parquet",
    }
    for source, expected in cases.items():
        result = invoke("animate", "--optimizer", "gd,torch-adam", "--lr-from", source, "--out", tmp_path / "a.gif")
        assert result.exit_code == 2 and expected in result.output, result.output
    assert invoke("animate", "--optimizer", "gd", "--lr-from", tuned, "--out", tmp_path / "a.gif").exit_code == 0


def test_a_sweep_file_table_matches_a_composite_however_spaced(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'problems = "linreg"\noptimizers = ["torch-muon + torch-adamw", "gd"]\n'
        '[opt."torch-muon+torch-adamw"]\n"torch-adamw.weight_decay" = [0.0, 0.1]\n'
    )
    grid, _ = load_grid_file(path)
    assert grid.optimizers == ["torch-muon+torch-adamw", "gd"]
    assert grid.opt == {"torch-muon+torch-adamw": {"torch-adamw.weight_decay": [0.0, 0.1]}}
    path.write_text(path.read_text() + '[opt."torch-muon +torch-adamw"]\nlr = [0.1]\n')
    result = invoke("sweep", "--config", path, "--out", tmp_path / "o.parquet")
    assert result.exit_code == 2 and "is [opt.torch-muon+torch-adamw] again; give its settings once" in result.output
