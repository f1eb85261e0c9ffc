"""speedup._runs reads every evaluation and ladder run at once; it must give what reading them one by
one gives (the per-run rule it replaced, kept here as the reference), bit for bit."""

import math

import numpy as np
import pandas as pd

from optbench.results.outcomes import final, resolution
from optbench.studies.speedup import PHASE, _runs


def one_by_one(results: pd.DataFrame, label: str) -> pd.DataFrame:
    """The rule run by run, as optbench computed it before it was vectorised."""
    mine = results[(results["suite_problem"] == label) & results["phase"].isin(["eval", PHASE])]
    rows = []
    for (optimizer, seed, epochs), run in mine.groupby(["optimizer", "seed", "epochs"], sort=False):
        run = run.sort_values("step")
        evals = run["grad_evals"] if "grad_evals" in run else run["step"]
        last = run[run["step"] > 0].tail(1)
        per_epoch = float(last["step"].iloc[0] / last["epoch"].iloc[0]) if len(last) else 1.0
        per_step = float(evals.loc[last.index[0]] / last["step"].iloc[0]) if len(last) else 1.0
        steps = epochs * round(per_epoch)
        counted = "tokens" in run and len(last) and math.isfinite(float(run["tokens"].loc[last.index[0]]))
        tokens = steps * float(run["tokens"].loc[last.index[0]] / last["step"].iloc[0]) if counted else math.nan
        rows.append(
            {
                "optimizer": optimizer,
                "seed": seed,
                "epochs": epochs,
                "final": final(run),
                "resolution": resolution(run),
                "steps": float(steps),
                "evals": float(steps * per_step),
                "tokens": tokens,
                "known": bool(run["optimum"].notna().any()) if "optimum" in run else False,
                "eval_phase": run["phase"].iloc[0] == "eval",
            }
        )
    return pd.DataFrame(rows)


def run_rows(optimizer, seed, epochs, phase, losses, *, per_epoch=3, status="ok", optimum=0.0, tokens=None):
    steps = np.arange(len(losses)) * 3  # recorded every 3 steps; per_epoch steps make an epoch
    out = pd.DataFrame(
        {
            "suite_problem": "p",
            "optimizer": optimizer,
            "seed": seed,
            "epochs": epochs,
            "phase": phase,
            "step": steps,
            "epoch": steps / per_epoch,
            "grad_evals": steps * 2,
            "loss": losses,
            "optimum": optimum,
            "status": status,
            "problem_dtype": "float32",
            "run_key": f"{optimizer}-{seed}-{epochs}-{phase}",
        }
    )
    if tokens is not None:
        out["tokens"] = steps * tokens
    return out


def table(with_tokens: bool) -> pd.DataFrame:
    tok = 7.0 if with_tokens else None
    rng = np.random.default_rng(0)
    parts = [
        run_rows("a", 0, 2, "eval", [4.0, 1.0, 0.25], tokens=tok),
        run_rows("a", 1, 2, "eval", [4.0, 1.0, 1e-12], tokens=tok),  # under the resolution: floored
        run_rows("b", 0, 2, "eval", [4.0, math.nan, math.nan], status="diverged", tokens=tok),
        run_rows("b", 1, 2, "eval", [3.0, 2.5, math.inf], tokens=tok),  # its last finite value counts
        run_rows("b", 0, 4, PHASE, [4.0, 2.0, 1.0, 0.5, 0.3], per_epoch=5, tokens=tok),  # the ladder
        run_rows("b", 0, 1, PHASE, [4.0, 3.0], per_epoch=3.6, optimum=math.nan, tokens=tok),  # 4 steps an epoch
        run_rows("b", 1, 8, PHASE, [5.0], tokens=tok),  # step 0 alone: a budget of 1 a step
        run_rows("c", 0, 2, "tune", [4.0, 1.0, 0.5], tokens=tok),  # not read
        run_rows("a", 0, 2, "eval", [9.0, 9.0, 9.0], tokens=tok).assign(suite_problem="q"),  # another problem
    ]
    if with_tokens:
        parts[3].loc[parts[3].index[-1], "tokens"] = math.nan  # not counted at its last point
    t = pd.concat(parts, ignore_index=True)
    return t.iloc[rng.permutation(len(t))].reset_index(drop=True)  # rows in no particular order


def test_every_run_at_once_equals_run_by_run():
    for with_tokens in (False, True):
        results = table(with_tokens)
        expected = one_by_one(results, "p")
        got = _runs(results, "p")
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        runs = got.set_index(["optimizer", "seed", "epochs"])
        assert len(got) == 7 and math.isinf(runs.loc[("b", 0, 2), "final"])  # the diverged run ranks last
        assert runs.loc[("b", 1, 2), "final"] == 2.5 and runs.loc[("b", 0, 1), "steps"] == 4.0


def test_a_table_without_a_ladder_or_evaluations_has_no_runs():
    assert _runs(table(False).drop(columns="epochs"), "p").empty
    assert _runs(table(False), "nowhere").empty
