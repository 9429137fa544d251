"""Runs: the entry point (`python -m runs.train`) that joins a task and a gradient method from the config,
trains, and writes the run directory (runs.record). Output directories also live below runs/ (git-ignored)."""
