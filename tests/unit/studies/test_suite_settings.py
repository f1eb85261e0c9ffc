"""A bench suite says its run settings (schedule, warm-up, ...) once for every problem or per problem,
checked as the flags are, and the runs record them."""

import pytest

from optbench.errors import InvalidValueError
from optbench.studies.bench import load_suite

SUITE = """
lr = "0.01,0.1"
tune_seeds = "0"
eval_seeds = "100-105"
schedule = "cosine"
warmup_steps = 2
[[problems]]
problem = "linreg"
epochs = 5
[[problems]]
problem = "rosenbrock"
epochs = 5
schedule = "linear"
"""


def test_a_suite_gives_run_settings_to_every_problem_and_a_problem_overrides_them(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    linreg, rosenbrock = load_suite(str(path)).entries
    assert linreg.settings == {"eval_every": None, "records": "all", "schedule": "cosine", "warmup_steps": 2}
    assert rosenbrock.settings["schedule"] == "linear" and rosenbrock.settings["warmup_steps"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("warmup_steps = -1\n", "s.toml': problems[0]: warmup_steps -1 is out of range"),
        ('schedule = "wavy"\n', "s.toml': problems[0]: schedule 'wavy' is not valid"),
        ('device = "cuda"\n', "unknown key 'device'"),
    ],
)
def test_a_suites_bad_run_setting_is_one_line_naming_it(tmp_path, extra, message):
    path = tmp_path / "s.toml"
    path.write_text(extra + SUITE.replace('schedule = "cosine"\n', "").replace("warmup_steps = 2\n", ""))
    with pytest.raises(InvalidValueError) as caught:
        load_suite(str(path))
    assert message in str(caught.value)
