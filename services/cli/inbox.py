"""`liaison inbox` (a programme's received findings and their outcomes) and
`liaison unrouted list`."""

from __future__ import annotations

import typer

inbox_app = typer.Typer(help="A programme's inbox: findings routed to it, and outcomes.")
unrouted_app = typer.Typer(help="Verified events no routing rule took.", no_args_is_help=True)
