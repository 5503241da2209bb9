"""``python -m etl`` runs the command line."""

from etl.cli.main import main

main()
