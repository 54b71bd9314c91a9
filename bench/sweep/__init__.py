"""Many specs: sweep files expanded to specs, executors running them in fresh processes, the results store."""

from pathlib import Path

PRESETS = Path(__file__).parent / "presets"  # the sweep files shipped with the package


def presets() -> list[str]:
    """The presets' names (``bench sweep NAME``); importing this module loads no model and no framework."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))
