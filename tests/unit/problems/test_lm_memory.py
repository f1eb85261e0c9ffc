"""lm's memory estimate is honest: at the batch its runs take (the problem's own default of 32 sequences
where neither the run nor the optimizer sets one) and counting what building it holds at its peak, never
below the peak RSS measured while building it, so a request that fits is accepted and one that does not
is refused, before torch loads and when a run is prepared alike."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from optbench.cli import preflight
from optbench.core.spec import prepare
from optbench.errors import InvalidValueError
from optbench.problems import costs
from optbench.registry import PROBLEMS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")

MEASURE = """
import json, sys
import torch  # what a run holds before it builds its problem
from optbench.problems.lm import LanguageModel

def peak():  # this program's peak RSS (ru_maxrss would start from the parent's: it survives fork and exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024

before = peak()
LanguageModel(seed=0, **json.loads(sys.argv[1]))
print(peak() - before)
"""


def built_peak(options: dict) -> int:
    """Bytes the peak RSS of a fresh process grows by while it builds lm with ``options``."""
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(options)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def estimate(options: dict, batch_size: int | None = None) -> int:
    entry = PROBLEMS.declared("lm")
    return costs.lm(**entry.hyperparameters() | options).bytes(batch_size or entry.batch_size)


@pytest.mark.parametrize(
    "options",
    [
        {"n_train": 100_000},  # the defaults: 3x the data at its peak (the uniforms drawn, the output)
        {"n_train": 20_000, "vocab": 64, "order": 2},  # the start states' comparison: a byte per state
        {"corpus": "pydoc", "n_train": 100_000},  # the windows' index, and the text
    ],
    ids=["markov", "4096-states", "pydoc"],
)
def test_the_estimate_is_never_below_a_measured_build(options):
    measured, counted = built_peak(options), estimate(options)
    assert measured <= counted <= 1.6 * measured, (measured, counted)
    assert costs.lm(**PROBLEMS.declared("lm").hyperparameters() | options).building > 0  # counted, not data alone


def test_the_default_batch_is_the_problems_own(monkeypatch):
    """Neither the run nor the optimizer sets a batch: lm's runs take its 32 sequences a step, and so
    does its estimate, before torch loads and when the run is prepared (full batch would count a million
    sequences' activations: 37.8 GiB)."""
    monkeypatch.setenv("OPTBENCH_MAX_MEMORY", "0.1")
    options = {"n_train": "1000000"}
    at_32 = r"would need about 0\.377 GiB \(.*, 0\.00964 GiB a step of 32 rows, 0\.25 GiB more while it is built\)"
    with pytest.raises(InvalidValueError, match=at_32):
        preflight.sizes("lm", options, ["torch-adam"], None, "--problem-opt")
    with pytest.raises(InvalidValueError, match=at_32):
        prepare("lm", "torch-adam", problem_options=options)


def test_a_request_that_fits_is_accepted_and_one_that_does_not_is_refused(monkeypatch):
    """At half of a 23.5 GiB machine (where a full-batch estimate refused a million sequences as 37.8
    GiB): a million sequences fit (about 0.38 GiB; 0.35 GiB measured building them), a hundred million
    do not (about 36.5 GiB)."""
    monkeypatch.setenv("OPTBENCH_MAX_MEMORY", str(23.5 / 2))
    fits, too_big = {"n_train": "1000000"}, {"n_train": "100000000"}
    assert estimate({"n_train": 1_000_000}) < 0.5 * 2**30
    preflight.sizes("lm", fits, ["torch-adam"], None, "--problem-opt")  # before torch: accepted
    spec = prepare("lm", "torch-adam", problem_options=fits)  # when the run is prepared: accepted
    assert spec.batch_size is None and spec.problem.batch_size == 32
    for check in (
        lambda: preflight.sizes("lm", too_big, ["torch-adam"], None, "--problem-opt"),
        lambda: prepare("lm", "torch-adam", problem_options=too_big),
    ):
        with pytest.raises(InvalidValueError, match=r"n_train=100000000: problem 'lm' would need about 36\.\d GiB"):
            check()


def test_a_run_that_sets_full_batch_is_estimated_at_full_batch(monkeypatch):
    """The run's own batch comes first: the estimate follows it (the same rule as the run's)."""
    monkeypatch.setenv("OPTBENCH_MAX_MEMORY", "2")
    options = {"n_train": "1000000"}
    prepare("lm", "torch-adam", problem_options=options)
    with pytest.raises(InvalidValueError, match=r"a step of 1000000 rows\), above the limit of 2 GiB"):
        prepare("lm", "torch-adam", problem_options=options, batch_size=1_000_000)
