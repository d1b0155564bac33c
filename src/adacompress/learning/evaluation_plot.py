"""The evaluation's figure: size ratio against accuracy for the agent, every fixed
action and the oracle (the paper's Fig. 3), and the agent's action histogram
(Fig. 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from basekit.plotting import pyplot, save_png


def plot_evaluation(report: dict[str, Any], path: Path) -> None:
    """Agent, every fixed action and the oracle: size ratio vs accuracy; histogram."""
    fig, (ax_trade, ax_hist) = pyplot().subplots(1, 2, figsize=(11, 4.2))
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
    save_png(fig, path)
