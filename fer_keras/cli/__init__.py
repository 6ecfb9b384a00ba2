"""Stage 6, the command line: one thin module per command, sharing :mod:`._common`.

Each module parses arguments, calls the library and prints; the work happens in
``data``, ``model``, ``training``, ``inference``, ``report`` and ``serve``. May import
every stage.
"""
