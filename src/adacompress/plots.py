"""PNG figures: size vs accuracy (the paper's Fig. 3), action histogram (Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adacompress.storage import atomic_write  # noqa: E402


def plot_evaluation(report: dict[str, Any], path: Path) -> None:
    """Agent, every fixed action and the oracle: size ratio vs accuracy; histogram."""
    fig, (ax_trade, ax_hist) = plt.subplots(1, 2, figsize=(11, 4.2))
    fixed = report["fixed"]
    keys = list(fixed)
    ax_trade.plot(
        [fixed[k]["size_ratio"] for k in keys],
        [fixed[k]["accuracy"] for k in keys],
        "o-",
        color="grey",
        label="fixed quality",
    )
    for k in keys:
        ax_trade.annotate(
            k,
            (fixed[k]["size_ratio"], fixed[k]["accuracy"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
        )
    oracle = report["oracle"]
    ax_trade.plot(
        oracle["size_ratio"],
        oracle["accuracy"],
        "*",
        ms=14,
        color="tab:green",
        label="per-image oracle",
    )
    if "agent" in report:
        agent = report["agent"]
        ax_trade.plot(
            agent["size_ratio"],
            agent["accuracy"],
            "D",
            ms=9,
            color="tab:red",
            label="agent",
        )
    ax_trade.set_xlabel("size ratio (bytes / q=75 bytes)")
    ax_trade.set_ylabel(f"accuracy (reference top-1 in top-{report['top_k']})")
    ax_trade.set_title(
        f"{report['backend']}: {report['n_images']} images " f"({report['split']})"
    )
    ax_trade.grid(alpha=0.3)
    ax_trade.legend(loc="lower right")
    if "agent" in report:
        counts = report["agent"]["actions"]
        ax_hist.bar(list(counts), list(counts.values()), color="tab:red")
    ax_hist.set_xlabel("action (JPEG quality)")
    ax_hist.set_ylabel("images")
    ax_hist.set_title("agent's choices")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)


STATE_LEVEL = {"inference": 0, "estimate": 1, "retrain": 2, "skipped": -1, "failed": -1}


def plot_run(
    records: Sequence[Any],
    path: Path,
    *,
    change_points: Sequence[int] = (),
    caller_accuracy: Sequence[float] | None = None,
    title: str = "",
) -> None:
    """The paper's Fig. 4: accuracy, p_est, state and upload size per step."""
    steps = [r.position for r in records]
    fig, axes = plt.subplots(4, 1, figsize=(11, 8), sharex=True)
    ax_acc, ax_p, ax_state, ax_size = axes
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
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.05, 1.05)
    if ax_acc.get_legend_handles_labels()[0]:
        ax_acc.legend(loc="lower left", fontsize=8)
    ax_p.plot(steps, [r.p_est for r in records], color="tab:purple")
    ax_p.set_ylabel("p_est")
    ax_state.plot(
        steps,
        [STATE_LEVEL.get(r.state, -1) for r in records],
        drawstyle="steps-post",
        color="tab:orange",
    )
    ax_state.set_yticks([-1, 0, 1, 2], ["error", "infer", "estim", "retrain"])
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
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    plt.close(fig)


def rolling(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values at every step."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
