"""``python -m pirl``."""

from pirl.cli import run_cli

run_cli()
