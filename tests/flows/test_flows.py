"""End to end through the CLI: sweep, tune and a plugin problem's own metric, each into `report`,
whose summary and figures must aggregate over seeds (issue 10's headline)."""

import matplotlib
import matplotlib.collections
import pandas as pd
import pytest
from support import invoke

import optbench
from optbench.reports import figures as fg
from optbench.reports.data import finals, label_runs, read_results

matplotlib.use("Agg")

SEEDS = range(5)
BOWL_PLUGIN = '''
import torch
import optbench
from optbench.problems.base import Problem


@optbench.register_problem("test-bowl", override=True)
class Bowl(Problem):
    """A quadratic bowl around seeded targets; records its own metric, `distance` to the best point."""

    def __init__(self, seed=0, *, n=20):
        gen = torch.Generator().manual_seed(seed)
        self.data = {"target": torch.randn(n, 3, generator=gen, dtype=torch.float64)}
        self.params = {"w": torch.zeros(3, dtype=torch.float64, requires_grad=True)}
        self.n_train = n
        self.optimum = float(self.data["target"].var(dim=0, unbiased=False).sum())

    def loss_fn(self, params, data, idx=None):
        target = data["target"] if idx is None else data["target"][idx]
        return ((target - params["w"]) ** 2).sum(dim=1).mean()

    def metrics_fn(self, params, data):
        return {"distance": torch.linalg.vector_norm(params["w"] - data["target"].mean(dim=0))}


@optbench.register_optimizer("test-clipped-sgd", override=True)
class ClippedSGD(torch.optim.SGD):
    """SGD on clipped gradients; its `clip` default is a lambda (no stable text of its own)."""

    def __init__(self, params, lr=0.1, clip=lambda g: g.clamp(-1.0, 1.0)):
        super().__init__(params, lr=lr)
        self.clip = clip

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.copy_(self.clip(p.grad))
        return super().step(closure)
'''


def report(results, out):
    made = invoke("report", results, "--out", out)
    assert made.exit_code == 0, made.output
    return pd.read_csv(out / "summary.csv"), (out / "index.html").read_text()


def final_gap(problem, optimizer, seed, **settings):
    """By hand: one run alone, its final loss - f*."""
    df = optbench.run(problem, optimizer, seed=seed, **settings)
    return df["loss"].iloc[-1] - df["optimum"].iloc[0]


def boxes(results):
    """Dots per optimizer in the final-value figure, drawn from the results as `report` reads them."""
    table = label_runs(read_results([results]))
    final = finals(table)
    figure = fg.final_distribution(final)
    dots = [c for c in figure.figure.axes[0].collections if isinstance(c, matplotlib.collections.PathCollection)]
    return sorted(len(c.get_offsets()) for c in dots if len(c.get_offsets()))


def test_tune_searches_spaces_in_studies_and_report_reads_each_studys_winner(tmp_path):
    """`tune` as bench tunes (issue 29): each optimizer's space, refined, in studies, the fair schedule;
    each study's winner rerun on the evaluation seeds, and `report` reads those runs."""
    out = tmp_path / "t.parquet"
    args = ["--optimizer", "gd,torch-sgd", "--opt", "momentum=0.9", "--lr", "1e-3:1:4", "--epochs", "20"]
    made = invoke("tune", *args, "--studies", "2", "--tune-seeds", "0-1", "--eval-seeds", "10-12", "--out", out)
    assert made.exit_code == 0, made.output
    assert "momentum=0.9" in made.output and "study 1" in made.output  # the grid's one value fixes momentum
    table = pd.read_parquet(out)
    tuned = table[table["phase"] == "tune"]
    assert set(tuned["seed"]) == {0, 1, 1000, 1001}  # study s tunes on the seeds + 1000 s
    assert set(tuned["schedule"]) == {"cosine"} and set(tuned["warmup_steps"]) == {5}  # the suites' schedule
    assert tuned.groupby("optimizer")["lr"].nunique().min() > 8  # explored, then refined: not a 4-value grid
    evaluation = table[table["phase"] == "eval"]
    for (optimizer, lr), runs in evaluation.groupby(["optimizer", "lr"]):
        finals = runs.groupby("seed")["loss"].last()
        assert set(finals.index) == {10, 11, 12}
        hyper = {"momentum": 0.9} if optimizer == "torch-sgd" else {}
        for seed, loss in finals.items():  # by hand: the chosen setting alone, with the fair schedule
            df = optbench.run(
                "linreg", optimizer, seed=seed, lr=lr, epochs=20, schedule="cosine", warmup_steps=5, **hyper
            )
            assert loss == pytest.approx(df["loss"].iloc[-1], rel=1e-12)
    summary, _ = report(out, tmp_path / "r")
    assert set(summary.loc[summary["phase"] == "eval", "runs"]) == {3}


def test_sweep_then_report_aggregates_over_seeds(tmp_path):
    out = tmp_path / "s.parquet"
    made = invoke("sweep", "--optimizer", "gd,sgd", "--lr", "0.01,0.1", "--seeds", "0-4", "--epochs", "3", "--out", out)
    assert made.exit_code == 0, made.output
    summary, page = report(out, tmp_path / "r")
    assert len(summary) == 4 and set(summary["runs"]) == {5}  # 2 optimizers x 2 lrs, every seed in one row
    row = summary.set_index("config").loc["sgd (lr=0.1)"]
    gaps = [final_gap("linreg", "sgd", s, lr=0.1, epochs=3) for s in SEEDS]
    assert row["final_mean"] == pytest.approx(sum(gaps) / 5, rel=1e-9)
    assert row["final_best"] == pytest.approx(min(gaps), rel=1e-9)
    assert "95% bootstrap confidence interval over 5 seeds" in page
    assert boxes(out) == [5, 5]  # one box per optimizer (at its best lr), a dot per seed


def test_tune_then_report_compares_on_the_evaluation_seeds(tmp_path):
    out = tmp_path / "t.parquet"
    args = ["--optimizer", "gd,torch-adam", "--lr", "0.03,0.3", "--epochs", "3", "--out", out, "--search", "lr"]
    made = invoke("tune", *args, "--tune-seeds", "0-2", "--eval-seeds", "10-14")
    assert made.exit_code == 0, made.output
    summary, page = report(out, tmp_path / "r")
    evaluation = summary[summary["phase"] == "eval"]
    assert len(evaluation) == 2 and set(evaluation["runs"]) == {5}  # the chosen setting of each, 5 fresh seeds
    assert set(summary[summary["phase"] == "tune"]["runs"]) == {3}
    assert "figures show the evaluation phase" in page and "over 5 seeds" in page
    chosen = evaluation.set_index("optimizer").loc["gd", "config"]  # e.g. "gd (lr=0.3)"
    lr = float(chosen.split("lr=")[1].rstrip(")"))
    gaps = [final_gap("linreg", "gd", s, lr=lr, epochs=3) for s in range(10, 15)]
    assert evaluation.set_index("optimizer").loc["gd", "final_mean"] == pytest.approx(sum(gaps) / 5, rel=1e-9)


def test_a_plugin_problem_with_its_own_metric_and_a_lambda_default(tmp_path):
    plugin = tmp_path / "bowl.py"
    plugin.write_text(BOWL_PLUGIN)
    out = tmp_path / "b.csv"  # CSV: the roles come back from the column order
    args = ["--plugin", plugin, "--problem", "test-bowl", "--optimizer", "test-clipped-sgd,gd", "--lr", "0.1"]
    made = invoke("sweep", *args, "--seeds", "0-4", "--epochs", "4", "--out", out)
    assert made.exit_code == 0, made.output
    table = optbench.load_results(out)
    assert set(table["clip"].dropna()) == {_lambda_name()}  # the same text in every process: no address
    summary, _ = report(out, tmp_path / "r")
    assert len(summary) == 2 and set(summary["runs"]) == {5}
    by_hand = []
    for seed in SEEDS:
        df = optbench.run("test-bowl", "gd", lr=0.1, epochs=4, seed=seed)
        by_hand.append(df["distance"].iloc[-1])
    assert summary.set_index("optimizer").loc["gd", "distance_mean"] == pytest.approx(sum(by_hand) / 5, rel=1e-9)


def _lambda_name():
    from optbench.registry import OPTIMIZERS

    module = OPTIMIZERS.get("test-clipped-sgd").target.__module__
    return f"{module}.ClippedSGD.<lambda>"
