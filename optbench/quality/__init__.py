"""Quality gates: the conformance suite, its pytest fixtures, and regression checks against a baseline."""
