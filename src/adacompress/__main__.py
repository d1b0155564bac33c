from adacompress.cli import run_cli

run_cli()
