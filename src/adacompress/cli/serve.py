"""``adacompress serve``: the emulated cloud as a Google Vision-shaped HTTP service
(``POST /v1/images:annotate``) on loopback."""

from __future__ import annotations

import argparse
from typing import Any

from adacompress.cli.options import add_settings, build
from adacompress.cloud.settings import ServeSettings

NAME = "serve"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="the emulated cloud as a Google Vision-shaped HTTP service",
        description=__doc__.split("\n\n")[0],
    )
    add_settings(parser, ServeSettings)


def execute(args: argparse.Namespace) -> int:
    from basekit.extras import require

    for module in ("fastapi", "uvicorn"):
        require(
            module, extra="server", feature="adacompress serve", package="adacompress"
        )
    from adacompress.cloud.server import serve

    serve(build(ServeSettings, args))
    return 0
