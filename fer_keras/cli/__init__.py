"""Command-line entry points: one thin module per command, sharing :mod:`._common`."""
