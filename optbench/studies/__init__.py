"""Studies built from many runs: sweeps, fair tuning, and `optbench bench`'s verdict over a suite."""
