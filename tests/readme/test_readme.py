"""The README's Quick start is what CI runs, and its example prints what the code prints."""

from support import ROOT

import optbench


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_that_ci_runs_verbatim():
    commands = quick_start()
    assert len(commands) == 2
    assert "optbench run --problem linreg --optimizer sgd" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci


def test_the_lesson_example_output():
    df = optbench.run(problem="linreg", optimizer="gd", lr=0.1, epochs=100, seed=0)
    shown = "\n".join("# " + line for line in df[["step", "loss", "optimum"]].iloc[[0, -1]].to_string().splitlines())
    assert shown in (ROOT / "README.md").read_text()
