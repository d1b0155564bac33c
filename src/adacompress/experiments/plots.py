"""PNG figures: size vs accuracy (the paper's Fig. 3), action histogram (Fig. 5),
the running system over time (Fig. 4)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basekit.atomic import atomic_write
from basekit.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, imported when first drawn.

    Raises:
        MissingExtra: matplotlib is not installed.
    """
    require("matplotlib", extra="plots", feature="plots", package="adacompress")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` atomically as a PNG and free it."""
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    _pyplot().close(fig)


def plot_evaluation(report: dict[str, Any], path: Path) -> None:
    """Agent, every fixed action and the oracle: size ratio vs accuracy; histogram."""
    fig, (ax_trade, ax_hist) = _pyplot().subplots(1, 2, figsize=(11, 4.2))
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
    fig, axes = _pyplot().subplots(4, 1, figsize=(11, 8), sharex=True)
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
    save_png(fig, path, dpi=100)


def rolling(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` values at every step."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_explanation(
    image: Any, heat: Any, path: Path, *, title: str, caption: str = ""
) -> None:
    """The picture beside it with the occlusion map over it (red: what the choice
    rests on; blue: what argues against it)."""
    import numpy as np

    fig, (ax_image, ax_heat) = _pyplot().subplots(1, 2, figsize=(10, 4.2))
    ax_image.imshow(image)
    ax_image.set_title("image")
    ax_heat.imshow(image)
    limit = float(np.abs(heat).max()) or 1.0
    shown = ax_heat.imshow(heat, cmap="coolwarm", alpha=0.55, vmin=-limit, vmax=limit)
    ax_heat.set_title("preference lost when covered")
    fig.colorbar(shown, ax=ax_heat, fraction=0.046, pad=0.04)
    for ax in (ax_image, ax_heat):
        ax.set_axis_off()
    fig.suptitle(title)
    if caption:
        fig.text(0.5, 0.02, caption, ha="center", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
