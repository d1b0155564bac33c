"""An explanation's figure: the picture beside its occlusion map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from basekit.plotting import pyplot, save_png


def plot_explanation(
    image: Any, heat: Any, path: Path, *, title: str, caption: str = ""
) -> None:
    """The picture beside it with the occlusion map over it (red: what the choice
    rests on; blue: what argues against it)."""
    import numpy as np

    fig, (ax_image, ax_heat) = pyplot().subplots(1, 2, figsize=(10, 4.2))
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
