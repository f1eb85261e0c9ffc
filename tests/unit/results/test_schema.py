"""The results schema: every column's role, stored with the table, read back from parquet and CSV alike."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import optbench
from optbench.reports.data import settings_of
from optbench.results import schema


@pytest.fixture(scope="module")
def swept():
    return optbench.sweep(
        problems=["linreg", "classification"], optimizers=["gd", "torch-sgd"], seeds=range(2), epochs=2
    )


def test_roles_by_construction(swept):
    roles = schema.roles(swept)
    assert {c for c, r in roles.items() if r == schema.IDENTITY} == {"run_key", "seed"}
    assert {"test_loss", "test_accuracy", "batch_runs", "time_s", "loss", "status"} <= {
        c for c, r in roles.items() if r == schema.MEASUREMENT
    }
    assert {"lr", "momentum", "nesterov", "problem_shape", "epochs", "device"} <= set(settings_of(swept))
    assert not {"run_key", "seed", "batch_runs", "time_s", "test_accuracy"} & set(settings_of(swept))


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_roles_come_back_from_a_file(swept, tmp_path, suffix):
    path = optbench.save_results(swept, tmp_path / f"s{suffix}")
    assert schema.roles(optbench.load_results(path)) == schema.roles(swept)
    if suffix == ".parquet":
        stored = json.loads(pq.read_schema(path).metadata[b"optbench"])
        assert stored["schema"] == 1 and stored["roles"]["test_accuracy"] == "measurement"


def test_a_plain_concat_loses_attrs_and_the_rule_still_knows(tmp_path):
    """pd.concat drops attrs that differ; the rule knows the built-in metrics by name, and a plugin's
    metric appended after `message` by its values changing within a run."""
    table = pd.concat(
        [optbench.run("linreg", "gd", epochs=2), optbench.run("classification", "torch-sgd", epochs=2)],
        ignore_index=True,
    )
    assert table.attrs == {} and list(table.columns).index("test_accuracy") > list(table.columns).index("message")
    table["distance"] = table["loss"] * 2  # a plugin problem's metric, appended after `message`
    roles = schema.roles(table)
    assert roles["test_accuracy"] == roles["test_loss"] == roles["distance"] == schema.MEASUREMENT
    assert roles["momentum"] == roles["nesterov"] == schema.SETTING
    path = optbench.save_results(table, tmp_path / "c.csv")  # written in an order the rule reads back
    assert schema.roles(optbench.load_results(path)) == roles


def test_values_without_a_stable_text_get_one():
    class Opaque:
        pass

    def scale(g):
        return g

    assert schema.table_value(scale) == f"{__name__}.test_values_without_a_stable_text_get_one.<locals>.scale"
    assert (
        schema.table_value(Opaque()) == f"<{__name__}.test_values_without_a_stable_text_get_one.<locals>.Opaque object>"
    )
    assert schema.table_value((0.9, 0.999)) == "0.9,0.999" and schema.table_value(None) != schema.table_value(None)
    assert "0x" not in schema.table_value(lambda g: g)
