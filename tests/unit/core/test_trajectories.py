"""optbench.core.trajectories: runs trained alone, with a snapshot at every recorded step."""

import torch

from optbench.core.trajectories import parameters, plan, problem_of, trajectories


def test_one_snapshot_per_recorded_row_taken_when_it_was_recorded():
    specs = plan("linreg", ["gd", "torch-adam"], lr=0.1, epochs=5)
    runs = trajectories(specs)
    assert [r.spec.optimizer.name for r in runs] == ["gd", "torch-adam"]
    for run in runs:
        assert len(run.snapshots) == len(run.table) == 6  # step 0 and one per epoch
        start = problem_of(run.spec).params["a"]
        torch.testing.assert_close(run.snapshots[0]["a"], start)  # copies, not the tensor trained on
        assert not torch.equal(run.snapshots[-1]["a"], start)
        torch.testing.assert_close(run.snapshots[-1]["a"], run.problem.params["a"].detach())


def test_a_snapshot_function_chooses_what_is_kept():
    (run,) = trajectories(plan("rosenbrock", ["gd"], lr=1e-3, epochs=3), lambda p: p.loss().item())
    assert run.snapshots == [float(v) for v in run.table["loss"]]


def test_parameters_copies_every_named_tensor():
    problem = problem_of(plan("linreg", ["gd"])[0])
    copy = parameters(problem)
    assert set(copy) == set(problem.params)
    copy["a"].add_(1.0)
    assert not torch.equal(copy["a"], problem.params["a"])
