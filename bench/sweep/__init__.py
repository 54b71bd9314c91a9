"""Many specs: sweep files expanded to specs, executors running them in fresh processes, the results store."""
