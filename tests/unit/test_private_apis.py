"""optbench.private_apis: each wrapped private API does what its callers rely on, and survives its absence."""

import subprocess
import sys

import torch

from optbench import private_apis


def test_version_counts_in_place_changes():
    t = torch.zeros(3)
    before = private_apis.version(t)
    t.add_(1)
    assert private_apis.version(t) == before + 1
    _ = t + 1  # out of place: no change
    assert private_apis.version(t) == before + 1


def test_add_param_group_unguarded_is_torchs_method(monkeypatch):
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    private_apis.add_param_group_unguarded(opt, {"params": [q], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.param_groups[1]["params"] == [q]

    calls = []

    def plain(self, group):  # a torch whose method has no wrapper: the method itself is called
        calls.append(group)

    monkeypatch.setattr(torch.optim.Optimizer, "add_param_group", plain)
    private_apis.add_param_group_unguarded(opt, {"params": []})
    assert calls == [{"params": []}]


SCRIPT = """
import atexit, os, threading, time
from optbench import private_apis

def work():
    time.sleep(0.2)
    print("thread", flush=True)

threading.Thread(target=work).start()
atexit.register(lambda: print("atexit", flush=True))
private_apis.run_exit_handlers()
print("then os._exit", flush=True)
os._exit(3)
"""


def test_run_exit_handlers_joins_threads_then_runs_atexit_callbacks():
    """In a process of its own: it waits for every thread and empties the atexit list, as an exit does."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["thread", "atexit", "then", "os._exit"]
