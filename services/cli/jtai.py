"""`liaison jtai list` and `liaison jtai decide`: the JTAI programme's triage."""

from __future__ import annotations

import typer

jtai_app = typer.Typer(help="JTAI triage: open considerations and decisions.", no_args_is_help=True)
