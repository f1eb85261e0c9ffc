"""``lm``: the Markov source's f* against a Monte Carlo estimate of the same quantity, a trained
model's validation loss near it, and the problem's runs stacked equal to alone."""

import math

import numpy as np
import pytest
import torch

import optbench
from optbench.errors import InvalidValueError
from optbench.problems.lm import LanguageModel, MarkovSource, optimum


@pytest.mark.parametrize(("vocab", "order", "concentration"), [(8, 1, 0.3), (4, 2, 0.5), (3, 3, 1.0)])
def test_f_star_is_the_sources_expected_next_token_loss(vocab, order, concentration):
    """Monte Carlo: sample sequences, average -log p_source(x_{t+1} | x_0..x_t) over positions; f*
    (from the tables alone) lies within 4 standard errors, and the entropy-rate term alone would
    not where the window starts with less than ``order`` tokens of context."""
    source = MarkovSource(vocab, order, concentration, seed=5)
    block = 6
    text = source.sample(20_000, block + 1, torch.Generator().manual_seed(1))
    per_sequence = torch.zeros(len(text), dtype=torch.float64)
    for t in range(block):
        p = source.conditional(text[:, : t + 1])
        per_sequence -= torch.log(p[torch.arange(len(text)), text[:, t + 1]]) / block
    estimate, error = float(per_sequence.mean()), float(per_sequence.std() / math.sqrt(len(text)))
    f_star = optimum(source, block)
    assert abs(estimate - f_star) < 4 * error, (estimate, f_star, error)
    # the sequences follow the stationary distribution: the first symbol's frequencies match it
    first = np.bincount(text[:, 0].numpy(), minlength=vocab) / len(text)
    np.testing.assert_allclose(first, source.marginal(1), atol=0.02)
    if order > 1:
        rate = sum(
            source.stationary[s] * -(source.table[s] * np.log(source.table[s])).sum() for s in range(len(source.table))
        )
        assert abs(estimate - rate) > 4 * error  # the first positions' lower-order entropies matter


def test_a_trained_model_comes_within_a_few_percent_of_f_star():
    run = optbench.run("lm", "torch-adam", lr=1e-2, epochs=75, seed=0)
    problem = LanguageModel(seed=0)
    best = float(run["val_loss"].min())
    assert problem.f_star <= best <= 1.05 * problem.f_star  # measured: 1.0% above at its best
    np.testing.assert_allclose(run["val_gap"], run["val_loss"] - problem.f_star, rtol=1e-6)
    assert run["optimum"].isna().all()  # no training optimum: a memorising model goes below f*
    assert float(run["val_loss"].iloc[0]) > math.log(8) * 0.95  # it started near uniform


def test_stacked_runs_of_lm_equal_alone():
    from optbench.core.runner import execute, prepare

    options = {"n_train": 64, "n_val": 32, "n_embd": 16}
    specs = [
        prepare("lm", "torch-adamw", lr=lr, seed=seed, epochs=5, problem_options=options)
        for lr in (3e-3, 1e-2)
        for seed in (0, 1)
    ]
    stacked = execute(specs)
    alone = execute(specs, stack=False)
    assert stacked["batch_runs"].max() == len(specs) == 4
    np.testing.assert_allclose(stacked["loss"], alone["loss"], rtol=3e-6)
    np.testing.assert_allclose(stacked["val_loss"], alone["val_loss"], rtol=3e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_embd": 30, "n_head": 4}, "lm n_embd=30 is not a multiple of n_head=4"),
        ({"vocab": 100, "order": 2}, "lm vocab**order = 10000 states is too many"),
        ({"corpus": "books"}, "corpus"),
    ],
)
def test_bad_options_are_one_line(options, message):
    with pytest.raises(InvalidValueError, match=message.replace("*", r"\*")):
        LanguageModel(seed=0, **options)
