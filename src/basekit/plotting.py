"""PNG figures with matplotlib (an optional extra), drawn on the file-only backend
and written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from basekit.atomic import atomic_write
from basekit.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot(package: str = "adacompress") -> Any:
    """matplotlib's pyplot on the file-only backend, imported when first drawn.

    Raises:
        MissingExtra: matplotlib is not installed (the ``plots`` extra of
            ``package``).
    """
    require("matplotlib", extra="plots", feature="plots", package=package)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` atomically as a PNG and free it."""
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    pyplot().close(fig)
