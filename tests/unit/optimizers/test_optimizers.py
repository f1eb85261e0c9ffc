"""Built-in optimizers against their references: torch.optim itself and hand-written loops."""

import pytest
import torch

import optbench
from optbench.errors import InvalidValueError
from optbench.problems.classification import Classification
from optbench.problems.linreg import LinearRegression

ALL = [n for n in optbench.list_optimizers() if optbench.get_optimizer(n).source == "built-in"]


def test_the_design_names_are_registered():
    for name in [
        "gd",
        "sgd",
        "torch-sgd",
        "torch-adam",
        "torch-adamw",
        "torch-rmsprop",
        "torch-adagrad",
        "torch-lbfgs",
    ]:
        assert name in ALL


@pytest.mark.parametrize("problem", ["linreg", "classification"])
@pytest.mark.parametrize("optimizer", ALL)
def test_every_optimizer_lowers_the_loss_with_its_defaults(optimizer, problem):
    if optbench.get_optimizer(optimizer).roles:  # Muon takes the matrices only
        if problem == "linreg":  # whose one parameter is a vector: refused in one line
            with pytest.raises(
                InvalidValueError, match="takes matrix parameters only; problem 'linreg' also has vector"
            ):
                optbench.run(problem, optimizer, epochs=1)
            return
        optimizer = f"{optimizer}+torch-adamw"
    df = optbench.run(problem, optimizer, epochs=100)
    assert (df["status"] == "ok").all()
    assert df["loss"].iloc[-1] < 0.99 * df["loss"].iloc[0]  # torch.optim defaults are cautious (lr 1e-3)


# Adadelta's effective step is tiny at first (its lr rescales a unit-free update): it needs a large lr.
TUNED_LR = {"torch-adadelta": 3.0, "torch-lbfgs": 1.0}


@pytest.mark.parametrize("optimizer", ALL)
def test_every_optimizer_learns_the_classification_problem(optimizer):
    """At lr 0.1 (or a stated one) each reaches >= 90% test accuracy in 100 epochs."""
    opts = {}
    if optbench.get_optimizer(optimizer).roles:  # Muon on the weight matrix, AdamW (same lr) on the bias
        optimizer, opts = f"{optimizer}+torch-adamw", {"torch-adamw.lr": 0.1}
    df = optbench.run("classification", optimizer, lr=TUNED_LR.get(optimizer, 0.1), **opts)
    assert df["test_accuracy"].iloc[-1] >= 0.9


def test_gd_with_defaults_reaches_90_percent_test_accuracy():
    df = optbench.run("classification", "gd")
    assert df["test_accuracy"].iloc[-1] >= 0.9
    assert df["test_loss"].iloc[-1] < df["test_loss"].iloc[0] / 5


def test_gd_matches_torch_optim_sgd():
    """Same update rule: the hand-written optimizer and torch.optim.SGD agree to float rounding."""
    ours = optbench.run("classification", "gd", lr=0.1, epochs=50)
    theirs = optbench.run("classification", "torch-sgd", lr=0.1, epochs=50)
    torch.testing.assert_close(
        torch.tensor(ours["loss"].values), torch.tensor(theirs["loss"].values), rtol=1e-5, atol=0
    )


def test_torch_sgd_hyperparameters_pass_through():
    """torch-sgd with momentum and nesterov equals torch.optim.SGD driven by hand, bit for bit."""
    df = optbench.run("linreg", "torch-sgd", lr=0.05, epochs=40, momentum=0.9, nesterov=True, weight_decay=0.01)
    assert df[["momentum", "nesterov", "weight_decay"]].iloc[0].tolist() == [0.9, True, 0.01]
    p = LinearRegression(seed=0)
    opt = torch.optim.SGD(p.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    expected = [p.loss().item()]
    for _ in range(40):
        opt.zero_grad()
        p.loss().backward()
        opt.step()
        expected.append(p.loss().item())
    assert df["loss"].tolist() == expected


def test_sgd_is_minibatch_sgd_reshuffled_every_epoch():
    """`sgd` equals a hand-written minibatch loop: batches of 10 from a fresh permutation each epoch."""
    df = optbench.run("linreg", "sgd", lr=0.1, epochs=5, seed=7)
    assert df["batch_size"].iloc[0] == 10
    assert df["step"].tolist() == [0, 10, 20, 30, 40, 50]
    p = LinearRegression(seed=7)
    gen = torch.Generator().manual_seed(7)
    expected = [p.loss().item()]
    orders = []
    for _ in range(5):
        order = torch.randperm(100, generator=gen)
        orders.append(order)
        for idx in order.split(10):
            loss = ((p.x[idx] @ p.a - p.y[idx]) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                p.a.sub_(0.1 * p.a.grad)
                p.a.grad.zero_()
        expected.append(p.loss().item())
    assert df["loss"].tolist() == expected
    assert not torch.equal(orders[0], orders[1])  # reshuffled, not one fixed order


def test_batch_size_is_a_property_of_the_run():
    df = optbench.run("linreg", "torch-adam", lr=0.05, epochs=3, batch_size=25)
    assert df["step"].tolist() == [0, 4, 8, 12]
    assert df["epoch"].tolist() == [0, 1, 2, 3]
    uneven = optbench.run("linreg", "gd", epochs=2, batch_size=30)  # 30+30+30+10: the last batch is kept
    assert uneven["step"].tolist() == [0, 4, 8]


def test_lbfgs_runs_with_a_closure_and_reaches_the_optimum():
    df = optbench.run("linreg", "torch-lbfgs", epochs=5)
    assert df["loss"].iloc[-1] == pytest.approx(df["optimum"].iloc[0], rel=1e-4)
    strong = optbench.run("classification", "torch-lbfgs", epochs=5, line_search_fn="strong_wolfe")
    assert strong["line_search_fn"].iloc[0] == "strong_wolfe"
    assert strong["loss"].iloc[-1] < 0.1 * strong["loss"].iloc[0]


def test_adam_matches_torch_optim_adam_on_the_mlp():
    df = optbench.run("classification", "torch-adam", lr=0.01, epochs=20, problem_options={"model": "mlp"})
    p = Classification(seed=0, model="mlp")
    opt = torch.optim.Adam(p.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        p.loss().backward()
        opt.step()
    assert df["loss"].iloc[-1] == p.loss().item()
    assert df["test_accuracy"].iloc[-1] == p.metrics()["test_accuracy"].item()


def _stack_of_views(rows: int, groups: int, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A (rows * groups, 3) stacked tensor and the leaf views of its row blocks, as the core makes them."""
    whole = torch.randn(rows * groups, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return whole, [whole[g * rows : (g + 1) * rows] for g in range(groups)]


def test_gd_over_row_views_of_a_stack_updates_each_with_its_own_lr():
    """A sweep's settings are param groups over row blocks of one stacked tensor; gd updates the stack in
    one operation (optbench.optimizers.rows), which must equal p - lr * g for each block, bit for bit."""
    from optbench.optimizers.gd import GradientDescent

    _, views = _stack_of_views(rows=4, groups=5)
    grad, _ = _stack_of_views(rows=4, groups=5, seed=1)
    lrs = [0.3, 1e-3, 0.07, 2.0, 0.5]
    opt = GradientDescent([{"params": [v], "lr": lr} for v, lr in zip(views, lrs, strict=True)])
    for v, g in zip(views, grad.split(4), strict=True):
        v.grad = g
    expected = [v - g * lr for v, g, lr in zip(views, grad.split(4), lrs, strict=True)]
    opt.step()
    assert opt._stacked.rows.attach([v.grad for v in views])  # the one-operation path was taken
    assert all(torch.equal(v, e) for v, e in zip(views, expected, strict=True))

    opt.param_groups[2]["lr"] = 0.25  # as a scheduler does: the per-row rates follow
    expected = [v - g * group["lr"] for v, g, group in zip(views, grad.split(4), opt.param_groups, strict=True)]
    opt.step()
    assert all(torch.equal(v, e) for v, e in zip(views, expected, strict=True))

    views[3].grad = torch.ones(4, 3, dtype=torch.float64)  # a gradient that is no longer a row of the stack
    expected = [v - v.grad * group["lr"] for v, group in zip(views, opt.param_groups, strict=True)]
    opt.step()
    assert not opt._stacked.rows.attach([v.grad for v in views])  # so each view was updated on its own
    assert all(torch.equal(v, e) for v, e in zip(views, expected, strict=True))

    views[3].grad = grad[12:16]  # back in the stack, and a parameter moved out of it: noticed too
    views[2].data = torch.zeros(4, 3, dtype=torch.float64)
    expected = [v - v.grad * group["lr"] for v, group in zip(views, opt.param_groups, strict=True)]
    opt.step()
    assert all(torch.equal(v, e) for v, e in zip(views, expected, strict=True))


def test_gd_updates_scalar_parameters_and_a_models_own_ones():
    """No stack there: every tensor its own update, as torch.optim.SGD does (a scalar has no rows)."""
    from optbench.optimizers.gd import GradientDescent

    m, b = torch.zeros((), requires_grad=True), torch.zeros((), requires_grad=True)
    torch.manual_seed(0)  # the model's init: unseeded, about 1 in 450 global RNG states left it 1.2e-7 past atol
    model = torch.nn.Linear(3, 2)
    reference = torch.nn.Linear(3, 2)
    reference.load_state_dict(model.state_dict())
    ours = GradientDescent([m, b, *model.parameters()], lr=0.1)
    theirs = torch.optim.SGD(reference.parameters(), lr=0.1, foreach=False)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        ours.zero_grad(), theirs.zero_grad()
        ((m - 1) ** 2 + (b - 2) ** 2 + model(x).square().sum()).backward()
        reference(x).square().sum().backward()
        ours.step(), theirs.step()
    assert (m.item(), b.item()) == pytest.approx((1 - 0.8**3, 2 * (1 - 0.8**3)))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)  # SGD adds with alpha: a rounding apart


def test_row_tiling_refuses_what_is_not_one_block_in_order():
    from optbench.optimizers.rows import tile

    whole, views = _stack_of_views(rows=2, groups=3)
    assert tile(views).data_ptr() == whole.data_ptr() and tile(views).shape == whole.shape
    assert tile(views[::-1]) is None  # out of order
    assert tile([views[0], views[2]]) is None  # a gap
    assert tile([torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)]) is None
    assert tile([whole.t()[:, :2]]) is None  # not contiguous
    assert tile([whole.half()[:2], whole.half()[2:]]) is None  # half precision rounds a scalar differently
    assert tile([whole[0:3], whole[3]]) is None  # a row that is not a block of rows


def test_stacked_descent_updates_only_what_is_rows_of_a_stack():
    """gd's fast path on its own: True and the plain update's bits on row views of one stacked tensor;
    False, with nothing touched, where there is no stack to update at once."""
    from optbench.optimizers.rows import StackedDescent

    whole, views = _stack_of_views(rows=3, groups=4)
    grad, _ = _stack_of_views(rows=3, groups=4, seed=1)
    for v, g in zip(views, grad.split(3), strict=True):
        v.grad = g
    lrs = [0.1, 0.2, 0.3, 0.4]
    expected = torch.cat([v - lr * v.grad for v, lr in zip(views, lrs, strict=True)])
    step = StackedDescent()
    assert step([{"params": [v], "lr": lr} for v, lr in zip(views, lrs, strict=True)])
    assert torch.equal(whole, expected)

    model = torch.nn.Linear(3, 2)  # a model's own tensors: each its own storage
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    assert not StackedDescent()([{"params": list(model.parameters()), "lr": 0.1}])
    assert not StackedDescent()([{"params": [views[0]], "lr": 0.1}])  # one tensor: nothing to gain
    assert not StackedDescent()([{"params": views[:2], "lr": torch.tensor(0.1)}])  # a tensor lr
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
