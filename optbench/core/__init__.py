"""The training core: a run's spec, the one loop, stacked and alone forms, schedules, the table it writes."""
