"""Problems: data from the seed, options, classification shapes and models."""

import functools

import pytest
import torch

import optbench
from optbench.errors import InvalidValueError
from optbench.problems.classification import Classification
from optbench.problems.linreg import LinearRegression


def test_linreg_is_the_lesson_set_up():
    p = LinearRegression(seed=5)
    assert p.x.shape == (100, 2) and torch.equal(p.x[:, 1], torch.ones(100))
    assert p.x[:, 0].min() >= -1 and p.x[:, 0].max() <= 1
    noise = p.y - p.x @ torch.tensor([3.0, 2.0])
    assert noise.min() >= -1e-6 and noise.max() <= 1 + 1e-6 and abs(noise.mean() - 0.5) < 0.1
    assert p.a.tolist() == [-1.0, 1.0]


def test_linreg_options():
    p = LinearRegression(seed=0, n=1000, noise=0.0, a=(1.5, -2.0), start=(0.0, 0.0), dtype="float64")
    assert p.n_train == 1000 and p.x.dtype == torch.float64
    assert p.optimum == pytest.approx(0, abs=1e-20)  # noiseless: the line fits exactly
    torch.testing.assert_close(p.solution, torch.tensor([1.5, -2.0], dtype=torch.float64))
    df = optbench.run("linreg", "gd", epochs=2, problem_options={"n": 20, "noise": 0.5})
    assert df["problem_n"].iloc[0] == 20 and df["problem_noise"].iloc[0] == 0.5


def test_data_are_a_pure_function_of_the_seed():
    a, b, c = Classification(seed=2, shape="spirals"), Classification(seed=2, shape="spirals"), Classification(seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.x[:10], c.x[:10])


@pytest.mark.parametrize("shape", ["blobs", "moons", "spirals"])
def test_shapes_split_and_classes(shape):
    p = Classification(seed=0, shape=shape, n=200, classes=4)
    expected_classes = 2 if shape == "moons" else 4
    assert p.n_train == 150 and len(p.y_test) == 50
    assert sorted(torch.cat([p.y, p.y_test]).unique().tolist()) == list(range(expected_classes))
    assert torch.bincount(torch.cat([p.y, p.y_test])).tolist() == [200 // expected_classes] * expected_classes


def test_the_mlp_learns_what_softmax_regression_cannot():
    """Spirals are not linearly separable: a linear model stays far below the MLP."""
    linear = optbench.run("classification", "torch-adam", lr=0.05, epochs=300, problem_options={"shape": "spirals"})
    mlp = optbench.run(
        "classification",
        "torch-adam",
        lr=0.05,
        epochs=300,
        problem_options={"shape": "spirals", "model": "mlp", "hidden": 64},
    )
    assert linear["test_accuracy"].iloc[-1] < 0.75
    assert mlp["test_accuracy"].iloc[-1] >= 0.9


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"shape": "rings"}, "shape='rings' is not valid"),
        ({"model": "cnn"}, "model='cnn' is not valid"),
        ({"classes": 1}, "classes=1 is out of range"),
        ({"test_fraction": 1.5}, "test_fraction=1.5"),
        ({"dtype": "float16"}, "dtype 'float16' is not supported"),
    ],
)
def test_bad_classification_options(options, fragment):
    with pytest.raises(InvalidValueError, match=fragment.replace("(", r"\(")):
        Classification(seed=0, **options)


# What each built-in's options cost, declared before it is built: the parameters and data it then builds,
# counted exactly, at its defaults and at options that change them.
COST_CASES = [
    ("linreg", {"n": 37}),
    ("quadratic", {"dim": 7, "n": 13}),
    ("classification", {"n": 90, "model": "mlp", "hidden": 5, "classes": 4}),
    ("classification", {"shape": "moons", "n": 60}),
    ("digits-mlp", {"hidden": 9}),
    ("digits-cnn", {"channels": 3}),
    ("logreg", {"dataset": "breast_cancer"}),
    ("ridge", {"l2": 0.1}),
    ("matrix-factorization", {"rows": 11, "cols": 6, "rank": 2}),
    ("rastrigin", {"dim": 5}),
    ("rosenbrock", {}),
    ("lm", {"n_train": 40, "n_val": 9, "block_size": 5, "n_layer": 2, "n_embd": 12, "vocab": 5, "order": 2}),
    ("lm", {"corpus": "pydoc", "n_train": 20, "n_val": 7, "block_size": 4, "n_embd": 8}),
]


@pytest.mark.parametrize("name", optbench.list_problems())
def test_every_builtin_problem_declares_what_its_options_cost(name):
    cases = [(name, {})] + [case for case in COST_CASES if case[0] == name]
    assert len(cases) >= 2 or name in ("beale", "himmelblau"), f"{name}: add options that change its size"
    entry = optbench.get_problem(name)
    for _, options in cases:
        full = entry.hyperparameters() | options
        cost = entry.target.cost(**full)
        problem = entry.target(seed=0, **options)
        assert cost.parameters == sum(p.numel() for p in problem.params.values()), options
        assert cost.data == sum(t.numel() for t in problem.data.values()), options
        assert problem.n_train <= cost.n_train <= 2 * problem.n_train, options  # every row: held-out ones too
        assert cost.step_bytes(1) < cost.step_bytes(None) or cost.n_train == 1
        assert cost.bytes(1) <= cost.bytes(None)


def test_an_oversized_problem_is_refused_before_it_is_built(monkeypatch):
    """The size check reads the declared cost, so the constructor of a refused run never runs."""
    from optbench.problems.lm import LanguageModel

    built, original = [], LanguageModel.__init__

    @functools.wraps(original)  # the same signature: its options are read from it
    def spy(self, *args, **kwargs):
        built.append(kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(LanguageModel, "__init__", spy)
    monkeypatch.setenv("OPTBENCH_MAX_MEMORY", "0.5")
    with pytest.raises(InvalidValueError, match=r"n_train=100000000: problem 'lm' would need about .* GiB"):
        optbench.run("lm", "torch-adam", epochs=1, problem_options={"n_train": 100_000_000})
    assert built == []
    optbench.run("lm", "torch-adam", epochs=1, problem_options={"n_train": 64})  # a small one is built and runs
    assert len(built) == 1
    monkeypatch.setenv("OPTBENCH_MAX_MEMORY", "1e-6")  # the limit is the flag's: the same run is refused now
    with pytest.raises(InvalidValueError, match=r"above the limit of 1e-06 GiB \(--max-memory 1e-6\)"):
        optbench.run("lm", "torch-adam", epochs=1, problem_options={"n_train": 64})
