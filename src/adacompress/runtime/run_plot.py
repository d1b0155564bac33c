"""The running system over time (the paper's Fig. 4): what a run's records show."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from basekit.plotting import pyplot, save_png

KIND_LEVEL = {"inference": 0, "estimate": 1, "retrain": 2, "skipped": -1, "failed": -1}
"""The height of each kind of step in the plot's line of kinds."""


def plot_run(
    records: Sequence[Any],
    path: Path,
    *,
    change_points: Sequence[int] = (),
    caller_accuracy: Sequence[float] | None = None,
    title: str = "",
    kept_at_least: float | None = None,
) -> None:
    """The paper's Fig. 4: accuracy, p_est, kind of step and upload size per step; with
    ``kept_at_least``, the run's certificate (a line on the accuracy panel)."""
    steps = [r.position for r in records]
    fig, axes = pyplot().subplots(4, 1, figsize=(11, 8), sharex=True)
    ax_acc, ax_p, ax_kind, ax_size = axes
    _accuracy_panel(ax_acc, records, steps, caller_accuracy, kept_at_least)
    ax_p.plot(steps, [r.p_est for r in records], color="tab:purple")
    ax_p.set_ylabel("p_est")
    ax_kind.plot(
        steps,
        [KIND_LEVEL.get(r.kind, -1) for r in records],
        drawstyle="steps-post",
        color="tab:orange",
    )
    ax_kind.set_yticks([-1, 0, 1, 2], ["error", "infer", "estim", "retrain"])
    ax_size.plot(
        steps,
        [
            r.bytes_uploaded / r.reference_bytes if r.reference_bytes else 0.0
            for r in records
        ],
        ".",
        ms=2,
        color="tab:grey",
    )
    ax_size.set_ylabel("uploaded / q=75")
    ax_size.set_xlabel("image")
    for ax in axes:
        for point in change_points:
            ax.axvline(point, color="black", ls="--", lw=1)
        ax.grid(alpha=0.3)
    if title:
        ax_acc.set_title(title)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def _accuracy_panel(
    ax_acc: Any,
    records: Sequence[Any],
    steps: list[int],
    caller_accuracy: Sequence[float] | None,
    kept_at_least: float | None,
) -> None:
    """The caller's and the agent's rolling accuracy, and the certified kept rate."""
    if caller_accuracy is not None:
        ax_acc.plot(
            steps,
            rolling(caller_accuracy, 50),
            color="tab:blue",
            label="caller accuracy (rolling 50)",
        )
    known = [(r.position, r.accuracy) for r in records if r.accuracy is not None]
    if known:
        xs, ys = zip(*known, strict=True)
        ax_acc.plot(
            xs,
            rolling(ys, 10),
            ".",
            ms=3,
            color="tab:red",
            label="agent accuracy at estimates/retrain (rolling 10)",
        )
    if kept_at_least is not None:
        ax_acc.axhline(
            kept_at_least,
            color="tab:green",
            ls=":",
            label=f"certified kept rate (at least {kept_at_least:.3f})",
        )
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.05, 1.05)
    if ax_acc.get_legend_handles_labels()[0]:
        ax_acc.legend(loc="lower left", fontsize=8)


def rolling(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values at every step."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
