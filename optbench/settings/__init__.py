"""Run settings: KEY=VALUE text, value checks and limits, sweep grids and the files that declare them (torch-free)."""
