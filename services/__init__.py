"""Processes: settings, logging, broker wiring, the local broker, services and the CLI.

Nothing imports this package back.
"""

__all__: list[str] = []
