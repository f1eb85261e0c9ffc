"""Gradient evaluations: one a step, plus each one an optimizer's closure makes us compute again;
counted against a hand-written loop that counts its closure's calls."""

import torch
from support import two_steps_class

import optbench
from optbench.problems.linreg import LinearRegression
from optbench.registry import OPTIMIZERS


def _hand_counted(optimizer_class, steps, **settings):
    """Gradient evaluations a step in a plain torch loop: the step's own, plus every closure call at
    parameters the optimizer has moved (a call at the step's own parameters is that same gradient)."""
    problem = LinearRegression(seed=0)
    params = list(problem.parameters())
    opt = optimizer_class(params, **settings)
    counts = []
    for _ in range(steps):
        start, again = [p.detach().clone() for p in params], 0

        def closure(start=start):
            nonlocal again
            again += any(not torch.equal(p, s) for p, s in zip(params, start, strict=True))
            opt.zero_grad()
            loss = problem.loss()
            loss.backward()
            return loss

        opt.zero_grad()
        problem.loss().backward()
        opt.step(closure)
        counts.append(1 + again)
    return counts


def test_plain_optimizers_pay_one_evaluation_a_step():
    run = optbench.run("linreg", "gd", epochs=5)
    assert run["grad_evals"].tolist() == run["step"].tolist() == [0, 1, 2, 3, 4, 5]


def test_lbfgs_pays_for_every_closure_call():
    run = optbench.run("linreg", "torch-lbfgs", lr=0.5, epochs=4)
    per_step = run["grad_evals"].diff().iloc[1:].astype(int).tolist()
    assert per_step == _hand_counted(torch.optim.LBFGS, 4, lr=0.5)
    assert per_step[0] > 1  # its line search evaluates again within the first step


def test_an_optimizer_that_calls_the_closure_for_a_second_step_pays_twice():
    with OPTIMIZERS.snapshot():
        two_steps = two_steps_class()  # two SGD steps a step, the second through the closure
        run = optbench.run("linreg", "two-step-sgd", lr=0.05, epochs=6)
    assert run["grad_evals"].tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert _hand_counted(two_steps, 3, lr=0.05) == [2, 2, 2]
    plain = optbench.run("linreg", "torch-sgd", lr=0.05, epochs=12)
    assert run["loss"].iloc[-1] == plain["loss"].iloc[-1]  # two steps a step: the same as twice the steps
