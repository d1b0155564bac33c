"""How settings dataclasses become options of this command line (choices, hidden
fields), on top of :mod:`basekit.settings_cli`."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TypeVar

from adacompress.core.datasets import SPLITS
from adacompress.device.actions import ACTION_SETS
from adacompress.device.policies.settings import POLICIES
from adacompress.runtime.settings import RUNTIME_PRESETS
from basekit import settings_cli

T = TypeVar("T")

CHOICES: dict[str, tuple[str, ...]] = {
    "actions": tuple(ACTION_SETS),
    "policy": POLICIES,
    "preset": tuple(RUNTIME_PRESETS),
    "split": SPLITS,
}
"""Fields whose values are a fixed list (listed in --help). --backend and --features
are open: URLs and pirl:PATH are valid too."""
HIDDEN = {
    "state_dim",
    "n_actions",
    "per_action",
    "action_cost",
    "progress",
    "runtime",
}
"""Fields set by the program, not the user."""


def add_settings(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    default_from: str | None = None,
    defaults: Any = None,
) -> None:
    """This CLI's options for a settings dataclass."""
    settings_cli.add_settings(
        parser,
        cls,
        choices=CHOICES,
        hidden=HIDDEN,
        default_from=default_from,
        defaults=defaults,
    )


def build(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """The settings the user gave on the command line."""
    return settings_cli.build(cls, settings_cli.pick(cls, args, hidden=HIDDEN), **extra)


def overrides(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """Only the values the user set (for a preset to be overridden with)."""
    return settings_cli.given(settings_cli.pick(cls, args, hidden=HIDDEN))


def announce(plan: Any, command: str, args: argparse.Namespace) -> bool:
    """Say how many paid calls the command will make before it makes any: on
    stdout with ``--dry-run`` (then the caller stops: True), else on stderr."""
    if args.dry_run:
        print(plan.describe(command))
        return True
    if not args.quiet:
        print(f"adacompress: {plan.describe(command, dry_run=False)}", file=sys.stderr)
    return False


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    """``--dry-run``: count the paid calls, send nothing."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="say how many paid calls this would make, then stop (nothing is sent)",
    )
