"""fast.ai lesson 2 reproduced: linreg + gd, lr 0.1, 100 steps from a = (-1, 1)."""

import statistics

import pytest
import torch

import optbench
from optbench.problems.linreg import LinearRegression


@pytest.fixture(scope="module")
def lesson():
    return optbench.run(problem="linreg", optimizer="gd", lr=0.1, epochs=100, seed=0)


def test_lesson_trajectory(lesson):
    assert list(lesson["step"]) == list(range(101))  # one epoch is one full-batch step
    first, last = lesson["loss"].iloc[0], lesson["loss"].iloc[-1]
    optimum = lesson["optimum"].iloc[0]
    assert 3 < first < 12  # the lesson printed 8.96; E[loss] at a = (-1, 1) is 23/3
    assert abs(last - optimum) / optimum < 0.01  # within 1% of f* after 100 steps
    assert lesson["loss"].is_monotonic_decreasing
    assert (lesson["status"] == "ok").all()


def test_initial_loss_matches_its_expectation():
    # At a = (-1, 1) the residual is 4u + 1 + e: E = 16/3 + Var(e) + 1.5^2 = 23/3.
    # The per-point sd of the squared residual is 8.57, so over 200 seeds x 100 points SE = 0.06.
    mean = statistics.fmean(LinearRegression(seed=s).loss().item() for s in range(200))
    assert mean == pytest.approx(23 / 3, abs=0.25)


def test_optimum_is_the_noise_variance():
    # f* is the residual variance of U(0, 1) noise, 1/12, less 2 of n = 100 degrees of freedom.
    # The sd of one sample variance is sqrt((1/80 - 1/144) / 100) = 0.0075.
    assert LinearRegression(seed=0).optimum == pytest.approx(1 / 12, abs=0.03)
    mean = statistics.fmean(LinearRegression(seed=s).optimum for s in range(100))
    assert mean == pytest.approx(0.98 / 12, abs=0.003)


def test_optimum_is_the_least_squares_loss():
    p = LinearRegression(seed=3, dtype="float64")
    x, y = p.x, p.y
    # normal equations, solved independently of lstsq
    a_star = torch.linalg.solve(x.T @ x, x.T @ y)
    assert p.optimum == pytest.approx(float(((x @ a_star - y) ** 2).mean()), rel=1e-10)


def test_gd_converges_to_the_closed_form_solution():
    """After 1,000 steps the float64 iterate equals the least-squares solution to 1e-9."""
    problem = LinearRegression(seed=1, dtype="float64")
    opt = optbench.get_optimizer("gd").target(problem.parameters(), lr=0.1)
    for _ in range(1000):
        opt.zero_grad()
        problem.loss().backward()
        opt.step()
    # slowest eigenvalue of the Hessian 2x'x/n is ~2/3: error shrinks by (1 - 0.1 * 2/3)^1000 ~ 1e-30
    torch.testing.assert_close(problem.a.detach(), problem.solution, rtol=0, atol=1e-9)


def test_runner_final_loss_equals_a_hand_written_loop():
    """The runner records exactly what the lesson's own loop computes."""
    df = optbench.run("linreg", "gd", lr=0.1, epochs=100, seed=0)
    p = LinearRegression(seed=0)
    losses = []
    for _ in range(100):
        loss = ((p.x @ p.a - p.y) ** 2).mean()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            p.a.sub_(0.1 * p.a.grad)
            p.a.grad.zero_()
    losses.append(((p.x @ p.a - p.y) ** 2).mean().item())
    assert df["loss"].tolist() == losses
