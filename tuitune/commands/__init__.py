"""CLI subcommands, one module each (``NAME``, ``HELP``, ``configure``, ``run``).

Modules here must stay cheap to import: heavy libraries go inside ``run``.
"""
