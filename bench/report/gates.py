"""The gate-trace figure: what an LSTM-family cell remembers, from a record's ``gate_traces``.

One column per sample: the forget gate of the most active units over time (a heatmap: dark = forgets), and the
input and forget gates averaged over all units. On copy, a cell that has learnt the task opens its input gate on the
symbols and holds its forget gate near 1 through the blanks; on adding, the input gate opens at the two markers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.report import figures


def gate_figure(record: dict, folder: Path, name: str = "gates") -> list[str]:
    """Draw ``record["gate_traces"]`` into ``folder/name.{png,svg}``; return the file names."""
    plt = figures.plt
    traces = record.get("gate_traces") or {}
    samples = traces.get("samples") or []
    with plt.rc_context(figures.STYLE):
        fig, axes = plt.subplots(2, max(len(samples), 1), squeeze=False, sharex="col",
                                 figsize=(figures.PANEL[0] * 1.4 * max(len(samples), 1), figures.PANEL[1] * 1.6))
        if not samples:
            figures.no_data(axes[0, 0], "no gate traces")
            figures.no_data(axes[1, 0])
        for col, sample in enumerate(samples):
            forget = np.asarray(sample["forget"])
            image = axes[0, col].imshow(forget, aspect="auto", vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
            axes[0, col].set_yticks(range(len(sample["units"])), [str(u) for u in sample["units"]])
            axes[0, col].set_ylabel("unit")
            axes[0, col].grid(False)
            axes[0, col].set_title(f"sample {col}: forget gate", fontsize=9)
            steps = np.arange(len(sample["forget_mean"]))
            axes[1, col].plot(steps, sample["forget_mean"], label="forget (mean)")
            axes[1, col].plot(steps, sample["input_mean"], label="input (mean)")
            axes[1, col].set_ylim(0, 1)
            axes[1, col].set_xlabel("time step")
            axes[1, col].legend(loc="best", fontsize=7)
        if samples:
            fig.colorbar(image, ax=axes[0, :].tolist(), fraction=0.03)
        fig.suptitle(f"{record.get('model')} on {record.get('task')} (dependency {record.get('dependency')}), "
                     f"layer {traces.get('layer', '?')}", fontsize=9)
        return figures.save(fig, Path(folder), name)


def gate_section(record: dict, folder: Path, name: str = "gates") -> list[str]:
    """The index.md lines of the figure, for the lead's report."""
    files = gate_figure(record, folder, name)
    metrics = record.get("metrics") or {}
    return figures.section(f"Gate traces: {record.get('model')} on {record.get('task')}", files,
                           ("Forget gate of the most active units (top) and the mean input and forget gates (bottom) "
                            "over time, on fixed test samples after training.",
                            f"Score {metrics.get('score', float('nan')):.2f}; 1 = remembers, 0 = forgets."))
