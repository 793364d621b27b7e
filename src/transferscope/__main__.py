"""``python -m transferscope`` runs the CLI."""

from transferscope.cli import main

main()
