"""The ``adacompress`` command line: one module per command, each with
``add_parser(subparsers)`` and ``execute(args) -> int``; ``main(argv) -> int`` is the
one entry point for ``python -m adacompress``, the console script and the tests.

Exit status: 0 everything done; 1 some inputs failed or were skipped (each listed
with its reason; a rerun retries the failed ones); 2 a usage or setup error (one
line on stderr); 3 stopped early because the service is unreachable (a rerun
continues); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM; one line, cleanups
run as on Ctrl-C).
"""

from adacompress.cli.main import main, run_cli

__all__ = ["main", "run_cli"]
