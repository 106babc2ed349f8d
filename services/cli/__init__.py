"""The ``liaison`` command line: one module per group of verbs."""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import services.cli.dashboard  # noqa: F401 - registers `liaison serve dashboard`
from schemas.errors import LiaisonError
from services.cli import (
    acls,
    analysts,
    audit,
    cluster,
    contract,
    feed,
    inbox,
    jtai,
    keys,
    ops,
    serve,
)
from services.cli._common import app, err

__all__ = ["app", "main"]

app.add_typer(contract.schema_app, name="schema")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(ops.broker_app, name="broker")
app.add_typer(ops.topics_app, name="topics")
app.add_typer(serve.serve_app, name="serve")
app.add_typer(ops.rules_app, name="rules")
app.add_typer(ops.quarantine_app, name="quarantine")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(feed.feed_app, name="feed")
app.add_typer(analysts.analysts_app, name="analysts")
app.add_typer(inbox.inbox_app, name="inbox")
app.add_typer(inbox.unrouted_app, name="unrouted")
app.add_typer(jtai.jtai_app, name="jtai")
app.add_typer(cluster.cluster_app, name="cluster")
app.add_typer(acls.acls_app, name="acls")


def main() -> None:
    """Entry point of the ``liaison`` script: every failure is one ``error:`` line.

    Commands report the errors they expect themselves, with what to do about them; this
    is the last resort for anything else, which names only the exception's class (its
    message could quote input). LIAISON_LOG_LEVEL=DEBUG adds the traceback.
    """
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except LiaisonError as exc:
        _error_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - the last resort: never a traceback
        if os.environ.get("LIAISON_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exc()
        _error_line(
            f"internal error: {type(exc).__name__}; run with LIAISON_LOG_LEVEL=DEBUG for details"
        )


def _error_line(message: str) -> NoReturn:
    err.print("[bold red]error:[/bold red] ", end="")
    err.print(message, highlight=False, markup=False)
    sys.exit(1)
