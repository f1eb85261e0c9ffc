"""The problem suite: every f* against an independent reference, theory, seeds, vmap, and learning."""

import math

import pytest
import torch
from torch.func import vmap

import optbench
from optbench.errors import InvalidValueError
from optbench.problems import landscapes
from optbench.problems.digits import DigitsMLP
from optbench.problems.linear_models import LogisticRegression, Ridge, logreg_optimum
from optbench.problems.logreg_optima import OPTIMA
from optbench.problems.matrix_factorization import MatrixFactorization
from optbench.problems.quadratic import Quadratic
from optbench.registry import PROBLEMS

F64 = torch.float64
LANDSCAPES = [landscapes.Rosenbrock, landscapes.Beale, landscapes.Himmelblau, landscapes.Rastrigin]
# Every new problem with options that keep it small: (name, options).
SUITE = [
    ("quadratic", {"dim": 5, "noise": 0.5, "n": 20}),
    ("rosenbrock", {"jitter": 0.1}),
    ("beale", {"jitter": 0.1}),
    ("himmelblau", {"jitter": 0.1}),
    ("rastrigin", {"dim": 3, "jitter": 0.1}),
    ("logreg", {}),
    ("logreg", {"dataset": "breast_cancer"}),
    ("ridge", {}),
    ("digits-mlp", {"hidden": 16}),
    ("digits-cnn", {"channels": 4}),
    ("matrix-factorization", {"rows": 12, "cols": 9, "true_rank": 3, "rank": 2}),
    ("lm", {"n_train": 16, "n_val": 8, "n_embd": 16}),
]
SUITE_IDS = [f"{name}-{'-'.join(map(str, options.values()))}".strip("-") for name, options in SUITE]


def build(name, seed=0, **options):
    return PROBLEMS.get(name).target(seed=seed, **options)


def gradient(problem, params=None):
    """The gradient of the full loss at ``params`` (default: the problem's own), as one flat tensor."""
    params = {k: v.detach().clone().requires_grad_() for k, v in (params or problem.params).items()}
    loss = problem.loss_fn(params, problem.data)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(params.values()))])


# --- f* against independent references


@pytest.mark.parametrize(("dim", "condition", "seed"), [(2, 1.0, 0), (10, 100.0, 1), (30, 1e4, 2)])
def test_quadratic_optimum_and_spectrum(dim, condition, seed):
    """The implementation inverts A through its eigenbasis; here: a dense solve and eigvalsh of the data."""
    p = Quadratic(seed=seed, dim=dim, condition=condition, dtype="float64")
    a, b = p.data["A"], p.data["b"]
    x_star = torch.linalg.solve(a, b)
    assert p.optimum == pytest.approx(float(p.loss_fn({"x": x_star}, p.data)), rel=1e-9, abs=1e-12)
    assert p.optimum == pytest.approx(float(-0.5 * b @ x_star), rel=1e-9)
    assert gradient(p, {"x": x_star}).norm() < 1e-9
    expected = torch.logspace(-math.log10(condition), 0, dim, dtype=F64)
    torch.testing.assert_close(torch.linalg.eigvalsh(a), expected, rtol=1e-10, atol=1e-12)


def test_quadratic_gradient_noise_is_a_function_of_the_rows():
    p = Quadratic(seed=0, dim=4, noise=2.0, n=500, dtype="float64")
    z = p.data["z"]
    torch.testing.assert_close(z.sum(0), torch.zeros(4, dtype=F64), atol=1e-10, rtol=0)  # the full loss is exact
    assert z.std() == pytest.approx(2.0, rel=0.05)
    idx = torch.tensor([3, 7, 11])
    x = p.params["x"].detach().clone().requires_grad_()
    (batch_grad,) = torch.autograd.grad(p.loss_fn({"x": x}, p.data, idx), [x])
    true_grad = p.data["A"] @ x.detach() - p.data["b"]
    torch.testing.assert_close(batch_grad, true_grad - z[idx].mean(0))
    noiseless = Quadratic(seed=0, dim=4, n=500, dtype="float64")
    with torch.no_grad():
        assert float(p.loss_fn(p.params, p.data, torch.arange(500))) == pytest.approx(float(p.loss()), abs=1e-10)
        assert float(noiseless.loss_fn(noiseless.params, noiseless.data, idx)) == float(noiseless.loss())


def test_gd_at_one_over_l_contracts_as_the_theory_says():
    """gd with lr = 1/L (= 1 here) shrinks the error along eigenvalue lam by (1 - lam/L) per step.

    The slowest direction (lam = mu = L / condition) takes over, so the suboptimality f - f*, a sum
    of lam_i c_i^2 (1 - lam_i/L)^(2k), contracts by (1 - 1/condition)^2 = 0.81 per step (and not by
    1 - 1/condition = 0.9, the rate of the distance along that direction). Measured over steps
    60 to 100 (the second slowest direction has faded by 0.936^60); float64, so the suboptimality
    (about 1e-11 at step 100) is far above rounding.
    """
    condition = 10.0
    df = optbench.run(
        "quadratic",
        "gd",
        lr=1.0,
        epochs=100,
        problem_options={"dim": 10, "condition": condition, "dtype": "float64"},
    )
    gap = (df["loss"] - df["optimum"]).to_numpy()
    assert (df["step"].to_numpy() == range(101)).all()
    measured = (gap[100] / gap[60]) ** (1 / 40)
    theory = (1 - 1 / condition) ** 2
    assert measured == pytest.approx(theory, rel=0.01)


@pytest.mark.parametrize("cls", LANDSCAPES)
def test_landscape_minima(cls):
    """The loss at every known minimizer is f* = 0 and the gradient vanishes there; minima and start in bounds."""
    p = cls(dtype="float64") if cls is not landscapes.Rastrigin else cls(dim=3, dtype="float64")
    assert p.optimum == 0.0 and p.n_train == 1 and p.data == {}
    for minimizer in p.minimizers:
        xy = torch.tensor(minimizer, dtype=F64)
        assert float(p.loss_fn({"xy": xy}, {})) == pytest.approx(0.0, abs=1e-20)
        assert gradient(p, {"xy": xy}).norm() < 1e-12
    (x_low, x_high), (y_low, y_high) = p.bounds
    for x, y, *_ in [*p.minimizers, tuple(p.params["xy"].tolist())]:
        assert x_low <= x <= x_high and y_low <= y <= y_high
    assert float(p.loss().detach()) > 1  # the start is not a minimum
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 4), indexing="ij"), -1)
    assert cls.value(grid).shape == (5, 4)  # a surface for contour plots


def test_himmelblau_minimizers_are_stationary_to_the_last_digit():
    """Newton's method from each stored minimizer does not move it (beyond 1e-13)."""
    for minimizer in landscapes.Himmelblau.minimizers:
        xy = torch.tensor(minimizer, dtype=F64)
        step = torch.linalg.solve(
            torch.autograd.functional.hessian(landscapes.Himmelblau.value, xy),
            torch.autograd.functional.jacobian(landscapes.Himmelblau.value, xy),
        )
        assert step.abs().max() < 1e-13


def test_ridge_optimum_matches_least_squares():
    """The implementation solves the normal equations; here: lstsq on the augmented system."""
    for seed, l2 in [(0, 1e-2), (3, 0.0), (4, 1.0)]:
        p = Ridge(seed=seed, l2=l2, dtype="float64")
        x, y = p.data["x"], p.data["y"]
        n, d = x.shape
        design = torch.cat([x, torch.ones(n, 1, dtype=F64)], 1) / math.sqrt(n)
        penalty = math.sqrt(l2) * torch.cat([torch.eye(d, dtype=F64), torch.zeros(d, 1, dtype=F64)], 1)
        theta = torch.linalg.lstsq(
            torch.cat([design, penalty]), torch.cat([y / math.sqrt(n), torch.zeros(d, dtype=F64)])
        )
        theta = theta.solution
        torch.testing.assert_close(p.solution, theta, rtol=1e-8, atol=1e-10)
        at_solution = {"weight": theta[:d].unsqueeze(0), "bias": theta[d:]}
        assert p.optimum == pytest.approx(float(p.loss_fn(at_solution, p.data)), rel=1e-10)
        assert gradient(p, at_solution).norm() < 1e-10
        assert p.optimum < float(p.loss().detach())


@pytest.mark.parametrize("rank", [1, 3, 5, 7])  # true_rank is 5
def test_matrix_factorization_optimum_is_eckart_young(rank):
    """The implementation drops singular values (svdvals); here: eigenvalues of Y^T Y, and the loss at the
    truncated SVD's factors. f* = 0 once rank >= true_rank (5), and gd from a small start gets there."""
    p = MatrixFactorization(seed=1, rows=30, cols=20, rank=rank, dtype="float64")
    y = p.data["Y"]
    dropped = torch.linalg.eigvalsh(y.T @ y).flip(0)[rank:].clamp(min=0)  # sigma_k^2, largest first
    assert p.optimum == pytest.approx(
        float(dropped.sum()) / (2 * 30 * 20), rel=1e-9, abs=1e-14
    )  # eigvalsh: 1e-13 for 0
    u, s, vh = torch.linalg.svd(y)
    keep = min(rank, 20)
    best = {"U": u[:, :keep] * s[:keep], "V": vh[:keep].T}
    assert float(p.loss_fn(best, p.data)) == pytest.approx(p.optimum, rel=1e-9, abs=1e-24)
    assert (p.optimum == 0) == (rank >= 5)
    if rank == 5:
        df = optbench.run("matrix-factorization", "gd", lr=30.0, epochs=200)
        assert df["loss"].iloc[-1] < 1e-10 and df["loss"].iloc[0] > 0.1


def lbfgs_bracket(problem):
    """[low, high] around f*, by an L-BFGS run (float64) and strong convexity: f* >= f(w) - |grad f(w)|^2 / (2 l2)."""
    params = {k: torch.zeros_like(v).requires_grad_() for k, v in problem.params.items()}
    opt = torch.optim.LBFGS(
        params.values(),
        max_iter=2000,
        tolerance_grad=1e-8,
        tolerance_change=0,
        history_size=30,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = problem.loss_fn(params, problem.data)
        loss.backward()
        return loss

    opt.step(closure)
    high = float(closure().detach())
    low = high - float(gradient(problem, params).norm()) ** 2 / (2 * problem.l2)
    return low, high


@pytest.mark.parametrize("key", sorted(OPTIMA), ids=lambda key: f"{key[0]}-{key[1]}")
def test_shipped_logreg_optima_lie_in_an_independent_bracket(key):
    dataset, l2, test_fraction = key
    p = LogisticRegression(dataset=dataset, l2=l2, test_fraction=test_fraction, dtype="float64")
    low, high = lbfgs_bracket(p)
    assert high - low < 1e-8 * high  # tight enough to check the table to 8 digits
    assert low - 1e-14 <= OPTIMA[key] <= high + 1e-14
    assert p.optimum == OPTIMA[key]


def test_logreg_optimum_is_computed_for_options_off_the_table():
    p = LogisticRegression(dataset="breast_cancer", l2=0.05, test_fraction=0.3, dtype="float64")
    assert p._key not in OPTIMA
    low, high = lbfgs_bracket(p)
    assert low - 1e-14 <= p.optimum <= high + 1e-14
    assert logreg_optimum("breast_cancer", 1e-3, 0.2) == pytest.approx(OPTIMA["breast_cancer", 1e-3, 0.2], rel=1e-12)


# --- seeds


def test_the_seed_moves_the_split_and_the_start_not_the_data():
    for cls in (DigitsMLP, Ridge):
        a, b, c = cls(seed=1), cls(seed=1), cls(seed=2)
        for key in a.data:  # same seed, identical tensors
            assert torch.equal(a.data[key], b.data[key])
        assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
        assert not torch.equal(a.data["x"], c.data["x"])
        assert not any(torch.equal(a.params[k], c.params[k]) for k in a.params)
        assert a.data["x"].shape == c.data["x"].shape  # same shapes for every seed
        rows = [sorted(map(tuple, torch.cat([p.data["x"], p.data["x_test"]]).tolist())) for p in (a, c)]
        assert rows[0] == rows[1]  # the same rows, held out differently
    a, c = LogisticRegression(seed=1), LogisticRegression(seed=2)  # a fixed split: f* is one number
    assert all(torch.equal(a.data[k], c.data[k]) for k in a.data) and a.optimum == c.optimum
    assert not torch.equal(a.params["weight"], c.params["weight"])
    q1, q2 = Quadratic(seed=1, dtype="float64"), Quadratic(seed=2, dtype="float64")
    assert not torch.equal(q1.data["A"], q2.data["A"]) and not torch.equal(q1.params["x"], q2.params["x"])
    torch.testing.assert_close(torch.linalg.eigvalsh(q1.data["A"]), torch.linalg.eigvalsh(q2.data["A"]))
    assert landscapes.Beale(seed=1).params["xy"].tolist() == landscapes.Beale(seed=2).params["xy"].tolist() == [1, 1]
    jittered = [landscapes.Beale(seed=s, jitter=0.1).params["xy"] for s in (1, 1, 2)]
    assert torch.equal(jittered[0], jittered[1]) and not torch.equal(jittered[0], jittered[2])


# --- the functional contract


@pytest.mark.parametrize(("name", "options"), SUITE, ids=SUITE_IDS)
def test_loss_fn_vmaps_over_seeds(name, options):
    problems = [build(name, seed, **options) for seed in (0, 1, 2)]
    params = {k: torch.stack([p.params[k].detach() for p in problems]) for k in problems[0].params}
    data = {k: torch.stack([p.data[k] for p in problems]) for k in problems[0].data}
    first = problems[0]
    with torch.no_grad():
        torch.testing.assert_close(vmap(first.loss_fn)(params, data), torch.stack([p.loss() for p in problems]))
        idx = torch.tensor([0]) if first.n_train == 1 else torch.tensor([0, 5, 2])
        batched = vmap(lambda p, d: first.loss_fn(p, d, idx))(params, data)
        torch.testing.assert_close(batched, torch.stack([p.loss(idx) for p in problems]))
        metrics = vmap(first.metrics_fn)(params, data)
        for key, values in metrics.items():
            torch.testing.assert_close(values, torch.stack([p.metrics()[key] for p in problems]))
    recorded = {"test_loss"} if name == "ridge" else {"test_loss", "test_accuracy"} if "x_test" in first.data else set()
    recorded = {"val_loss", "val_gap"} if name == "lm" else recorded
    assert set(metrics) == recorded
    grads = vmap(torch.func.grad(first.loss_fn))(params, data)
    for i, p in enumerate(problems):
        torch.testing.assert_close(torch.cat([g[i].reshape(-1) for g in grads.values()]), gradient(p))


@pytest.mark.parametrize(("name", "options"), SUITE, ids=SUITE_IDS)
def test_dtype_option(name, options):
    p = build(name, **options, dtype="float64")
    floating = [t for t in [*p.params.values(), *p.data.values()] if t.is_floating_point()]
    assert floating and all(t.dtype == F64 for t in floating) and p.loss().dtype == F64
    assert all(t.dtype == torch.float32 for t in build(name, **options).params.values())
    assert all(t.requires_grad and t.is_leaf for t in p.params.values())


def test_the_suite_is_registered():
    assert {name for name, _ in SUITE} <= set(optbench.list_problems())


# --- learning


@pytest.mark.parametrize(("name", "lr"), [("digits-mlp", 3e-3), ("digits-cnn", 1e-2)])
def test_tuned_adam_reaches_95_percent_on_the_digits(name, lr):
    """10 epochs of batches of 32 (450 steps): measured 0.972 (MLP) and 0.975 (CNN) on seed 0."""
    df = optbench.run(name, "torch-adam", lr=lr, epochs=10, batch_size=32, seed=0)
    assert (df["status"] == "ok").all()
    assert df["test_accuracy"].iloc[-1] >= 0.95
    assert df["loss"].iloc[-1] < 0.2 * df["loss"].iloc[0]


# --- options


BAD_OPTIONS = [
    ("quadratic", {"dim": 1}, "quadratic dim=1 is out of range; expected a whole number >= 2"),
    ("quadratic", {"condition": 0.5}, "quadratic condition=0.5 is out of range; expected a finite number >= 1"),
    ("quadratic", {"noise": -1.0}, "quadratic noise=-1.0 is out of range"),
    ("quadratic", {"n": 0}, "quadratic n=0 is out of range"),
    ("quadratic", {"dtype": "float16"}, "dtype 'float16' is not supported; valid: float32, float64"),
    ("rosenbrock", {"start": (1.0,)}, "rosenbrock start=(1.0,) is not valid; expected 2 finite numbers"),
    ("beale", {"start": (1.0, math.nan)}, "beale start=(1.0, nan) is not valid"),
    ("himmelblau", {"jitter": -0.1}, "himmelblau jitter=-0.1 is out of range; expected a finite number >= 0"),
    ("rastrigin", {"dim": 0}, "rastrigin dim=0 is out of range"),
    ("rastrigin", {"start": math.inf}, "rastrigin start=inf is out of range; expected a finite number"),
    ("logreg", {"dataset": "digit"}, "logreg dataset='digit' is not valid (did you mean 'digits'?)"),
    ("logreg", {"l2": 0.0}, "logreg l2=0.0 is out of range; expected a finite number > 0"),
    ("logreg", {"test_fraction": 1.0}, "logreg test_fraction=1.0 is out of range; expected a number in (0, 1)"),
    ("ridge", {"l2": -1.0}, "ridge l2=-1.0 is out of range"),
    ("ridge", {"test_fraction": 0.0001}, "ridge test_fraction=0.0001 is out of range"),
    ("digits-mlp", {"hidden": 0}, "digits-mlp hidden=0 is out of range"),
    ("digits-cnn", {"channels": 2.5}, "digits-cnn channels=2.5 is out of range; expected a whole number >= 1"),
    ("digits-cnn", {"test_fraction": "0.2"}, "digits-cnn test_fraction='0.2' is out of range"),
    ("matrix-factorization", {"rank": 0}, "matrix-factorization rank=0 is out of range; expected a whole number >= 1"),
    ("matrix-factorization", {"true_rank": 41}, "true_rank=41 is out of range; expected a whole number from 1 to 40"),
    (
        "matrix-factorization",
        {"init": 0.0},
        "matrix-factorization init=0.0 is out of range; expected a finite number > 0",
    ),
]


@pytest.mark.parametrize(
    ("name", "options", "fragment"), BAD_OPTIONS, ids=[f"{n}-{'-'.join(o)}" for n, o, _ in BAD_OPTIONS]
)
def test_bad_options_are_one_clear_line(name, options, fragment):
    with pytest.raises(InvalidValueError) as caught:
        build(name, **options)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_cli_style_options_reach_the_problems():
    df = optbench.run("rastrigin", "gd", lr=1e-3, epochs=3, problem_options={"dim": "4", "start": "0.25"})
    assert df["problem_dim"].iloc[0] == 4 and df["loss"].iloc[0] == pytest.approx(
        4 * 0.25**2 + 40 - 40 * math.cos(math.pi / 2)
    )
    df = optbench.run("rosenbrock", "gd", lr=1e-3, epochs=3, problem_options={"start": "1,1"})
    assert df["loss"].iloc[0] == 0 and (df["optimum"] == 0).all()
